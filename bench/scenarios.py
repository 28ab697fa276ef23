"""The scenarios that run against a bench host: latency, throughput, long conversation, idle."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from temporalio.client import Client

from bench.config import Counts
from bench.drivers import Driver, Ours, timed_turn
from bench.history import chain_size, events_of, turn_breakdown
from bench.procs import Host
from bench.stats import median, ratio, summary

Result = dict[str, Any]


def new_id(prefix: str) -> str:
    return f"bench-{prefix}-{uuid.uuid4().hex[:10]}"


def alternating(drivers: list[Driver], repeat: int) -> list[Driver]:
    """Swap the order on every other repeat, so drift on a busy machine hits both sides."""
    return drivers if repeat % 2 == 0 else drivers[::-1]


# --- 1. turn latency -------------------------------------------------------------------------


async def sequential_turns(driver: Driver, turns: int, warmup: int) -> tuple[str, list[float]]:
    conversation_id = new_id(f"latency-{driver.name}")
    for index in range(warmup):
        await driver.turn(conversation_id, index)
    timings = [await timed_turn(driver, conversation_id, warmup + i) for i in range(turns)]
    return conversation_id, timings


async def latency(client: Client, drivers: list[Driver], counts: Counts) -> Result:
    runs: dict[str, list[dict[str, float]]] = {d.name: [] for d in drivers}
    last_ids: dict[str, str] = {}
    for repeat in range(counts.repeats):
        for driver in alternating(drivers, repeat):
            cid, timings = await sequential_turns(driver, counts.latency_turns, counts.warmup_turns)
            runs[driver.name].append(summary(timings))
            last_ids[driver.name] = cid
    p50 = [
        ratio(o["p50_ms"], f["p50_ms"]) for o, f in zip(runs["ours"], runs["floor"], strict=True)
    ]
    p95 = [
        ratio(o["p95_ms"], f["p95_ms"]) for o, f in zip(runs["ours"], runs["floor"], strict=True)
    ]
    breakdown = {
        name: turn_breakdown(await events_of(client, cid), counts.warmup_turns)
        for name, cid in last_ids.items()
    }
    turns = counts.warmup_turns + counts.latency_turns
    history = {
        name: round((await chain_size(client, cid)).bytes / turns, 1)
        for name, cid in last_ids.items()
    }
    return {
        "ours": runs["ours"],
        "floor": runs["floor"],
        "p50_ratios": p50,
        "p50_ratio": median(p50),
        "p95_ratio": median(p95),
        "breakdown_ms_per_turn": {k: _rounded(v) for k, v in breakdown.items()},
        "history_bytes_per_turn": history,
        "history_ratio": ratio(history["ours"], history["floor"]),
    }


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in values.items()}


# --- 2. throughput ---------------------------------------------------------------------------


async def _conversation_turns(driver: Driver, conversation_id: str, turns: int) -> None:
    for index in range(turns):
        await driver.turn(conversation_id, index)


async def concurrent_turns(driver: Driver, host: Host, conversations: int, turns: int) -> Result:
    ids = [new_id(f"tput-{driver.name}") for _ in range(conversations)]
    await host.quiet()
    cpu_before, began = host.cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(_conversation_turns(driver, cid, turns) for cid in ids))
    wall = time.perf_counter() - began
    cpu = host.cpu_seconds() - cpu_before
    total = conversations * turns
    return {
        "turns": total,
        "wall_s": round(wall, 3),
        "turns_per_s": round(total / wall, 2),
        "cpu_ms_per_turn": round(cpu * 1000 / total, 2),
    }


async def throughput(host: Host, drivers: list[Driver], counts: Counts) -> Result:
    runs: dict[str, list[Result]] = {d.name: [] for d in drivers}
    for repeat in range(counts.repeats):
        for driver in alternating(drivers, repeat):
            run = await concurrent_turns(
                driver, host, counts.throughput_conversations, counts.throughput_turns
            )
            runs[driver.name].append(run)
    pairs = list(zip(runs["ours"], runs["floor"], strict=True))
    tput = [ratio(o["turns_per_s"], f["turns_per_s"]) for o, f in pairs]
    cpu = [ratio(o["cpu_ms_per_turn"], f["cpu_ms_per_turn"]) for o, f in pairs]
    return runs | {
        "turns_per_s_ratios": tput,
        "turns_per_s_ratio": median(tput),
        "cpu_ratios": cpu,
        "cpu_ratio": median(cpu),
    }


# --- 3 and 4. history growth and the long conversation ---------------------------------------


async def long_conversation(client: Client, host: Host, ours: Ours, counts: Counts) -> Result:
    cid, total = new_id("long"), counts.long_turns
    points = sorted(p for p in {*counts.history_points, total} if p <= total)
    every = max(total // 20, 1)
    timings: list[float] = []
    sizes: dict[int, Result] = {}
    rss: dict[int, float] = {}
    fresh_id, fresh = new_id("long-fresh"), []
    for turn in range(1, total + 1):
        if turn > total - FRESH_TURNS:  # a new conversation's turns 10-20 alternate with these
            if turn == total - FRESH_TURNS + 1:
                for index in range(1, 10):
                    await ours.turn(fresh_id, index)
            fresh.append(await timed_turn(ours, fresh_id, 9 + turn - (total - FRESH_TURNS)))
        timings.append(await timed_turn(ours, cid, turn))
        if turn in points:
            sizes[turn] = _size_at(turn, await chain_size(client, cid))
        if turn % every == 0 or turn == total:
            rss[turn] = round(host.rss_mb(), 1)
    return {
        "history": _history(sizes, counts.history_points),
        "long": _long(timings, fresh, rss, host.peak_rss_mb()),
    }


FRESH_TURNS = 11
"""The long conversation's last turns, each after a turn of a new conversation (its turns
10-20): the same minutes' latency at both lengths, which the machine's swings over a run
(10-100-turn buckets moving 50-90 ms in no order) cannot tell apart."""


def _size_at(turn: int, size: Any) -> Result:
    return {
        "bytes": size.bytes,
        "events": size.events,
        "runs": size.runs,
        "bytes_per_turn": round(size.bytes / turn, 1),
        "events_per_turn": round(size.events / turn, 2),
    }


def _history(sizes: dict[int, Result], points: tuple[int, ...]) -> Result:
    wanted = [p for p in points if p in sizes]
    first, last = wanted[0], wanted[-1]
    growth = ratio(sizes[last]["bytes_per_turn"], sizes[first]["bytes_per_turn"])
    return {"points": sizes, "growth_ratio": growth, "compared": [first, last]}


def _long(timings: list[float], fresh: list[float], rss: dict[int, float], peak: float) -> Result:
    total = len(timings)
    early = timings[9:20]  # turns 10-20
    late = timings[max(total - FRESH_TURNS, 0) :]  # the last 11 turns: 990-1000 of 1,000
    tenth = min(rss, key=lambda turn: abs(turn - total / 10))
    return {
        "turns": total,
        "early": summary(early) | {"turns": "10-20"},
        "late": summary(late) | {"turns": f"{total - 10}-{total}"},
        "fresh": summary(fresh) | {"turns": "10-20, alternating with the late turns"},
        "late_to_early_p50": ratio(median(late), median(early)),
        "late_to_fresh_p50": ratio(median(late), median(fresh)),
        "p50_ms_by_100_turns": _buckets(timings, 100),
        "rss_mb_by_turn": rss,
        "rss_growth": ratio(rss[total], rss[tenth]),
        "rss_compared": [tenth, total],
        "peak_rss_mb": round(peak, 1),
    }


def _buckets(timings: list[float], size: int) -> dict[str, float]:
    """Median latency of each block of `size` turns, to see drift within and across runs."""
    return {
        f"{start + 1}-{min(start + size, len(timings))}": round(median(timings[start:][:size]), 1)
        for start in range(0, len(timings), size)
    }


# --- 6. idle conversations -------------------------------------------------------------------


async def start_many(ours: Ours, ids: list[str], parallel: int = 64) -> None:
    gate = asyncio.Semaphore(parallel)

    async def start(cid: str) -> None:
        async with gate:
            await ours.conversations.start(cid, ours.start)

    await asyncio.gather(*(start(cid) for cid in ids))


async def idle(host: Host, ours: Ours, counts: Counts) -> Result:
    ids = [new_id("idle") for _ in range(counts.idle_large)]
    await host.quiet()
    rss_before = host.rss_mb()
    await start_many(ours, ids[: counts.idle_small])
    await host.quiet()
    rss_small = host.rss_mb()
    began = time.perf_counter()
    await start_many(ours, ids[counts.idle_small :])
    start_s = time.perf_counter() - began
    await host.quiet(limit=600)
    rss_large = host.rss_mb()
    newest = await timed_turn(ours, ids[-1], 1)
    oldest = await timed_turn(ours, ids[0], 1)  # evicted from the worker's cache: replayed
    return {
        "conversations": [counts.idle_small, counts.idle_large],
        "rss_mb_before": round(rss_before, 1),
        "rss_mb_small": round(rss_small, 1),
        "rss_mb_large": round(rss_large, 1),
        "rss_ratio": ratio(rss_large, rss_small),
        "starts_per_s": round((counts.idle_large - counts.idle_small) / start_s, 1),
        "turn_ms_newest": round(newest, 1),
        "turn_ms_oldest": round(oldest, 1),
    }
