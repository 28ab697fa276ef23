"""Microsoft Agent Framework: an `Agent` with its instructions, function tools and its own
OpenAI chat client, registered unmodified, runs durably against the local fake endpoint."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from agent_framework import Agent, FunctionTool, agent_middleware, tool
from agent_framework.exceptions import ChatClientException
from agent_framework.openai import OpenAIChatCompletionClient
from agent_framework_orchestrations import GroupChatBuilder, HandoffBuilder, SequentialBuilder
from pydantic import BaseModel
from sqlalchemy import select
from temporalio.client import Client

from activities.db import Database
from activities.provider_errors import provider_failure
from activities.tables import LedgerEntry
from agents.adapters import ToolOptions, team
from agents.errors import UnsupportedOption
from agents.registry import AgentRegistry
from agents.tools import current_tool_context
from conversation_client import Conversations
from demo.tables import ClaimNote
from examples.agent_framework_claims import claims_assistant
from examples.claims_functions import TOOL_OPTIONS, claims_functions
from interface import StartConversation
from support.attempts import model_attempts
from support.databases import count
from support.fake_openai import API_KEY, FakeOpenAI, Reply, completion, error, text, tool_call
from support.ids import new_id
from support.maf_agents import AGENT, chat_client
from support.paths import ROOT
from support.processes import worker_process
from support.workers import WorkerFactory

START = StartConversation(agent=AGENT)


def note_call() -> Reply:
    call = {
        "id": "call_note",
        "type": "function",
        "function": {
            "name": "create_claim_note",
            "arguments": json.dumps({"claim_id": 123, "text": "Customer called."}),
        },
    }
    return completion({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls")


def registry(db: Database, client: OpenAIChatCompletionClient) -> AgentRegistry:
    agents = AgentRegistry()
    agents.add(AGENT, lambda: claims_assistant(client, db.sessions), tools=TOOL_OPTIONS)
    return agents


async def ledger_statuses(db: Database, cid: str) -> list[str]:
    async with db.session() as session:
        query = select(LedgerEntry.status).where(LedgerEntry.conversation_id == cid)
        return list((await session.scalars(query)).all())


# --- registration ------------------------------------------------------------------------


def test_registration_keeps_instructions_tools_and_options(db: Database) -> None:
    client = OpenAIChatCompletionClient(model="gpt-4o-mini", api_key=API_KEY)
    client.function_invocation_configuration["max_iterations"] = 3
    definition = registry(db, client).get(AGENT)
    assert definition.system_message.startswith("You are a claims assistant")
    assert [(t.name, t.kind) for t in definition.tools] == [
        ("lookup_policy", "read"),
        ("get_claim_status", "read"),
        ("create_claim_note", "database"),
        ("send_customer_email", "external"),
    ]
    assert definition.tools[1].schema["parameters"]["required"] == ["claim_id"]
    assert definition.model_client.options["model"] == "gpt-4o-mini"
    # max_iterations tool rounds, then one answer without tools, as agent_framework does
    assert (definition.max_tool_iterations, definition.max_steps) == (3, 4)


def test_registering_turns_the_clients_own_retries_and_tool_loop_off(db: Database) -> None:
    client = OpenAIChatCompletionClient(model="gpt-4o-mini", api_key=API_KEY)
    assert client.client.max_retries == 2  # the openai SDK's default
    used = registry(db, client).get(AGENT).model_client.client
    assert used.client.max_retries == 0
    assert used.function_invocation_configuration["enabled"] is False
    # the user's own client is left as it was: their in-process runs keep their behaviour
    assert client.client.max_retries == 2
    assert client.function_invocation_configuration["enabled"] is True


async def lookup(claim_id: int) -> str:
    """Look a claim up."""
    return str(claim_id)


def sync_note(claim_id: int) -> str:
    """Write a note (synchronously)."""
    return str(claim_id)


def refusing_agents() -> list[tuple[str, Any, str]]:
    client = OpenAIChatCompletionClient(model="gpt-4o-mini", api_key=API_KEY)
    limited = OpenAIChatCompletionClient(model="gpt-4o-mini", api_key=API_KEY)
    limited.function_invocation_configuration["max_function_calls"] = 5

    @agent_middleware
    async def noop_middleware(context: Any, call_next: Any) -> None:
        await call_next()

    counted = FunctionTool(name="counted", func=lookup, max_invocations=2)
    return [
        ("middleware", Agent(client=client, name="a", middleware=[noop_middleware]), "middleware"),
        (
            "conversation_id",
            Agent(client=client, name="a", default_options={"conversation_id": "c-1"}),
            "conversation_id",
        ),
        (
            "tool_choice",
            Agent(client=client, name="a", default_options={"tool_choice": "required"}),
            "tool_choice",
        ),
        ("max_function_calls", Agent(client=limited, name="a"), "max_function_calls"),
        ("max_invocations", Agent(client=client, name="a", tools=[counted]), "max_invocations"),
    ]


@pytest.mark.parametrize("case", range(5))
def test_options_it_cannot_honour_are_refused_by_name(case: int) -> None:
    label, agent, option = refusing_agents()[case]
    with pytest.raises(UnsupportedOption, match=option):
        AgentRegistry().add(label, lambda: agent)


def test_context_providers_are_refused_by_name() -> None:
    from agent_framework import InMemoryHistoryProvider

    client = OpenAIChatCompletionClient(model="gpt-4o-mini", api_key=API_KEY)
    agent = Agent(client=client, name="a", context_providers=[InMemoryHistoryProvider()])
    with pytest.raises(UnsupportedOption, match="context_providers"):
        AgentRegistry().add("a", lambda: agent)


def test_a_sync_function_cannot_be_a_database_tool() -> None:
    client = OpenAIChatCompletionClient(model="gpt-4o-mini", api_key=API_KEY)
    agent = Agent(client=client, name="a", tools=[sync_note])
    with pytest.raises(UnsupportedOption, match="sync_note.*synchronous"):
        AgentRegistry().add("a", lambda: agent, tools=ToolOptions({"sync_note": "database"}))


def test_hosted_tools_are_refused_by_name() -> None:
    client = OpenAIChatCompletionClient(model="gpt-4o-mini", api_key=API_KEY)
    agent = Agent(client=client, name="a", tools=[client.get_web_search_tool()])
    with pytest.raises(UnsupportedOption, match="web_search.*only function tools"):
        AgentRegistry().add("a", lambda: agent)


class ClaimAnswer(BaseModel):
    claim_id: int
    status: str


def test_response_format_is_the_output_schema_and_is_sent() -> None:
    client = OpenAIChatCompletionClient(model="gpt-4o-mini", api_key=API_KEY)
    agent = Agent(client=client, name="a", default_options={"response_format": ClaimAnswer})
    registry = AgentRegistry()
    registry.add("a", lambda: agent)
    definition = registry.get("a")
    assert definition.output_schema == ClaimAnswer.model_json_schema()
    assert definition.model_client.options["response_format"] is ClaimAnswer


def test_approval_mode_maps_onto_the_tool_policy() -> None:
    client = OpenAIChatCompletionClient(model="gpt-4o-mini", api_key=API_KEY)
    approved = tool(approval_mode="always_require")(lookup)
    agent = Agent(client=client, name="a", tools=[approved])
    registry = AgentRegistry()
    registry.add("a", lambda: agent)
    assert registry.get("a").spec().tools["lookup"].needs_approval is True


# --- durable runs --------------------------------------------------------------------------


async def test_a_tool_that_writes_a_row_runs_once_under_the_ledger(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script = [note_call(), text("I added the note to claim 123.")]
    cid = new_id()
    async with run_worker(db, registry(db, chat_client(fake_openai.url))):
        result = await conversations.ask(cid, "Note that the customer called.", "m-1", START)
    assert result.status == "completed" and result.reply == "I added the note to claim 123."
    assert [(c.name, c.status) for c in result.tool_calls] == [("create_claim_note", "ok")]
    assert await count(db, ClaimNote, conversation_id=cid) == 1
    assert await ledger_statuses(db, cid) == ["succeeded"]
    (_, first), (_, second) = fake_openai.requests
    assert first["model"] == "gpt-4o-mini" and first["auth"] == f"Bearer {API_KEY}"
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    assert second["messages"][-1]["tool_call_id"] == "call_note"


async def test_a_500_is_retried_by_temporal_not_by_the_client(
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    fake_openai: FakeOpenAI,
    client: Client,
) -> None:
    fake_openai.script = [error(500), tool_call(), text("Claim 123 is in review.")]
    cid = new_id()
    async with run_worker(db, registry(db, chat_client(fake_openai.url))):
        result = await conversations.ask(cid, "How is claim 123?", "m-1", START)
    assert result.status == "completed" and result.reply == "Claim 123 is in review."
    assert len(fake_openai.requests) == 3  # the client's own 2 retries would make it 5
    # the 500 failed attempt 1 of the first model activity; Temporal ran attempt 2
    assert await model_attempts(client, cid) == [2, 1]


async def test_a_400_is_not_retried(
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    fake_openai: FakeOpenAI,
    client: Client,
) -> None:
    fake_openai.script = [error(400)]
    cid = new_id()
    async with run_worker(db, registry(db, chat_client(fake_openai.url))):
        result = await conversations.ask(cid, "How is claim 123?", "m-1", START)
    assert result.status == "failed"
    assert len(fake_openai.requests) == 1
    assert await model_attempts(client, cid) == [1]


def test_the_clients_wrapped_sdk_errors_map_like_the_sdks() -> None:
    """The client raises ChatClientException from the openai SDK's error: 429 and 5xx are
    retried (honouring retry-after), other 4xx are not."""
    request = httpx.Request("POST", "http://fake/v1/chat/completions")

    def wrapped(status: int, headers: dict[str, str]) -> ChatClientException:
        response = httpx.Response(status, headers=headers, request=request)
        cause = openai.APIStatusError(f"fake {status}", response=response, body=None)
        try:
            raise ChatClientException("service failed to complete the prompt") from cause
        except ChatClientException as exc:
            return exc

    limited = provider_failure(wrapped(429, {"retry-after": "3"}))
    refused = provider_failure(wrapped(400, {}))
    assert limited is not None and refused is not None
    assert (limited.type, limited.non_retryable) == ("ModelHTTP429", False)
    assert limited.next_retry_delay == timedelta(seconds=3)
    assert (refused.type, refused.non_retryable) == ("ModelHTTP400", True)


async def test_a_sync_tool_gets_its_tool_context(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    keys: list[str] = []

    def remember(word: str) -> str:
        """Remember a word."""
        keys.append(current_tool_context().idempotency_key)  # in agent_framework's thread
        return word

    call = {
        "id": "call_r",
        "type": "function",
        "function": {"name": "remember", "arguments": '{"word": "hi"}'},
    }
    fake_openai.script = [
        completion({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"),
        text("Remembered."),
    ]
    agent = Agent(client=chat_client(fake_openai.url), name="memo", tools=[remember])
    agents = AgentRegistry()
    agents.add("memo", lambda: agent, tools=ToolOptions({"remember": "external"}))
    cid = new_id()
    async with run_worker(db, agents):
        result = await conversations.ask(
            cid, "Remember hi.", "m-1", StartConversation(agent="memo")
        )
    assert result.reply == "Remembered." and result.tool_calls[0].result == "hi"
    assert len(keys) == 1 and keys[0].startswith(cid)


async def test_the_same_calls_and_answer_as_the_agent_run_in_process(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    script = [tool_call(), text("Claim 123 is in review.")]
    fake_openai.script = list(script)
    agent = claims_assistant(chat_client(fake_openai.url), db.sessions)
    in_process = await agent.run("How is claim 123?")
    expected = [body for _, body in fake_openai.requests]
    fake_openai.script, fake_openai.requests = list(script), []
    async with run_worker(db, registry(db, chat_client(fake_openai.url))):
        result = await conversations.ask(new_id(), "How is claim 123?", "m-1", START)
    durable = [body for _, body in fake_openai.requests]
    assert result.reply == in_process.text == "Claim 123 is in review."
    assert [c.name for c in result.tool_calls] == ["get_claim_status"]
    assert durable == expected  # the same requests: messages, tools, options


@pytest.mark.e2e  # worker subprocesses, SIGKILLed
async def test_a_killed_worker_repeats_no_side_effect(
    db: Database,
    conversations: Conversations,
    temporal_address: str,
    task_queue: str,
    tmp_path: Path,
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script = [note_call(), text("I added the note to claim 123.")]
    cid, marker = new_id(), tmp_path / "fault-fired"
    common: dict[str, Any] = dict(
        database_url=db.url,
        temporal_address=temporal_address,
        task_queue=task_queue,
        log=tmp_path / "worker.log",
        fault="after_commit:create_claim_note",
        fault_once=marker,
        extra_env={
            "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}",
            "AGENT_MODULES": "support.maf_agents",
            "FAKE_OPENAI_URL": fake_openai.url,
        },
    )
    async with worker_process(**common) as doomed:
        turn = asyncio.create_task(conversations.ask(cid, "Note that they called.", "m-1", START))
        assert await doomed.killed() == -9
    assert marker.read_text().startswith("after_commit")
    async with worker_process(**common):
        result = await asyncio.wait_for(turn, 60)
    assert result.status == "completed" and result.tool_calls[0].status == "ok"
    assert result.reply == "I added the note to claim 123."
    assert await count(db, ClaimNote, conversation_id=cid) == 1
    assert await ledger_statuses(db, cid) == ["succeeded"]
    assert len(fake_openai.requests) == 2  # the recorded model answer was not asked again


# --- orchestrations ------------------------------------------------------------------------


def handoff_call(target: str) -> Reply:
    call = {"id": "call_h", "type": "function", "function": {"name": target, "arguments": "{}"}}
    return completion({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls")


def claims_handoff(db: Database, base_url: str) -> HandoffBuilder:
    """Triage hands off to a specialist that writes notes, as agent_framework users write it."""
    client = chat_client(base_url)
    note = next(f for f in claims_functions(db.sessions) if f.__name__ == "create_claim_note")
    triage = Agent(
        client=client,
        name="triage",
        instructions="Route the customer to the right specialist.",
        require_per_service_call_history_persistence=True,  # HandoffBuilder.build() wants it
    )
    specialist = Agent(
        client=client,
        name="claims_specialist",
        description="Adds notes to claims.",
        instructions="You add notes to claims.",
        tools=[note],
        require_per_service_call_history_persistence=True,
    )
    return (
        HandoffBuilder(name="claims_desk", participants=[triage, specialist])
        .with_start_agent(triage)
        .add_handoff(triage, [specialist])
    )


async def test_a_handoff_builder_is_a_handoff_team(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script = [
        handoff_call("handoff_to_claims_specialist"),
        note_call(),
        text("Noted on claim 123."),
        text("Anything else?"),
    ]
    agents = AgentRegistry()
    agents.add("claims-desk", lambda: claims_handoff(db, fake_openai.url), tools=TOOL_OPTIONS)
    cid, start = new_id(), StartConversation(agent="claims-desk")
    async with run_worker(db, agents):
        first = await conversations.ask(cid, "Note that the customer called.", "m-1", start)
        second = await conversations.ask(cid, "Thanks.", "m-2", start)
    assert first.speakers == ["triage", "claims_specialist"]
    assert (first.speaker, first.reply) == ("claims_specialist", "Noted on claim 123.")
    assert [(c.name, c.result) for c in first.tool_calls][0] == (
        "handoff_to_claims_specialist",
        '{"handoff_to": "claims_specialist"}',  # agent_framework's own handoff result
    )
    assert second.speakers == ["claims_specialist"]  # the active agent answers the next turn
    assert await count(db, ClaimNote, conversation_id=cid) == 1
    bodies = [body for _, body in fake_openai.requests]
    assert [t["function"]["name"] for t in bodies[0]["tools"]] == ["handoff_to_claims_specialist"]
    assert bodies[0]["messages"][0]["content"] == "Route the customer to the right specialist."
    assert bodies[1]["messages"][0]["content"] == "You add notes to claims."
    assert "handoff_to_claims_specialist" not in str(bodies[1]["tools"])


def test_orchestrations_without_a_team_of_ours_are_refused_by_name(db: Database) -> None:
    client = OpenAIChatCompletionClient(model="gpt-4o-mini", api_key=API_KEY)
    a, b = Agent(client=client, name="a"), Agent(client=client, name="b")
    group = GroupChatBuilder(participants=[a, b], selection_func=lambda state: "a")
    with pytest.raises(UnsupportedOption, match="GroupChatBuilder"):
        AgentRegistry().add("group", lambda: group)
    with pytest.raises(UnsupportedOption, match="Workflow.*HandoffBuilder"):
        AgentRegistry().add("seq", lambda: SequentialBuilder(participants=[a, b]).build())
    autonomous = HandoffBuilder(participants=[a, b]).with_autonomous_mode()
    with pytest.raises(UnsupportedOption, match="with_autonomous_mode"):
        AgentRegistry().add("auto", lambda: autonomous)


def test_agents_are_team_members(db: Database) -> None:
    client = OpenAIChatCompletionClient(model="gpt-4o-mini", api_key=API_KEY)
    a = Agent(client=client, name="a", instructions="A", tools=[lookup])
    b = Agent(client=client, name="b", instructions="B")
    registry = AgentRegistry()
    registry.add("ab", lambda: team("ab", [a, b], mode="round_robin", max_turns=2))
    spec = registry.get("ab").spec()
    assert spec.team is not None and spec.team.members == ["a", "b"]
    assert list(spec.members["a"].tools) == ["lookup"]
