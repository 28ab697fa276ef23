"""A worker SIGKILLed in the middle of an MCP tool call (the MCP server, its child, kills it
after doing the effect and before answering). The annotations decide what happens next,
and the counts come from the MCP server's own SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select

from activities.db import Database
from activities.tables import LedgerEntry
from conversation_client import Conversations
from interface import StartConversation
from support.ids import new_id
from support.paths import ROOT
from support.processes import worker_process

pytestmark = pytest.mark.e2e  # worker subprocesses, SIGKILLed

CASES = [
    # tool, arguments, status after the restart, calls the server saw, effects it kept
    ("lookup", '{"claim": "7"}', "ok", 2, 2),  # readOnlyHint: re-run
    ("set_flag", '{"claim": "7", "flag": "vip"}', "ok", 2, 1),  # idempotentHint: deduped
    ("append_note", '{"claim": "7", "text": "hi"}', "unknown", 1, 1),  # no hints: not re-run
]


def server_counts(path: Path, tool: str) -> tuple[int, int, set[str | None]]:
    with sqlite3.connect(path) as db:
        keys = {k for (k,) in db.execute("select key from calls where tool = ?", (tool,))}
        (calls,) = db.execute("select count(*) from calls where tool = ?", (tool,)).fetchone()
        (done,) = db.execute("select count(*) from effects where tool = ?", (tool,)).fetchone()
    return calls, done, keys


@pytest.mark.parametrize(("tool", "arguments", "status", "calls", "done"), CASES)
async def test_worker_killed_mid_mcp_call(
    any_db: Database,
    conversations: Conversations,
    temporal_address: str,
    task_queue: str,
    tmp_path: Path,
    tool: str,
    arguments: str,
    status: str,
    calls: int,
    done: int,
) -> None:
    cid, marker, server_db = new_id(), tmp_path / "killed", tmp_path / "mcp-server.db"
    common = dict(
        database_url=any_db.url,
        temporal_address=temporal_address,
        task_queue=task_queue,
        log=tmp_path / "worker.log",
        extra_env={
            "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}",
            "AGENT_MODULES": "support.mcp_agents",
            "MCP_TEST_DB": str(server_db),
            "MCP_KILL_PARENT": f"{tool}:{marker}",
        },
    )
    start = StartConversation(agent="mcp-agent")
    async with worker_process(**common) as doomed:
        turn = asyncio.create_task(
            conversations.ask(cid, f"!call {tool} {arguments}", "m-1", start)
        )
        assert await doomed.killed() == -9
    assert marker.read_text().startswith("killed")
    async with worker_process(**common):
        result = await asyncio.wait_for(turn, 90)
    assert result.status == "completed"
    assert result.tool_calls[0].status == status
    seen, kept, keys = server_counts(server_db, tool)
    assert (seen, kept) == (calls, done)
    if tool != "lookup":  # one key for every attempt: the ledger's
        assert len(keys) == 1 and next(iter(keys), "").startswith(cid)  # type: ignore[union-attr]
    async with any_db.session() as session:
        query = select(LedgerEntry.status).where(LedgerEntry.conversation_id == cid)
        statuses = (await session.scalars(query)).all()
    expected = [] if tool == "lookup" else [{"ok": "succeeded", "unknown": "unknown"}[status]]
    assert statuses == expected  # a read has no ledger row
