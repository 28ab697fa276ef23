"""`python worker.py` against an empty database creates its tables and seeds the demo;
a conversation naming an unknown agent fails instead of retrying forever."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError

from activities.db import Database
from conversation_client import Conversations
from demo.tables import Claim, Policy
from devserver import worker_process
from interface import StartConversation
from support.ids import new_id
from support.workers import WorkerFactory
from worker import prepare_database


@pytest.mark.e2e
async def test_worker_prepares_an_empty_database(
    temporal_address: str, task_queue: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    async with worker_process(
        database_url=url,
        temporal_address=temporal_address,
        task_queue=task_queue,
        log=tmp_path / "worker.log",
    ):
        pass
    db = Database(url)
    await prepare_database(db)  # a second start changes nothing
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Policy)) == 3
        assert await session.scalar(select(func.count()).select_from(Claim)) == 3
        versions = (await session.scalars(text("SELECT version_num FROM alembic_version"))).all()
        assert sorted(versions) == ["core_0003", "demo_0001"]
        assert (await session.scalar(text("PRAGMA journal_mode"))) == "wal"
    await db.dispose()


async def test_unknown_agent_fails_the_conversation(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    cid = new_id()
    async with run_worker(db):
        handle = await conversations.start(cid, StartConversation(agent="no-such-agent"))
        with pytest.raises(WorkflowFailureError) as raised:
            await handle.result()
    assert raised.value.cause.type == "UnknownAgent"  # type: ignore[attr-defined]
    assert "cannot start agent 'no-such-agent'" in str(raised.value.cause)


async def test_an_ask_to_an_unknown_agent_fails_with_the_reason(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    cid = new_id()
    async with run_worker(db):
        with pytest.raises(WorkflowUpdateFailedError) as raised:
            await conversations.ask(cid, "hello", "m-1", StartConversation(agent="nobody"))
        with pytest.raises(WorkflowFailureError):
            await conversations.handle(cid).result()
    assert raised.value.cause.type == "UnknownAgent"  # type: ignore[attr-defined]
