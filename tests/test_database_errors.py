"""Database errors reach history as a bounded message with the error's class and no SQL
parameters, never as "Failure exceeds size limit" (issue 15, findings 5 and 9)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError

from activities.bounds import MAX_ERROR_CHARS
from activities.db import Database
from conversation_client import Conversations
from support.databases import HAS_POSTGRES, make_database
from support.ids import new_id
from support.workers import WorkerFactory
from worker import prepare_database

SECRET_BODY = "my SSN is 078-05-1120, please check claim 123"


async def failure_messages(client: Client, cid: str) -> list[str]:
    history = await client.get_workflow_handle(cid).fetch_history()
    return [
        e.activity_task_failed_event_attributes.failure.message
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]


async def last_pending_failure(client: Client, cid: str) -> str:
    """The retried activity's last failure, as the Web UI's pending activity shows it."""
    handle = client.get_workflow_handle(cid)
    pending: Any = []
    for _ in range(100):
        with contextlib.suppress(RPCError):  # not started yet
            pending = (await handle.describe()).raw_description.pending_activities
        if pending and pending[0].HasField("last_failure"):
            return pending[0].last_failure.message
        await asyncio.sleep(0.2)
    raise AssertionError("no failed attempt")


def assert_bounded(message: str, *, kind: str) -> None:
    assert kind in message, message
    assert len(message) <= MAX_ERROR_CHARS
    assert "exceeds size limit" not in message
    assert "078-05-1120" not in message and "[parameters:" not in message


@pytest.mark.skipif(not HAS_POSTGRES, reason="needs PostgreSQL")
async def test_a_varchar_overflow_fails_the_turn_with_a_bounded_message(
    tmp_path: Path,
    run_worker: WorkerFactory,
    conversations: Conversations,
    client: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    db, close = await make_database("postgresql", tmp_path)
    try:
        await prepare_database(db)
        async with db.engine.begin() as conn:  # a column too narrow for what is written
            await conn.execute(
                text("ALTER TABLE transcript_messages ALTER COLUMN body TYPE varchar(20)")
            )
        cid = new_id()
        with caplog.at_level(logging.INFO):
            async with run_worker(db):
                result = await asyncio.wait_for(conversations.ask(cid, SECRET_BODY, "m-1"), 60)
        assert result.status == "failed"
        (message,) = await failure_messages(client, cid)
        assert_bounded(message, kind="StringDataRightTruncation")
        assert "078-05-1120" not in caplog.text
    finally:
        await close()


async def test_a_read_only_sqlite_shows_its_error_in_the_pending_activity(
    tmp_path: Path,
    run_worker: WorkerFactory,
    conversations: Conversations,
    client: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "agents.db"
    writable = Database(f"sqlite:///{path}")
    await prepare_database(writable)
    await writable.dispose()
    # as a file the worker may not write (chmod does not stop root, who runs CI)
    db = Database(f"sqlite:///file:{path}?mode=ro&uri=true")
    cid = new_id()
    try:
        with caplog.at_level(logging.INFO):
            async with run_worker(db):
                turn = asyncio.ensure_future(conversations.ask(cid, SECRET_BODY, "m-1"))
                message = await last_pending_failure(client, cid)
                turn.cancel()
                with contextlib.suppress(BaseException):
                    await turn
                await client.get_workflow_handle(cid).terminate("test over")
        assert_bounded(message, kind="OperationalError")
        assert "readonly" in message
        assert "078-05-1120" not in caplog.text
    finally:
        await db.dispose()
