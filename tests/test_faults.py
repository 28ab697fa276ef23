"""A worker SIGKILLed inside a tool call: the side effect still happens exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from activities.db import Database
from activities.tables import LedgerEntry
from conversation_client import Conversations
from demo.tables import ClaimNote, OutboxEmail
from support.databases import count
from support.ids import new_id
from support.processes import worker_process

pytestmark = pytest.mark.e2e  # worker subprocesses, SIGKILLed

CASES = [
    ("after_commit:create_claim_note", "add a note to claim 123 that the worker died", ClaimNote),
    ("after_claim:send_customer_email", "email the customer about claim 123", OutboxEmail),
    ("after_effect:send_customer_email", "email the customer about claim 123", OutboxEmail),
    ("after_commit:send_customer_email", "email the customer about claim 123", OutboxEmail),
]


@pytest.mark.parametrize(("fault", "text", "table"), CASES, ids=[c[0] for c in CASES])
async def test_killed_worker_repeats_no_side_effect(
    any_db: Database,
    conversations: Conversations,
    temporal_address: str,
    task_queue: str,
    tmp_path: Path,
    fault: str,
    text: str,
    table: type,
) -> None:
    cid, marker = new_id(), tmp_path / "fault-fired"
    common = dict(
        database_url=any_db.url,
        temporal_address=temporal_address,
        task_queue=task_queue,
        log=tmp_path / "worker.log",
        fault=fault,
        fault_once=marker,
    )
    async with worker_process(**common) as doomed:
        turn = asyncio.create_task(conversations.ask(cid, text, "m-1"))
        assert await doomed.killed() == -9
    assert marker.read_text().startswith(fault.split(":")[0])
    async with worker_process(**common):
        result = await asyncio.wait_for(turn, 60)
        await conversations.end(cid)
        summary = await conversations.handle(cid).result()
    assert result.status == "completed" and result.tool_calls[0].status == "ok"
    assert summary.turn_count == 1
    assert await count(any_db, table, conversation_id=cid) == 1
    async with any_db.session() as session:
        query = select(LedgerEntry.status).where(LedgerEntry.conversation_id == cid)
        statuses = (await session.scalars(query)).all()
    assert statuses == ["succeeded"]
