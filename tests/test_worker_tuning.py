"""Worker tuning (settings.WorkerTuning): read from the environment, and both workflow
runners, the default unsandboxed one and the SDK's sandbox, run the same conversation."""

from __future__ import annotations

import re

from sqlalchemy import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.db import Database
from conversation_client import Conversations
from demo.tables import ClaimNote
from settings import WorkerSettings, WorkerTuning
from support.ids import new_id
from worker import build_worker, default_agents


def test_tuning_is_read_from_the_environment() -> None:
    settings = WorkerSettings.from_env(
        {
            "WORKER_STICKY_TIMEOUT": "2.5",
            "WORKER_MAX_CACHED_WORKFLOWS": "40",
            "WORKFLOW_SANDBOX": "1",
            "WORKER_MAX_CONCURRENT_WORKFLOW_TASKS": "12",
            "WORKER_MAX_CONCURRENT_ACTIVITIES": "300",
        }
    )
    assert settings.tuning() == WorkerTuning(
        sticky_timeout=2.5,
        max_cached_workflows=40,
        workflow_sandbox=True,
        max_concurrent_workflow_tasks=12,
        max_concurrent_activities=300,
    )
    assert WorkerSettings.from_env({}).tuning() == WorkerTuning()


async def test_sandboxed_and_unsandboxed_runners_give_the_same_turn(
    client: Client, db: Database, indexed: bool
) -> None:
    replies, notes = [], []
    for sandbox in (False, True):
        task_queue = f"tq-{new_id()}"
        conversations = Conversations(client, task_queue)
        agents = default_agents(WorkerSettings(), db)
        tuning = WorkerTuning(workflow_sandbox=sandbox)
        cid = new_id("tuning")
        async with build_worker(client, task_queue, db, agents, None, indexed, tuning):
            result = await conversations.ask(cid, "add a note to claim 123 that it rained", "m-1")
            await conversations.end(cid)
            await conversations.handle(cid).result()
        replies.append(result.reply)
        async with db.session() as session:
            rows = (await session.scalars(select(ClaimNote.text).order_by(ClaimNote.id))).all()
        notes.append(rows[-1])
        history = await conversations.handle(cid).fetch_history()
        failed = [
            e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        ]
        assert failed == []
    assert [re.sub(r"#\d+", "#N", r) for r in replies] == ["I added note #N to claim 123."] * 2
    assert notes[0] == notes[1]
    assert "rained" in notes[0]
