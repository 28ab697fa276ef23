"""Heartbeat while an activity waits, so a killed worker is noticed within the timeout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio import activity


@asynccontextmanager
async def heartbeating() -> AsyncIterator[None]:
    """Heartbeat three times per the activity's heartbeat timeout (the one it was scheduled
    with), from a task beside the work, for as long as the block runs. No timeout: no beats.
    The SDK sends at most one heartbeat per 0.8 × timeout to the server. The first beat is
    a third of the timeout in: the server counts the timeout from the attempt's start, and
    most calls end before it (a beat at once was one more RPC per activity)."""
    timeout = activity.info().heartbeat_timeout
    if not timeout:
        yield
        return

    async def beat() -> None:
        while True:
            await asyncio.sleep(timeout.total_seconds() / 3)
            activity.heartbeat()

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
