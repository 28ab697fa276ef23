"""An approval that never comes times out as a denial (time-skipping test server)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from activities.db import Database
from activities.tables import TranscriptMessage
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.agent import claims_assistant
from demo.scripted_model import ScriptedChatCompletionClient
from demo.tables import OutboxEmail
from devserver import start_time_skipping_server
from interface import Message, ToolPolicy
from support.databases import count
from support.ids import new_id
from worker import build_worker


@pytest.fixture(scope="module")
async def skipping() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_time_skipping_server()
    yield env
    await env.shutdown()


async def test_approval_timeout_counts_as_a_denial(
    skipping: WorkflowEnvironment, db: Database
) -> None:
    agent = claims_assistant(ScriptedChatCompletionClient(), db.sessions, email_needs_approval=True)
    day = ToolPolicy(needs_approval=True, approval_timeout=timedelta(days=1))
    agent = replace(
        agent, tools=[replace(t, policy=day) if t.kind == "external" else t for t in agent.tools]
    )
    conversations, cid = Conversations(skipping.client, f"tq-{uuid.uuid4()}"), new_id()
    async with build_worker(skipping.client, conversations.task_queue, db, AgentRegistry([agent])):
        handle = await conversations.send(cid, "email the customer about claim 123", "m-1")
        await conversations.end(cid)
        summary = await handle.result()  # the test server skips the day of waiting
    assert summary.turn_count == 1
    assert await count(db, OutboxEmail, conversation_id=cid) == 0
    async with db.session() as session:
        bodies = (
            await session.scalars(
                select(TranscriptMessage.body).where(
                    TranscriptMessage.conversation_id == cid, TranscriptMessage.role == "tool"
                )
            )
        ).all()
    (tool_result,) = [Message.model_validate_json(b) for b in bodies]
    assert tool_result.content == "Denied: approval timed out" and tool_result.is_error
