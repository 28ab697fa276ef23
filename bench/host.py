"""The benchmark's worker process: our worker and the floor's worker, side by side.

`python -m bench.host`, configured by the environment (see `HostConfig`). Both workers share
one process, one client and one server, so the process's CPU time and RSS are comparable
between phases. With BENCH_PROFILE set, pyinstrument samples the process until SIGTERM and
writes its text report there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.db import Database
from bench.floor import FloorWorkflow
from bench.floor_activities import FloorActivities
from conversation_client import run_then_exit
from settings import WorkerSettings
from worker import build_worker, default_agents, has_search_attributes, prepare_database

READY = "bench host polling"
log = logging.getLogger("bench.host")


@dataclass(frozen=True)
class HostConfig:
    address: str
    database_url: str
    floor_db: Path
    ours_queue: str
    floor_queue: str
    profile: Path | None = None

    @classmethod
    def from_env(cls) -> HostConfig:
        env = os.environ
        return cls(
            address=env["BENCH_ADDRESS"],
            database_url=env["BENCH_DATABASE_URL"],
            floor_db=Path(env["BENCH_FLOOR_DB"]),
            ours_queue=env["BENCH_OURS_QUEUE"],
            floor_queue=env["BENCH_FLOOR_QUEUE"],
            profile=Path(env["BENCH_PROFILE"]) if env.get("BENCH_PROFILE") else None,
        )

    def env(self) -> dict[str, str]:
        values = {
            "BENCH_ADDRESS": self.address,
            "BENCH_DATABASE_URL": self.database_url,
            "BENCH_FLOOR_DB": str(self.floor_db),
            "BENCH_OURS_QUEUE": self.ours_queue,
            "BENCH_FLOOR_QUEUE": self.floor_queue,
        }
        return values | ({"BENCH_PROFILE": str(self.profile)} if self.profile else {})


def floor_worker(client: Client, config: HostConfig) -> Worker:
    floor = FloorActivities(config.floor_db)
    return Worker(
        client,
        task_queue=config.floor_queue,
        workflows=[FloorWorkflow],
        activities=[floor.model, floor.insert],
    )


async def serve(config: HostConfig) -> None:
    db = Database(config.database_url)
    await prepare_database(db)
    client = await Client.connect(config.address, data_converter=pydantic_data_converter)
    agents = default_agents(WorkerSettings(), db)
    indexed = await has_search_attributes(client)  # as worker.py: upsert them if registered
    ours = build_worker(client, config.ours_queue, db, agents, search_attributes=indexed)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with ours, floor_worker(client, config):
        print(f"{READY} (pid {os.getpid()}: attach py-spy here)", flush=True)
        await stop.wait()
    await db.dispose()


@contextlib.contextmanager
def profiled(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        path.write_text(profiler.output_text(unicode=False, color=False, show_all=False))


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    config = HostConfig.from_env()
    with profiled(config.profile):
        asyncio.run(serve(config))


if __name__ == "__main__":
    run_then_exit(main)
