"""LlamaIndex's `ReActAgent`, registered unmodified: the ReAct prompt and parser run in the
model activity, a parsed action is a tool call under the ledger."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.agent.workflow import AgentWorkflow, ReActAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.tools import FunctionTool
from sqlalchemy import select
from temporalio.api.enums.v1 import EventType

from activities.db import Database
from activities.tables import LedgerEntry, TranscriptMessage
from agents.adapters import ToolOptions, from_llamaindex, team
from agents.adapters.llamaindex import ReActDefinition
from agents.errors import ConfigurationError, UnsupportedOption
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.scripted_model import scripted_react_llm
from demo.tables import ClaimNote
from examples.claims_functions import SYSTEM_MESSAGE, TOOL_OPTIONS, claims_functions
from interface import ErrorType, Message, StartConversation, TurnResult
from support.databases import count
from support.ids import new_id
from support.paths import ROOT
from support.processes import worker_process
from support.workers import WorkerFactory

Prompt = list[tuple[str, str]]

TURNS = [
    '!call echo {"text": "a"}\n!call upper {"text": "b"}',  # two ReAct steps with actions
    '!garble\n!call echo {"text": "c"}',  # the first answer does not parse
    "!say no tools needed",
    "!implicit\n!say plain text, no Thought or Answer",
]


async def echo(text: str) -> str:
    """Echo the text."""
    return f"echo:{text}"


async def upper(text: str) -> str:
    """Upper-case the text."""
    return text.upper()


def recorded_llm(prompts: list[Prompt]) -> MockFunctionCallingLLM:
    """The scripted ReAct LLM, keeping every prompt it is sent."""
    llm = scripted_react_llm()
    respond = llm.response_generator

    def recording(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        prompts.append([(m.role.value, m.content or "") for m in messages])
        return respond(messages, **kwargs)

    llm.response_generator = recording
    return llm


def react_agent(llm: MockFunctionCallingLLM, **options: Any) -> ReActAgent:
    tools = [FunctionTool.from_defaults(async_fn=f) for f in (echo, upper)]
    return ReActAgent(name="reasoner", llm=llm, tools=tools, system_prompt="Be brief.", **options)


async def in_process(prompts: list[Prompt]) -> list[tuple[list[tuple[str, dict]], str]]:
    """The turns run by ReActAgent itself, with one memory across runs."""
    agent, memory = react_agent(recorded_llm(prompts)), ChatMemoryBuffer.from_defaults()
    turns = []
    for task in TURNS:
        output = await agent.run(task, memory=memory)
        turns.append(([(c.tool_name, c.tool_kwargs) for c in output.tool_calls], str(output)))
    return turns


def durable_shape(turn: TurnResult) -> tuple[list[tuple[str, dict]], str]:
    return [(c.name, json.loads(c.arguments)) for c in turn.tool_calls], turn.reply


async def test_react_agent_matches_the_in_process_agent(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    expected_prompts: list[Prompt] = []
    expected = await in_process(expected_prompts)
    prompts: list[Prompt] = []
    registry = AgentRegistry()
    llm = recorded_llm(prompts)
    options = ToolOptions(kinds={"echo": "read", "upper": "read"})
    registry.add("reasoner", lambda: react_agent(llm), tools=options)
    cid, start = new_id("react"), StartConversation(agent="reasoner")
    async with run_worker(db, registry):
        turns = [await conversations.ask(cid, t, f"m-{n}", start) for n, t in enumerate(TURNS)]
    assert [t.status for t in turns] == ["completed"] * len(TURNS)
    assert [durable_shape(t) for t in turns] == expected
    assert expected[0] == ([("echo", {"text": "a"}), ("upper", {"text": "b"})], "echo:a; B")
    assert prompts == expected_prompts  # the same ReAct prompts, call for call
    assert any(p[-1][1].startswith("Error while parsing the output") for p in prompts)
    assert any(p[-2][1].startswith("Thought: I should call a tool.") for p in prompts)


async def test_react_transcript_keeps_thoughts_actions_and_observations(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    registry = AgentRegistry()
    registry.add(
        "reasoner",
        lambda: react_agent(scripted_react_llm()),
        tools=ToolOptions(kinds={"echo": "read", "upper": "read"}),
    )
    cid = new_id("react")
    async with run_worker(db, registry):
        await conversations.ask(cid, TURNS[0], "m-1", StartConversation(agent="reasoner"))
    rows = await transcript(db, cid)
    roles = [(m.role, m.content, [c.name for c in m.tool_calls]) for m in rows]
    assert roles == [
        ("user", TURNS[0], []),
        ("assistant", "", ["echo"]),
        ("tool", "echo:a", []),
        ("assistant", "", ["upper"]),
        ("tool", "B", []),
        ("assistant", "echo:a; B", []),
    ]
    assert rows[1].thought and rows[1].thought.endswith("help me answer the question.")
    assert rows[-1].thought == "I can answer without using any more tools."


async def test_react_action_runs_under_the_ledger(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    def claims() -> ReActAgent:
        tools = [FunctionTool.from_defaults(async_fn=f) for f in claims_functions(db.sessions)]
        return ReActAgent(
            name="claims", llm=scripted_react_llm(), tools=tools, system_prompt=SYSTEM_MESSAGE
        )

    registry = AgentRegistry()
    registry.add("claims-react", claims, tools=TOOL_OPTIONS)
    cid = new_id("react")
    text = '!call create_claim_note {"claim_id": 123, "text": "customer called"}'
    async with run_worker(db, registry):
        turn = await conversations.ask(cid, text, "m-1", StartConversation(agent="claims-react"))
        again = await conversations.ask(cid, text, "m-1")  # a retried ask: the recorded turn
    assert turn.status == "completed" and again == turn
    assert turn.tool_calls[0].name == "create_claim_note" and turn.tool_calls[0].status == "ok"
    assert await count(db, ClaimNote, conversation_id=cid) == 1
    async with db.session() as session:
        query = select(LedgerEntry.status).where(LedgerEntry.conversation_id == cid)
        assert (await session.scalars(query)).all() == ["succeeded"]


async def transcript(db: Database, cid: str) -> list[Message]:
    async with db.session() as session:
        query = (
            select(TranscriptMessage.body)
            .where(TranscriptMessage.conversation_id == cid)
            .order_by(TranscriptMessage.seq)
        )
        return [Message.model_validate_json(b) for b in (await session.scalars(query)).all()]


def never_parses(messages: Sequence[ChatMessage], **_: Any) -> ChatMessage:
    return ChatMessage(role=MessageRole.ASSISTANT, content="Thought: hmm\nAction: echo")


async def test_a_model_that_never_answers_in_react_form_fails_the_turn(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    registry = AgentRegistry()
    llm = MockFunctionCallingLLM(response_generator=never_parses)
    registry.add("garbled", lambda: react_agent(llm), tools=ToolOptions(kinds={"echo": "read"}))
    cid = new_id("react")
    async with run_worker(db, registry):
        turn = await conversations.ask(cid, "hello", "m-1", StartConversation(agent="garbled"))
        history = await conversations.handle(cid).fetch_history()
    assert turn.status == "failed" and turn.tool_calls == []
    failures = [
        e.activity_task_failed_event_attributes.failure.application_failure_info
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    assert [f.type for f in failures] == [ErrorType.MODEL_RESPONSE_INVALID.value]
    assert failures[0].non_retryable


def test_react_agent_registers_with_its_formatter_and_parser() -> None:
    agent = react_agent(scripted_react_llm())
    definition = from_llamaindex(agent, memory=ChatMemoryBuffer.from_defaults(token_limit=900))
    assert isinstance(definition, ReActDefinition)
    assert definition.formatter is agent.formatter and "Be brief." in agent.formatter.context
    assert definition.output_parser is agent.output_parser
    assert (definition.context_tokens, [t.name for t in definition.tools]) == (
        900,
        ["echo", "upper"],
    )


def test_react_options_we_cannot_honour_are_refused() -> None:
    direct = FunctionTool.from_defaults(async_fn=echo, return_direct=True)
    agent = ReActAgent(name="direct", llm=scripted_react_llm(), tools=[direct])
    with pytest.raises(UnsupportedOption, match="return_direct=True"):
        from_llamaindex(agent)
    with pytest.raises(UnsupportedOption, match="a ReActAgent in a team"):
        team("crew", [react_agent(scripted_react_llm())])
    workflow = AgentWorkflow([react_agent(scripted_react_llm())])
    with pytest.raises(ConfigurationError, match="register FunctionAgents"):
        AgentRegistry().add("flow", lambda: workflow)


KILLS = ["after_commit:create_claim_note", "during_model:claims-react"]


@pytest.mark.e2e  # worker subprocesses, SIGKILLed
@pytest.mark.parametrize("fault", KILLS)
async def test_a_worker_killed_in_a_react_turn_repeats_no_side_effect(
    db: Database,
    conversations: Conversations,
    temporal_address: str,
    task_queue: str,
    tmp_path: Path,
    fault: str,
) -> None:
    cid, marker = new_id("react"), tmp_path / "fault-fired"
    common: dict[str, Any] = dict(
        database_url=db.url,
        temporal_address=temporal_address,
        task_queue=task_queue,
        log=tmp_path / "worker.log",
        fault=fault,
        fault_once=marker,
        extra_env={
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}",
            "AGENT_MODULES": "support.react_worker",
        },
    )
    text = '!call create_claim_note {"claim_id": 123, "text": "the worker died"}'
    start = StartConversation(agent="claims-react")
    async with worker_process(**common) as doomed:
        turn = asyncio.create_task(conversations.ask(cid, text, "m-1", start))
        assert await doomed.killed() == -9
    assert marker.exists()
    async with worker_process(**common):
        result = await asyncio.wait_for(turn, 60)
    assert result.status == "completed" and result.tool_calls[0].status == "ok"
    assert await count(db, ClaimNote, conversation_id=cid) == 1
