"""Scale: many conversations at once, a slow model, on 1, 2 and 3 worker processes.

Each turn is a model call that takes `scale_model_ms`, the tool, and a second such model
call, ours and the floor's alike. Every conversation runs `scale_turns` turns in a row, all
of them at once. The worker processes are bench hosts on the same task queues of one server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from bench.config import Counts
from bench.drivers import Driver, timed_turn
from bench.host import HostConfig
from bench.procs import Host, host_process
from bench.scenarios import alternating, new_id
from bench.stats import ratio, summary

Result = dict[str, Any]


@asynccontextmanager
async def hosts(config: HostConfig, logs: list[Path]) -> AsyncIterator[list[Host]]:
    """A bench host per log file, on the same queues, started one after the other (each
    migrates the database before it polls)."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(host_process(config, log)) for log in logs]


OVERLOAD = {
    "slow_workflow_tasks": b"Workflow task duration exceeded",
    "workflow_tasks_timed_out": b"Task not found when completing",
    "deadlocks_detected": b"Potential deadlock detected",
    "activities_failed": b"Completing activity as failed",
}
"""Lines of the SDK's in a worker's log that say the worker took more than it could do."""


def overload_counts(workers: list[Host], offsets: list[int]) -> dict[str, int]:
    """How often each OVERLOAD line appears in the hosts' logs after `offsets`."""
    tails = [host.log.read_bytes()[offset:] for host, offset in zip(workers, offsets, strict=True)]
    return {name: sum(tail.count(marker) for tail in tails) for name, marker in OVERLOAD.items()}


class RssSampler:
    """The highest RSS of each host, sampled every `every` seconds while it runs."""

    def __init__(self, hosts: list[Host], every: float = 0.5) -> None:
        self._hosts, self._every = hosts, every
        self.peaks = [host.rss_mb() for host in hosts]
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            self.peaks = [max(p, h.rss_mb()) for p, h in zip(self.peaks, self._hosts, strict=True)]

    def __enter__(self) -> RssSampler:
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def load(driver: Driver, workers: list[Host], conversations: int, turns: int) -> Result:
    """Every conversation's turns, all conversations at once; figures over all the workers."""
    ids = [new_id(f"scale-{driver.name}") for _ in range(conversations)]
    for host in workers:
        await host.quiet()
    timings: list[float] = []

    async def converse(cid: str) -> None:
        for index in range(turns):
            timings.append(await timed_turn(driver, cid, index))

    retries_before = driver.retries
    offsets = [host.log.stat().st_size for host in workers]
    cpu_before = sum(host.cpu_seconds() for host in workers)
    began = time.perf_counter()
    with RssSampler(workers) as rss:
        await asyncio.gather(*(converse(cid) for cid in ids))
    wall = time.perf_counter() - began
    cpu = sum(host.cpu_seconds() for host in workers) - cpu_before
    total = conversations * turns
    return {
        "turns": total,
        "wall_s": round(wall, 2),
        "turns_per_s": round(total / wall, 2),
        "latency": summary(timings),
        "cpu_ms_per_turn": round(cpu * 1000 / total, 2),
        "worker_cores_busy": round(cpu / wall, 2),
        "rss_mb_peak": [round(peak, 1) for peak in rss.peaks],
        "update_rpc_retries": driver.retries - retries_before,
        "worker_log": overload_counts(workers, offsets),
    }


Workers = Callable[[int], AbstractAsyncContextManager[tuple[list[Host], list[Driver]]]]
"""Starts N bench hosts on fresh queues; yields them and the drivers aimed at them."""


async def scale(workers_of: Workers, counts: Counts) -> Result:
    """One measurement per worker count in `counts.scale_workers`, ours and the floor in
    alternating order."""
    by_workers: dict[str, Result] = {}
    for index, workers in enumerate(counts.scale_workers):
        async with workers_of(workers) as (started, drivers):
            runs = {
                driver.name: await load(
                    driver, started, counts.scale_conversations, counts.scale_turns
                )
                for driver in alternating(drivers, index)
            }
        ours, floor = runs["ours"], runs["floor"]
        by_workers[str(workers)] = runs | {
            "turns_per_s_ratio": ratio(ours["turns_per_s"], floor["turns_per_s"]),
            "p95_ratio": ratio(ours["latency"]["p95_ms"], floor["latency"]["p95_ms"]),
            "cpu_ratio": ratio(ours["cpu_ms_per_turn"], floor["cpu_ms_per_turn"]),
        }
    return {
        "conversations": counts.scale_conversations,
        "turns_per_conversation": counts.scale_turns,
        "model_ms": counts.scale_model_ms,
        "by_workers": by_workers,
        "speedup": _speedup(by_workers),
    }


def _speedup(by_workers: dict[str, Result]) -> dict[str, dict[str, float]]:
    """turns/s with N workers against 1 worker, ours and the floor's."""
    if "1" not in by_workers:
        return {}
    one = by_workers["1"]
    return {
        workers: {
            side: ratio(runs[side]["turns_per_s"], one[side]["turns_per_s"])
            for side in ("ours", "floor")
        }
        for workers, runs in by_workers.items()
    }
