"""Conversations end to end: real dev server, in-process worker, real database rows."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta

import pytest
from agent_workflows.conversation import AgentConversation
from pydantic import BaseModel
from sqlalchemy import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from activities.db import Database
from activities.tables import LedgerEntry, TranscriptMessage
from agents.definitions import AgentDefinition
from agents.errors import ToolBusinessError, ToolRetryableError
from agents.registry import AgentRegistry
from agents.tools import ToolContext, tool
from conversation_client import Conversations
from demo.agent import claims_assistant
from demo.scripted_model import ScriptedChatCompletionClient
from demo.tables import ClaimNote, OutboxEmail
from interface import (
    ConversationSettings,
    RetrySettings,
    StartConversation,
    ToolPolicy,
    UserMessage,
)
from support.databases import count
from support.ids import new_id
from support.workers import WorkerFactory

FAST_RETRIES = ToolPolicy(
    retry=RetrySettings(initial_interval=timedelta(milliseconds=50), maximum_attempts=3)
)


class EchoArgs(BaseModel):
    text: str


def make_agents(db: Database, calls: list[str]) -> AgentRegistry:
    """The claims assistant, and a test agent whose tools count and fail on purpose."""

    @tool(kind="read")
    async def echo(ctx: ToolContext, args: EchoArgs) -> str:
        """Echo the text back."""
        calls.append(args.text)
        return args.text

    @tool(kind="read")
    async def explode(ctx: ToolContext, args: EchoArgs) -> str:
        """Always raises."""
        raise RuntimeError(f"boom on {args.text}")

    @tool(kind="read")
    async def refuse(ctx: ToolContext, args: EchoArgs) -> str:
        """A business rule says no."""
        raise ToolBusinessError("not allowed")

    @tool(kind="read", policy=FAST_RETRIES)
    async def flaky(ctx: ToolContext, args: EchoArgs) -> str:
        """Fails with a retryable error until it has been called `text` times."""
        calls.append("flaky")
        if calls.count("flaky") < int(args.text):
            raise ToolRetryableError("service unavailable")
        return "recovered"

    @tool(kind="read", policy=ToolPolicy(dedupe_identical_calls=False))
    async def roll(ctx: ToolContext, args: EchoArgs) -> str:
        """Not deduplicated: identical calls each run."""
        calls.append(f"roll {args.text}")
        return args.text

    model = ScriptedChatCompletionClient()
    tester = AgentDefinition(
        name="tester",
        system_message="test",
        model_client=model,
        tools=[echo, explode, refuse, flaky, roll],
        max_steps=3,
    )
    return AgentRegistry([claims_assistant(model, db.sessions), tester])


async def history_events(client: Client, conversation_id: str) -> list:
    history = await client.get_workflow_handle(conversation_id).fetch_history()
    return list(history.events)


async def test_demo_conversation_writes_one_note_and_one_email(
    any_db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    cid = new_id()
    async with run_worker(any_db):
        status = await conversations.ask(cid, "Check policy status for claim 123", "m-1")
        note = await conversations.ask(cid, "add a note that the customer called", "m-2")
        email = await conversations.ask(cid, "email the customer an update", "m-3")
    assert "Claim 123 is in_review" in status.reply
    assert [c.name for c in status.tool_calls] == ["get_claim_status"]
    assert note.tool_calls[0].name == "create_claim_note" and note.tool_calls[0].status == "ok"
    assert "ada@example.com" in email.reply
    assert await count(any_db, ClaimNote, conversation_id=cid) == 1
    assert await count(any_db, OutboxEmail, conversation_id=cid) == 1
    async with any_db.session() as session:
        (text,) = (
            await session.scalars(select(ClaimNote.text).where(ClaimNote.claim_id == 123))
        ).all()
    assert text == "The customer called."
    # user, assistant(call), tool, assistant(text) per turn
    assert await count(any_db, TranscriptMessage, conversation_id=cid) == 12
    assert await count(any_db, LedgerEntry, conversation_id=cid, status="succeeded") == 2


async def test_same_signal_three_times_is_one_turn(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    cid = new_id()
    async with run_worker(db):
        for _ in range(3):
            await conversations.send(cid, "add a note to claim 123 that it was signalled", "m-1")
        await conversations.ask(cid, "!say done", "m-2")
        state = await conversations.state(cid)
    assert state.turn_count == 2
    assert await count(db, ClaimNote, conversation_id=cid) == 1


async def test_concurrent_start_with_first_message_makes_one_conversation(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> None:
    cid = new_id()
    async with run_worker(db):
        results = await asyncio.gather(
            *(
                conversations.ask(cid, "add a note to claim 123 that we started", "m-1")
                for _ in range(2)
            )
        )
        state = await conversations.state(cid)
    assert results[0] == results[1]
    assert state.turn_count == 1
    assert await count(db, ClaimNote, conversation_id=cid) == 1
    runs = [e async for e in client.list_workflows(f'WorkflowId="{cid}"')]
    assert len(runs) == 1


async def test_repeated_ask_returns_the_recorded_result(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    cid = new_id()
    async with run_worker(db):
        first = await conversations.ask(cid, "add a note to claim 123 that we asked", "m-1")
        again = await conversations.ask(cid, "add a note to claim 123 that we asked", "m-1")
        state = await conversations.state(cid)
    assert again == first
    assert state.turn_count == 1
    assert await count(db, ClaimNote, conversation_id=cid) == 1


async def test_fifty_conversations_stay_isolated(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    ids = [new_id() for _ in range(50)]

    async def talk(cid: str) -> tuple[str, str]:
        result = await conversations.ask(cid, f"!call echo {json.dumps({'text': cid})}", f"{cid}-1")
        return cid, result.reply + result.tool_calls[0].result

    calls: list[str] = []
    async with run_worker(db, make_agents(db, calls)):
        start = StartConversation(agent="tester")
        for cid in ids:
            await conversations.start(cid, start)
        replies = await asyncio.gather(*(talk(cid) for cid in ids))
    for cid, reply in replies:
        assert reply == cid + cid, "a reply or tool result landed in another conversation"
    assert sorted(calls) == sorted(ids)
    for cid in ids[:5]:
        assert await count(db, TranscriptMessage, conversation_id=cid) == 4


async def test_twenty_concurrent_asks_run_one_at_a_time_in_order(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    cid = new_id()
    async with run_worker(db):
        await conversations.start(cid)
        results = await asyncio.gather(
            *(conversations.ask(cid, f"!say reply {n}", f"m-{n}") for n in range(20))
        )
    assert sorted(r.turn for r in results) == list(range(1, 21))
    assert all(r.reply == f"reply {r.message_id[2:]}" for r in results)
    async with db.session() as session:
        rows = (
            await session.execute(
                select(TranscriptMessage.role, TranscriptMessage.body)
                .where(TranscriptMessage.conversation_id == cid)
                .order_by(TranscriptMessage.seq)
            )
        ).all()
    roles = [role for role, _ in rows]
    assert roles == ["user", "assistant"] * 20, "turns interleaved"
    by_turn = sorted(results, key=lambda r: r.turn)
    user_texts = [json.loads(body)["content"] for role, body in rows if role == "user"]
    assert user_texts == [f"!say reply {r.message_id[2:]}" for r in by_turn]


async def test_tool_errors_go_back_to_the_model(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    cid, calls = new_id(), []
    script = "\n".join(
        [
            '!call explode {"text": "x"}',
            '!call refuse {"text": "x"}',
            '!call no_such_tool {"text": "x"}',
            '!call echo {"wrong": 1}',
            "!call echo {not json",
            '!call echo {"text": "fine"}',
        ]
    )
    async with run_worker(db, make_agents(db, calls)):
        start = StartConversation(agent="tester")
        result = await conversations.ask(cid, script, "m-1", start)
        after = await conversations.ask(cid, "!say still here", "m-2", start)
    errors = {
        c.name: json.loads(c.result)["error"] for c in result.tool_calls if c.status == "error"
    }
    assert result.status == "completed"
    assert [c.status for c in result.tool_calls] == ["error"] * 5 + ["ok"]
    assert errors["explode"] == "RuntimeError"
    assert errors["refuse"] == "ToolBusinessError"
    assert errors["no_such_tool"] == "unknown_tool"
    assert json.loads(result.tool_calls[3].result)["error"] == "invalid_arguments"
    assert json.loads(result.tool_calls[4].result)["error"] == "invalid_json"
    assert calls == ["fine"]
    assert "explode did not work" in result.reply
    assert after.reply == "still here"


async def test_identical_calls_in_one_response_run_once(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> None:
    cid, calls = new_id(), []
    script = '!call echo {"text": "a"}\n!call echo {"text":"a"}\n!call echo {"text": "b"}'
    async with run_worker(db, make_agents(db, calls)):
        result = await conversations.ask(cid, script, "m-1", StartConversation(agent="tester"))
    assert sorted(calls) == ["a", "b"]
    assert [c.result for c in result.tool_calls] == ["a", "a", "b"]
    assert len({c.id for c in result.tool_calls}) == 3
    scheduled = [
        e
        for e in await history_events(client, cid)
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "agent.call_tool-v1"
    ]
    ids = [e.activity_task_scheduled_event_attributes.activity_id for e in scheduled]
    assert ids == [f"{cid}/t1/s1/c0", f"{cid}/t1/s1/c1"]


async def test_retryable_tool_errors_are_retried_under_the_tools_policy(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    cid, calls = new_id(), []
    async with run_worker(db, make_agents(db, calls)):
        start = StartConversation(agent="tester")
        recovered = await conversations.ask(cid, '!call flaky {"text": "3"}', "m-1", start)
        calls.clear()
        exhausted = await conversations.ask(cid, '!call flaky {"text": "4"}', "m-2", start)
    assert recovered.tool_calls[0].status == "ok" and recovered.tool_calls[0].result == "recovered"
    assert exhausted.tool_calls[0].status == "error"
    assert json.loads(exhausted.tool_calls[0].result)["error"] == "ToolRetryableError"
    assert calls == ["flaky"] * 3  # maximum_attempts=3, then the model hears of it
    assert exhausted.status == "completed"


async def test_tools_can_opt_out_of_identical_call_dedup(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    cid, calls = new_id(), []
    script = '!call roll {"text": "d6"}\n!call roll {"text": "d6"}'
    async with run_worker(db, make_agents(db, calls)):
        await conversations.ask(cid, script, "m-1", StartConversation(agent="tester"))
    assert calls == ["roll d6", "roll d6"]


async def test_step_limit_is_reported_and_the_conversation_goes_on(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    cid, calls = new_id(), []
    async with run_worker(db, make_agents(db, calls)):
        start = StartConversation(agent="tester")
        limited = await conversations.ask(cid, '!loop echo {"text": "again"}', "m-1", start)
        after = await conversations.ask(cid, "!say next", "m-2", start)
    assert limited.status == "step_limit"
    assert limited.steps == 3 and len(calls) == 3
    assert "stopped after 3 steps" in limited.reply
    assert after.status == "completed" and after.reply == "next"
    async with db.session() as session:
        roles = (
            await session.scalars(
                select(TranscriptMessage.role)
                .where(TranscriptMessage.conversation_id == cid)
                .order_by(TranscriptMessage.seq)
            )
        ).all()
    # the last step's tool result is written before the next turn's user message
    assert roles == ["user"] + ["assistant", "tool"] * 3 + ["user", "assistant"]


@pytest.mark.parametrize(
    ("text", "reason"), [("   ", "text is empty"), ("x" * 40, "longer than 32 characters")]
)
async def test_bad_user_messages_are_rejected(
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    caplog: pytest.LogCaptureFixture,
    text: str,
    reason: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="temporalio.workflow")
    cid = new_id()
    start = StartConversation(settings=ConversationSettings(max_message_chars=32))
    async with run_worker(db):
        with pytest.raises(WorkflowUpdateFailedError) as raised:
            await conversations.ask(cid, text, "m-bad", start)
        await conversations.send(cid, text, "m-bad-signal", start)
        ok = await conversations.ask(cid, "!say fine", "m-ok", start)
        state = await conversations.state(cid)
    assert reason in str(raised.value.cause)
    assert ok.turn == 1 and state.turn_count == 1  # neither bad message made a turn
    dropped = [r.getMessage() for r in caplog.records if "m-bad-signal" in r.getMessage()]
    assert dropped and reason in dropped[0]


async def test_continue_as_new_loses_and_repeats_no_turn(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> None:
    cid = new_id()
    start = StartConversation(settings=ConversationSettings(max_turns_per_run=3))
    async with run_worker(db):
        await conversations.start(cid, start)
        results = [await conversations.ask(cid, f"!say r{n}", f"m-{n}", start) for n in range(4)]
        results += await asyncio.gather(  # a burst: the new run waits for an empty queue
            *(conversations.ask(cid, f"!say r{n}", f"m-{n}", start) for n in range(4, 8))
        )
        await conversations.send(cid, "!say r0 again", "m-0", start)  # seen before the new runs
        retried = await conversations.ask(cid, "!say r7", "m-7", start)
        final = await conversations.ask(cid, "!say last", "m-last", start)
        state = await conversations.state(cid)
    assert sorted(r.turn for r in results) == list(range(1, 9))
    assert retried == next(r for r in results if r.message_id == "m-7")
    assert final.turn == 9 and state.turn_count == 9
    runs = [e async for e in client.list_workflows(f'WorkflowId="{cid}"')]
    assert len(runs) >= 3
    assert await count(db, TranscriptMessage, conversation_id=cid, role="user") == 9


async def test_end_finishes_after_accepted_turns(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    cid = new_id()
    async with run_worker(db):
        await conversations.send(cid, "!say one", "m-1")
        await conversations.end(cid)
        summary = await conversations.handle(cid).result()
        with pytest.raises(RPCError, match="already completed"):
            await conversations.handle(cid).execute_update(
                AgentConversation.ask, UserMessage(message_id="m-2", text="late")
            )
    assert summary.turn_count == 1


async def test_ask_for_a_turn_older_than_the_kept_results_does_not_hang(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    cid = new_id()
    start = StartConversation(settings=ConversationSettings(recent_results=2))
    async with run_worker(db):
        for n in range(4):
            await conversations.ask(cid, f"!say r{n}", f"m-{n}", start)
        old = await asyncio.wait_for(conversations.ask(cid, "!say r0", "m-0-again", start), 10)
        retried = await asyncio.wait_for(
            conversations.handle(cid).execute_update(
                AgentConversation.ask, UserMessage(message_id="m-0", text="!say r0")
            ),
            10,
        )
        state = await conversations.state(cid)
    assert old.reply == "r0" and old.turn == 5
    assert retried.status == "duplicate" and retried.turn == 0
    assert state.turn_count == 5


async def test_an_ask_retried_after_the_end_does_not_start_the_conversation_again(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> None:
    """A client retrying its last ask after the conversation ended gets the recorded result
    or WorkflowAlreadyStartedError (the server answers from the closed run's update record
    while it still holds it); a new message gets the error. Neither starts the conversation
    again as a new, empty run that would repeat the turn."""
    cid = new_id()
    async with run_worker(db):
        first = await conversations.ask(cid, "add a note to claim 123 that it rained", "m-1")
        await conversations.end(cid)
        await conversations.handle(cid).result()
        try:
            again = await conversations.ask(cid, "add a note to claim 123 that it rained", "m-1")
            assert again == first
        except WorkflowAlreadyStartedError:
            pass
        with pytest.raises(WorkflowAlreadyStartedError):
            await conversations.ask(cid, "one more thing", "m-2")
        with pytest.raises(WorkflowAlreadyStartedError):
            await conversations.send(cid, "add a note to claim 123 that it rained", "m-1")
    runs = [w async for w in client.list_workflows(f'WorkflowId = "{cid}"')]
    assert len(runs) == 1 and await count(db, ClaimNote) == 1
