"""Conversation IDs: one documented limit at every entry point, and columns that hold any
workflow ID Temporal accepts (issue 15, finding 4: PostgreSQL's varchar(255) stuck a
conversation whose ID was longer)."""

from __future__ import annotations

import asyncio

import pytest
from agent_workflows.conversation import AgentConversation
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from activities.db import Database
from activities.tables import LedgerEntry, TranscriptMessage
from conversation_client import Conversations
from gateway._models import MAX_ID_CHARS
from interface import ErrorType, StartConversation, TurnResult, UserMessage
from interface.contract import MAX_CONVERSATION_ID_CHARS
from support.databases import count
from support.ids import new_id
from support.workers import WorkerFactory

TURN_SECONDS = 30


def long_id(length: int) -> str:
    return (new_id() + "-" + "x" * length)[:length]


async def ask_as_another_sdk(client: Client, task_queue: str, cid: str, text: str) -> TurnResult:
    """Update-with-start without our client's ID check, as a Go or Java client would."""
    message = UserMessage(message_id="m-1", text=text)
    operation = WithStartWorkflowOperation(
        AgentConversation.run,
        StartConversation(),
        id=cid,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    update = client.execute_update_with_start_workflow(
        AgentConversation.ask,  # type: ignore[arg-type]
        message,
        start_workflow_operation=operation,
        id=message.message_id,
    )
    return await asyncio.wait_for(update, TURN_SECONDS)


def test_the_gateway_and_the_client_share_one_limit() -> None:
    assert MAX_ID_CHARS == MAX_CONVERSATION_ID_CHARS == 200


@pytest.mark.parametrize("cid", ["", "   ", "x" * (MAX_CONVERSATION_ID_CHARS + 1)])
async def test_the_client_refuses_an_id_it_cannot_start(
    conversations: Conversations, cid: str
) -> None:
    with pytest.raises(ValueError, match="conversation ID"):
        await conversations.ask(cid, "hi", "m-1")
    with pytest.raises(ValueError, match="conversation ID"):
        await conversations.send(cid, "hi", "m-1")
    with pytest.raises(ValueError, match="conversation ID"):
        await conversations.start(cid)


async def test_an_id_at_the_limit_is_served(
    any_db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    cid = long_id(MAX_CONVERSATION_ID_CHARS)
    async with run_worker(any_db):
        result = await asyncio.wait_for(
            conversations.ask(cid, "add a note to claim 123 that the ID is long", "m-1"),
            TURN_SECONDS,
        )
    assert result.status == "completed" and result.tool_calls[0].status == "ok"
    assert await count(any_db, LedgerEntry, conversation_id=cid, status="succeeded") == 1


@pytest.mark.parametrize("length", [MAX_CONVERSATION_ID_CHARS + 100, 1000])
async def test_a_longer_id_from_another_sdk_fails_clearly_instead_of_sticking(
    any_db: Database, run_worker: WorkerFactory, client: Client, task_queue: str, length: int
) -> None:
    """Before, PostgreSQL's varchar(255) failed every model call for 10 minutes a turn, and
    a 1,000-character ID stuck the workflow task on Temporal's activity ID limit."""
    cid = long_id(length)
    async with run_worker(any_db):
        with pytest.raises(WorkflowUpdateFailedError) as rejected:
            await ask_as_another_sdk(client, task_queue, cid, "add a note to claim 123")
        with pytest.raises(WorkflowFailureError) as failed:
            await asyncio.wait_for(client.get_workflow_handle(cid).result(), TURN_SECONDS)
    for error in (rejected.value, failed.value):
        assert isinstance(error.cause, ApplicationError)
        assert error.cause.type == ErrorType.INVALID_CONVERSATION_ID
        assert f"at most {MAX_CONVERSATION_ID_CHARS}" in error.cause.message
    assert await count(any_db, TranscriptMessage, conversation_id=cid) == 0
