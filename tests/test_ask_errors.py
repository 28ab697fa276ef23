"""The `ask` validator and an unknown agent fail with the wire contract's error types."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities.db import Database
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.agent import claims_assistant
from demo.scripted_model import ScriptedChatCompletionClient
from interface import ErrorType, StartConversation, ToolDecision
from support.ids import new_id
from support.workers import WorkerFactory


def cause_of(raised: pytest.ExceptionInfo[WorkflowUpdateFailedError]) -> ApplicationError:
    cause = raised.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_rejected_and_ending_asks_carry_their_types(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    agent = claims_assistant(ScriptedChatCompletionClient(), db.sessions, email_needs_approval=True)
    cid = new_id()
    async with run_worker(db, AgentRegistry([agent])):
        with pytest.raises(WorkflowUpdateFailedError) as empty:
            await conversations.ask(cid, "   ", "m-0")
        waiting = asyncio.create_task(
            conversations.ask(cid, "email the customer about claim 123", "m-1")
        )
        for _ in range(200):  # the turn waits for a person's approval
            state = await conversations.state(cid)
            if state.pending_approvals:
                break
            await asyncio.sleep(0.05)
        await conversations.end(cid)
        with pytest.raises(WorkflowUpdateFailedError) as ending:
            await conversations.ask(cid, "one more thing", "m-2")
        call = state.pending_approvals[0].tool_call_id
        await conversations.decide(cid, ToolDecision(tool_call_id=call, approve=False))
        answered = await waiting
        await conversations.handle(cid).result()
    assert (cause_of(empty).type, cause_of(empty).message) == (
        ErrorType.MESSAGE_REJECTED,
        "text is empty",
    )
    assert (cause_of(ending).type, cause_of(ending).message) == (
        ErrorType.CONVERSATION_ENDING,
        "the conversation is ending",
    )
    assert answered.status == "completed" and answered.tool_calls[0].status == "denied"


async def test_an_unknown_agent_fails_the_ask_with_its_type(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    async with run_worker(db):
        with pytest.raises(WorkflowUpdateFailedError) as raised:
            await conversations.ask(new_id(), "hello", "m-1", StartConversation(agent="nobody"))
    assert cause_of(raised).type == ErrorType.UNKNOWN_AGENT
    assert "cannot start agent 'nobody'" in cause_of(raised).message
