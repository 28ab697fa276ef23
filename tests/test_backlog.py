"""A burst of queued turns: continue-as-new mid-queue, a bounded backlog, no turn lost."""

from __future__ import annotations

import asyncio
import logging

import pytest
from agent_workflows.conversation import AgentConversation
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from activities.db import Database
from activities.tables import TranscriptMessage
from agents.registry import AgentRegistry
from conversation_client import CONTINUED_BEFORE_ANSWER, Conversations
from demo.agent import claims_assistant
from demo.scripted_model import ScriptedChatCompletionClient
from gateway._errors import from_exception
from interface import (
    ConversationSettings,
    ErrorType,
    StartConversation,
    ToolDecision,
    UserMessage,
)
from support.databases import count
from support.ids import new_id
from support.workers import WorkerFactory


async def carried_queues(client: Client, conversation_id: str) -> list[int]:
    """Queue lengths each run handed on at continue-as-new, oldest run first."""
    runs = [e async for e in client.list_workflows(f'WorkflowId="{conversation_id}"')]
    lengths = []
    for run in sorted(runs, key=lambda r: r.start_time):
        handle = client.get_workflow_handle(conversation_id, run_id=run.run_id)
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                payload = event.workflow_execution_continued_as_new_event_attributes.input
                (start,) = pydantic_data_converter.payload_converter.from_payloads(
                    payload.payloads, [StartConversation]
                )
                assert start.carried is not None
                lengths.append(len(start.carried.queue))
    return lengths


async def test_a_burst_continues_as_new_mid_queue_and_loses_no_turn(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> None:
    """The repro's burst, scaled down by a small turn limit: 12 asks and 12 signals queued
    at once, the run limited to 3 turns. Every accepted turn is answered once, and the
    runs continue as new with turns still queued."""
    cid = new_id()
    start = StartConversation(settings=ConversationSettings(max_turns_per_run=3))
    async with run_worker(db):
        await conversations.start(cid, start)
        sends = [conversations.send(cid, f"!say s{n}", f"s-{n}", start) for n in range(12)]
        asks = [conversations.ask(cid, f"!say a{n}", f"a-{n}", start) for n in range(12)]
        *_, results = await asyncio.gather(asyncio.gather(*sends), asyncio.gather(*asks))
        final = await conversations.ask(cid, "!say last", "m-last", start)
        state = await conversations.state(cid)
        status = (await conversations.handle(cid).describe()).status
    assert [r.reply for r in results] == [f"a{n}" for n in range(12)]
    assert final.turn == 25 and state.turn_count == 25
    assert await count(db, TranscriptMessage, conversation_id=cid, role="user") == 25
    assert await count(db, TranscriptMessage, conversation_id=cid, role="assistant") == 25
    assert status == WorkflowExecutionStatus.RUNNING
    assert any(length > 0 for length in await carried_queues(client, cid))


async def test_over_the_bound_asks_get_backlog_full_and_signals_are_dropped(
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A turn waits for approval; two turns fill the queue (max_queued_turns=2); the next
    ask is refused with BacklogFull before it enters history, the next signal is dropped
    with a logged reason, and once the queue drains new turns are taken again."""
    agent = claims_assistant(ScriptedChatCompletionClient(), db.sessions, email_needs_approval=True)
    cid = new_id()
    start = StartConversation(settings=ConversationSettings(max_queued_turns=2))
    caplog.set_level(logging.WARNING)
    async with run_worker(db, AgentRegistry([agent])):
        blocked = asyncio.create_task(
            conversations.ask(cid, "email the customer about claim 123", "m-1", start)
        )
        state = await _wait_for_approval(conversations, cid)
        queued = [
            asyncio.create_task(conversations.ask(cid, f"!say q{n}", f"q-{n}", start))
            for n in range(2)
        ]
        while (await conversations.state(cid)).queued_turns < 2:
            await asyncio.sleep(0.05)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await asyncio.wait_for(conversations.ask(cid, "!say over", "m-over", start), 10)
        await conversations.send(cid, "!say dropped", "m-dropped", start)
        call = state.pending_approvals[0].tool_call_id
        await conversations.decide(cid, ToolDecision(tool_call_id=call, approve=True))
        answers = [await blocked, *await asyncio.gather(*queued)]
        later = await conversations.ask(cid, "!say over", "m-over", start)
        final = await conversations.state(cid)
        events = [e async for e in conversations.handle(cid).fetch_history_events()]
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == ErrorType.BACKLOG_FULL
    assert [a.status for a in answers] == ["completed"] * 3
    assert later.reply == "over" and final.turn_count == 4
    assert "m-dropped" not in [m.content for m in final.messages]
    dropped = [r.getMessage() for r in caplog.records if "m-dropped" in r.getMessage()]
    assert dropped and "backlog full" in dropped[0]
    rejected = [e for e in events if "m-over" in str(e) and e.event_type == _ACCEPTED]
    assert len(rejected) == 1  # only the later, accepted ask is in history


_ACCEPTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED


async def _wait_for_approval(conversations: Conversations, cid: str):  # type: ignore[no-untyped-def]
    for _ in range(200):
        try:
            state = await conversations.state(cid)
        except Exception:  # not started yet
            state = None
        if state is not None and state.pending_approvals:
            return state
        await asyncio.sleep(0.05)
    raise AssertionError("no approval became pending")


async def test_an_ask_queued_at_continue_as_new_is_answered_when_asked_again(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    """A plain client (no retry of its own): the run continues as new while its ask waits
    in the queue; the server fails that update with AcceptedUpdateCompletedWorkflow, and
    the same update ID asked again is answered by the next run, once."""
    agent = claims_assistant(ScriptedChatCompletionClient(), db.sessions, email_needs_approval=True)
    cid = new_id()
    start = StartConversation(settings=ConversationSettings(max_turns_per_run=1))
    message = UserMessage(message_id="q-1", text="!say queued")
    async with run_worker(db, AgentRegistry([agent])):
        blocked = asyncio.create_task(
            conversations.ask(cid, "email the customer about claim 123", "m-1", start)
        )
        state = await _wait_for_approval(conversations, cid)
        handle = conversations.handle(cid)
        plain = asyncio.create_task(handle.execute_update(AgentConversation.ask, message, id="q-1"))
        while (await conversations.state(cid)).queued_turns < 1:
            await asyncio.sleep(0.05)
        call = state.pending_approvals[0].tool_call_id
        await conversations.decide(cid, ToolDecision(tool_call_id=call, approve=True))
        await blocked
        with pytest.raises(WorkflowUpdateFailedError) as abandoned:
            await plain
        again = await conversations.handle(cid).execute_update(
            AgentConversation.ask, message, id="q-1"
        )
        retried = await conversations.handle(cid).execute_update(
            AgentConversation.ask, message, id="q-1"
        )
        final = await conversations.state(cid)
    cause = abandoned.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == CONTINUED_BEFORE_ANSWER
    assert (again.reply, again.turn) == ("queued", 2) and retried == again
    assert final.turn_count == 2


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        (ErrorType.BACKLOG_FULL, 429, "backlog_full"),
        (ErrorType.CONVERSATION_CLOSED, 409, "conversation_closed"),
    ],
)
def test_the_gateway_maps_the_new_error_types(kind: ErrorType, status: int, code: str) -> None:
    error = WorkflowUpdateFailedError(ApplicationError("no", type=kind))
    api_error = from_exception(error, "c-1")
    response = api_error.response(retry_after=3)
    assert (api_error.status, api_error.code) == (status, code)
    assert response.headers.get("Retry-After") == ("3" if status == 429 else None)
