"""The benchmark's worker process: our worker and the floor's worker, side by side.

`python -m bench.host`, configured by the environment (see `HostConfig`). Both workers share
one process, one client and one server, so the process's CPU time and RSS are comparable
between phases. With BENCH_PROFILE set, pyinstrument samples the process until SIGTERM and
writes its text report there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autogen_core.models import ChatCompletionClient, CreateResult
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.db import Database
from agents.registry import AgentRegistry
from bench.agent import TABLES, bench_agent
from bench.floor import FloorWorkflow
from bench.floor_activities import FloorActivities, open_notes
from conversation_client import run_then_exit
from demo.scripted_model import ScriptedChatCompletionClient
from settings import WorkerSettings, WorkerTuning
from worker import build_worker, has_search_attributes, prepare_database

READY = "bench host polling"
log = logging.getLogger("bench.host")


@dataclass(frozen=True)
class HostConfig:
    address: str
    database_url: str
    floor_database: str
    """A SQLite file's path, or a `postgresql://` URL (bench/floor_activities.py)."""
    ours_queue: str
    floor_queue: str
    profile: Path | None = None
    model_ms: int = 0
    """Simulated latency of each model call, ours (SlowScriptedModel) and the floor's."""
    worker: dict[str, Any] = field(default_factory=dict)
    """Our worker's settings for this run: `WorkerTuning` fields, or `Worker` options such as
    `max_concurrent_activities` (both workers get those)."""

    @classmethod
    def from_env(cls) -> HostConfig:
        env = os.environ
        return cls(
            address=env["BENCH_ADDRESS"],
            database_url=env["BENCH_DATABASE_URL"],
            floor_database=env["BENCH_FLOOR_DATABASE"],
            ours_queue=env["BENCH_OURS_QUEUE"],
            floor_queue=env["BENCH_FLOOR_QUEUE"],
            profile=Path(env["BENCH_PROFILE"]) if env.get("BENCH_PROFILE") else None,
            model_ms=int(env.get("BENCH_MODEL_MS", "0")),
            worker=json.loads(env.get("BENCH_WORKER", "{}")),
        )

    def env(self) -> dict[str, str]:
        values = {
            "BENCH_ADDRESS": self.address,
            "BENCH_DATABASE_URL": self.database_url,
            "BENCH_FLOOR_DATABASE": self.floor_database,
            "BENCH_OURS_QUEUE": self.ours_queue,
            "BENCH_FLOOR_QUEUE": self.floor_queue,
            "BENCH_MODEL_MS": str(self.model_ms),
            "BENCH_WORKER": json.dumps(self.worker),
        }
        return values | ({"BENCH_PROFILE": str(self.profile)} if self.profile else {})

    def tuning(self) -> WorkerTuning:
        fields = {k: v for k, v in self.worker.items() if k in WorkerTuning.model_fields}
        return WorkerTuning(**fields)

    def worker_options(self) -> dict[str, Any]:
        return {k: v for k, v in self.worker.items() if k not in WorkerTuning.model_fields}


class SlowScriptedModel(ScriptedChatCompletionClient):
    """The scripted model, answering after `delay` seconds like a remote model would."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self._delay = delay

    async def create(self, messages: Sequence[Any], **kwargs: Any) -> CreateResult:
        await asyncio.sleep(self._delay)
        return await super().create(messages, **kwargs)


class BenchSettings(WorkerSettings):
    """The worker's settings, with the scripted model slowed down by `model_ms`."""

    model_ms: int = 0

    def model_client(self) -> ChatCompletionClient:
        if self.model_ms:
            return SlowScriptedModel(self.model_ms / 1000)
        return super().model_client()


async def floor_worker(client: Client, config: HostConfig) -> Worker:
    floor = FloorActivities(await open_notes(config.floor_database), config.model_ms)
    return Worker(
        client,
        task_queue=config.floor_queue,
        workflows=[FloorWorkflow],
        activities=[floor.model, floor.insert],
        **config.worker_options(),
    )


async def serve(config: HostConfig) -> None:
    db = Database(config.database_url)
    await prepare_database(db, [TABLES])
    client = await Client.connect(config.address, data_converter=pydantic_data_converter)
    agents = AgentRegistry([bench_agent(BenchSettings(model_ms=config.model_ms).model_client())])
    indexed = await has_search_attributes(client)  # as worker.py: upsert them if registered
    ours = build_worker(
        client,
        config.ours_queue,
        db,
        agents,
        search_attributes=indexed,
        tuning=config.tuning(),
        **config.worker_options(),
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with ours, await floor_worker(client, config):
        print(f"{READY} (pid {os.getpid()}: attach py-spy here)", flush=True)
        await stop.wait()
    await db.dispose()


@contextlib.contextmanager
def profiled(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    from pyinstrument import Profiler
    from pyinstrument.renderers import ConsoleRenderer

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        path.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        # and by function, the time spent in each itself (where the tree hides frames)
        flat = ConsoleRenderer(unicode=False, color=False, flat=True, show_all=True)
        if profiler.last_session is not None:
            path.with_suffix(".flat.txt").write_text(flat.render(profiler.last_session))


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    config = HostConfig.from_env()
    with profiled(config.profile):
        asyncio.run(serve(config))


if __name__ == "__main__":
    run_then_exit(main)
