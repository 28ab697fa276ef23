"""Token budgets against an endpoint that enforces its context window (support/fake_openai):
long conversations stay within it, an overflow shrinks the window, failures are typed, and a
failed turn resumes without repeating its tool calls."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from autogen_ext.models.openai import OpenAIChatCompletionClient
from llama_index.llms.openai import OpenAI
from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.db import Database
from agents.definitions import AgentDefinition
from agents.registry import AgentRegistry
from agents.tools import ToolContext, tool
from conversation_client import Conversations
from interface import ConversationSettings, ErrorType, StartConversation
from support.fake_openai import (
    API_KEY,
    Reply,
    error,
    garbage,
    serving,
    text,
    tool_call,
)
from support.ids import new_id
from support.workers import WorkerFactory

MODEL = "gpt-4-0613"  # autogen-ext knows its window: 8,192 tokens
START = StartConversation(agent="policy-bot")
RESULT_CHARS = 2048


class PolicyArgs(BaseModel):
    policy_id: str


class Effects:
    """The tool's side effects, one per run."""

    def __init__(self) -> None:
        self.runs: list[str] = []


def terms(policy_id: str) -> str:
    """About 2 KB of policy terms as JSON, which tokenizes as densely as real tool results."""
    clauses = [
        {"ref": f"{policy_id}-{i:03d}", "limit": i * 7919 % 99991, "deductible": i * 31 % 577}
        for i in range(40)
    ]
    return json.dumps(clauses)[:RESULT_CHARS]


def policy_bot(
    url: str, effects: Effects, framework: str = "autogen", **options: Any
) -> AgentRegistry:
    @tool(kind="read")
    async def lookup_policy(ctx: ToolContext, args: PolicyArgs) -> str:
        """Look up a policy's full terms."""
        effects.runs.append(ctx.idempotency_key)
        return terms(args.policy_id)

    client: Any = OpenAIChatCompletionClient(model=MODEL, api_key=API_KEY, base_url=url)
    if framework == "llamaindex":
        client = OpenAI(model="gpt-4o-mini", api_key=API_KEY, api_base=url, max_retries=0)
    agent = AgentDefinition(
        name="policy-bot",
        system_message="You look up insurance policies.",
        model_client=client,
        tools=[lookup_policy],
        **options,
    )
    return AgentRegistry([agent])


def reply(body: dict[str, Any]) -> Reply:
    """A model that looks up a policy for each user message, then answers."""
    last = body["messages"][-1]
    if last["role"] == "tool":
        status, headers, payload = text("Policy looked up.")
    else:
        n = sum(m["role"] == "user" for m in body["messages"])
        call_id = f"call_{n}_{time.monotonic_ns()}"
        status, headers, payload = tool_call("lookup_policy", f'{{"policy_id": "P-{n}"}}', call_id)
    assert isinstance(payload, dict)
    payload["model"] = MODEL
    return status, headers, payload


def answer(content: str) -> Reply:
    status, headers, payload = text(content)
    assert isinstance(payload, dict)
    payload["model"] = MODEL
    return status, headers, payload


def lookup() -> Reply:
    status, headers, payload = tool_call("lookup_policy", '{"policy_id": "P-1"}', "call_a")
    assert isinstance(payload, dict)
    payload["model"] = MODEL
    return status, headers, payload


TURNS = int(os.environ.get("LONG_CONVERSATION_TURNS", "200"))


