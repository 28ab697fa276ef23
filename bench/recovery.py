"""5. Recovery: SIGKILL the worker inside a tool call, start a new one, time the turn.

The worker is the product's `worker.py` in its own process, with the fault injection of
`activities/faults.py`: it kills itself right after create_claim_note's transaction commits,
before Temporal hears the activity finished.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from bench.history import events_of
from bench.stats import median
from conversation_client import Conversations
from devserver import worker_process

FAULT = "after_commit:create_claim_note"
TURN = '!call create_claim_note {"claim_id": 123, "text": "bench"}'
"""The demo's claims assistant (worker.py's default agents) calls the tool FAULT stops in."""


async def one_recovery(
    conversations: Conversations, common: dict[str, Any], workdir: Path, n: int
) -> dict[str, Any]:
    cid = f"bench-recovery-{uuid.uuid4().hex[:10]}"
    # each worker its own log: worker_process waits for a line in it
    async with worker_process(**common, log=workdir / f"{cid}-doomed.log") as doomed:
        await conversations.ask(cid, "!say hello", f"{cid}-warm")  # sticky on this worker
        turn = asyncio.create_task(conversations.ask(cid, TURN, f"{cid}-m{n}"))
        await doomed.killed()
    killed, killed_at = time.monotonic(), time.time()
    async with worker_process(**common, log=workdir / f"{cid}-new.log"):
        ready = time.monotonic()
        result = await asyncio.wait_for(turn, 120)
        done = time.monotonic()
    if result.status != "completed" or [c.status for c in result.tool_calls] != ["ok"]:
        raise RuntimeError(f"recovered turn did not complete: {result}")
    events = await events_of(conversations.client, cid)
    return {
        "from_new_worker_ready_s": round(done - ready, 2),
        "from_kill_s": round(done - killed, 2),
        "worker_start_s": round(ready - killed, 2),
        "timeline_s_after_kill": timeline(events, killed_at),
    }


def timeline(events: list[HistoryEvent], since: float) -> list[str]:
    """The events of the killed turn, in seconds after the kill (negative: before it)."""
    last_update = max(
        i
        for i, e in enumerate(events)
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    )
    lines = []
    for event in events[last_update:]:
        at = event.event_time.seconds + event.event_time.nanos / 1e9 - since
        name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        lines.append(f"{at:+.2f} {name}{_retry_note(event)}")
    return lines


def _retry_note(event: HistoryEvent) -> str:
    if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
        return ""
    started = event.activity_task_started_event_attributes
    if started.attempt <= 1:
        return ""
    return f" (attempt {started.attempt} after: {started.last_failure.message})"


async def recovery(client: Client, address: str, workdir: Path, runs: int) -> dict[str, Any]:
    queue = f"bench-recovery-{uuid.uuid4().hex[:8]}"
    conversations = Conversations(client, queue)
    results = []
    for n in range(runs):
        common = dict(
            database_url=f"sqlite:///{workdir}/recovery.db",
            temporal_address=address,
            task_queue=queue,
            fault=FAULT,
            fault_once=workdir / f"recovery-fault-{queue}-{n}",
        )
        results.append(await one_recovery(conversations, common, workdir, n))
    return {
        "fault": FAULT,
        "runs": results,
        "from_new_worker_ready_s": median([r["from_new_worker_ready_s"] for r in results]),
        "from_kill_s": median([r["from_kill_s"] for r in results]),
    }