async def test_a_long_conversation_stays_within_the_context_window(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    effects, cid = Effects(), new_id("long")
    with serving(context_window=8192) as fake:
        fake.responder = reply
        async with run_worker(db, policy_bot(fake.url, effects)):
            results = [
                await conversations.ask(cid, f"What does policy P-{n} cover?", f"m-{n}", START)
                for n in range(TURNS)
            ]
    failed = [r for r in results if r.status != "completed"]
    assert failed == [], f"{len(failed)} of {TURNS} turns failed: {failed[0]}"
    assert fake.refused == [], "a prompt went over the window: the budget did not hold"
    assert 6000 < max(fake.prompt_tokens) <= 8192  # the window filled up, then was cut
    calls = [c for r in results for c in r.tool_calls]
    assert len(calls) == TURNS and len(effects.runs) == TURNS  # one effect per tool call
    assert len(set(effects.runs)) == TURNS


@pytest.mark.parametrize("framework", ["autogen", "llamaindex"])
async def test_an_overflow_shrinks_the_window_and_calls_again(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, framework: str
) -> None:
    # the endpoint's window is smaller than the client believes (8,192 / 128,000)
    effects, cid = Effects(), new_id()
    with serving(context_window=3000) as fake:
        fake.responder = reply
        async with run_worker(db, policy_bot(fake.url, effects, framework)):
            results = [
                await conversations.ask(cid, f"Policy P-{n}?", f"m-{n}", START) for n in range(8)
            ]
    assert [r.status for r in results] == ["completed"] * 8
    assert fake.refused, "the endpoint never refused: nothing was shrunk"
    assert all(r[2]["error"]["code"] == "context_length_exceeded" for r in fake.refused)  # type: ignore[index]


async def test_a_message_too_large_for_any_window_fails_its_turn_only(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    effects, cid = Effects(), new_id()
    roomy = START.model_copy(update={"settings": ConversationSettings(max_message_chars=60_000)})
    with serving(context_window=8192) as fake:
        fake.script = [answer("Fine.")]
        async with run_worker(db, policy_bot(fake.url, effects)):
            huge = await conversations.ask(cid, "claim " * 9000, "m-1", roomy)
            after = await conversations.ask(cid, "Short question.", "m-2", roomy)
    assert huge.status == "failed" and huge.error is not None
    assert huge.error.type == ErrorType.CONTEXT_LENGTH_EXCEEDED
    assert "context window" in huge.reply
    assert after.status == "completed" and after.reply == "Fine."
    assert len(fake.requests) == 1, "the model was called with the message it cannot take"


async def model_inputs(client: Client, cid: str) -> list[dict[str, Any]]:
    """The input of each scheduled model activity, from the workflow's history."""
    history = await client.get_workflow_handle(cid).fetch_history()
    return [
        json.loads(e.activity_task_scheduled_event_attributes.input.payloads[0].data)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "agent.model_call-v1"
    ]


async def test_failed_turns_are_typed_and_do_not_pile_up(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> None:
    effects, cid = Effects(), new_id()
    with serving() as fake:
        fake.script = [error(400) for _ in range(6)] + [answer("Back again.")]
        async with run_worker(db, policy_bot(fake.url, effects)):
            failed = [await conversations.ask(cid, f"try {n}", f"m-{n}", START) for n in range(6)]
            after = await conversations.ask(cid, "again", "m-6", START)
    assert {(r.status, r.error.type if r.error else None) for r in failed} == {
        ("failed", "ModelHTTP400")
    }
    assert "could not be reached" not in failed[0].reply
    assert "HTTP 400" in failed[0].reply
    assert after.status == "completed" and after.reply == "Back again."
    # each call carries only its own turn's message: the failed ones were written already
    assert [len(i["new_messages"]) for i in await model_inputs(client, cid)] == [1] * 7
    assert [m["role"] for m in fake.requests[-1][1]["messages"]].count("user") == 7


async def test_an_unreadable_answer_fails_the_turn_after_a_few_attempts(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    effects, cid = Effects(), new_id()
    with serving() as fake:
        fake.script = [garbage() for _ in range(3)] + [answer("Readable.")]
        async with run_worker(db, policy_bot(fake.url, effects)):
            started = time.monotonic()
            bad = await conversations.ask(cid, "hello", "m-1", START)
            elapsed = time.monotonic() - started
            good = await conversations.ask(cid, "hello again", "m-2", START)
    assert bad.status == "failed" and bad.error is not None
    assert bad.error.type == ErrorType.MODEL_RESPONSE_INVALID
    assert elapsed < 30 and len(fake.requests) == 4
    assert good.status == "completed"


async def test_a_failed_turn_resumes_without_repeating_its_tools(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    effects, cid = Effects(), new_id()
    with serving() as fake:
        fake.script = [lookup(), error(400), answer("P-1 covers floods.")]
        async with run_worker(db, policy_bot(fake.url, effects)):
            failed = await conversations.ask(cid, "What does P-1 cover?", "m-1", START)
            again = await conversations.ask(cid, "What does P-1 cover?", "m-1", START)
            resumed = await conversations.ask(cid, "", "m-1", START, resume=True)
            twice = await conversations.ask(cid, "", "m-1", START, resume=True)
            state = await conversations.state(cid)
    assert failed.status == "failed" and len(failed.tool_calls) == 1
    assert again == failed  # without resume: the recorded failure
    assert resumed.status == "completed" and resumed.reply == "P-1 covers floods."
    assert resumed.turn == failed.turn == 1 and len(resumed.tool_calls) == 1
    assert twice == resumed
    assert len(effects.runs) == 1, "the resumed turn ran its tool again"
    last = [m["role"] for m in fake.requests[-1][1]["messages"]]
    assert last == ["system", "user", "assistant", "tool"]
    assert state.turn_count == 1
