"""Unmodified AutoGen and LlamaIndex agents, registered and run durably."""

from __future__ import annotations

import json
import re

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import ToolCallRequestEvent
from autogen_core.tools import FunctionTool

from activities.db import Database
from agents.adapters import ToolOptions, function_tool
from agents.definitions import AgentDefinition
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.scripted_model import ScriptedChatCompletionClient, scripted_llamaindex_llm
from demo.tables import ClaimNote, OutboxEmail
from examples import register_examples
from interface import StartConversation, TurnResult
from support.databases import count
from support.ids import new_id
from support.workers import WorkerFactory

DEMO_TURNS = [
    "Check policy status for claim 123",
    "add a note that the customer called",
    "email the customer an update",
]


def example_agents(db: Database) -> AgentRegistry:
    registry = AgentRegistry()
    register_examples(
        registry, db.sessions, ScriptedChatCompletionClient(), scripted_llamaindex_llm()
    )
    return registry


def shape(result: TurnResult) -> tuple[str, list[tuple[str, str, str]]]:
    """A turn without the IDs that differ between two conversations."""
    calls = [(c.name, c.arguments, c.status) for c in result.tool_calls]
    return re.sub(r"#\d+", "#N", result.reply), calls


async def test_autogen_and_llamaindex_agents_behave_the_same(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    results: dict[str, list[TurnResult]] = {}
    async with run_worker(db, example_agents(db)):
        for agent in ("claims-autogen", "claims-llamaindex"):
            cid, start = new_id(agent), StartConversation(agent=agent)
            results[agent] = [
                await conversations.ask(cid, text, f"m-{n}", start)
                for n, text in enumerate(DEMO_TURNS)
            ]
            assert await count(db, ClaimNote, conversation_id=cid) == 1
            assert await count(db, OutboxEmail, conversation_id=cid) == 1
    autogen, llama = results["claims-autogen"], results["claims-llamaindex"]
    assert [shape(r) for r in autogen] == [shape(r) for r in llama]
    assert autogen[0].reply.startswith("Claim 123 is in_review")
    assert [r.tool_calls[0].name for r in llama] == [
        "get_claim_status",
        "create_claim_note",
        "send_customer_email",
    ]
    assert all(r.usage.prompt_tokens > 0 for r in autogen)  # the LlamaIndex mock counts none


async def echo(text: str) -> str:
    """Echo the text."""
    return f"echo:{text}"


async def upper(text: str) -> str:
    """Upper-case the text."""
    return text.upper()


TASKS = [
    '!call echo {"text": "a"}',
    '!call echo {"text": "a"}\n!call upper {"text": "b"}',  # parallel calls in one response
    '!loop echo {"text": "again"}',  # asks for tools on every step
    "!say no tools needed",
]
OPTIONS = [
    {"reflect_on_tool_use": False, "max_tool_iterations": 1},
    {"reflect_on_tool_use": True, "max_tool_iterations": 1},
    {"reflect_on_tool_use": False, "max_tool_iterations": 3},
    {
        "reflect_on_tool_use": True,
        "max_tool_iterations": 3,
        "tool_call_summary_format": "{tool_name}={result}",
    },
]


def autogen_agent(options: dict[str, object]) -> AssistantAgent:
    return AssistantAgent(
        name="semantics",
        model_client=ScriptedChatCompletionClient(),
        tools=[
            FunctionTool(echo, description="Echo the text."),
            FunctionTool(upper, description="Upper."),
        ],
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items())
)
async def test_option_semantics_match_assistant_agent(
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    options: dict[str, object],
) -> None:
    expected = []
    for task in TASKS:
        result = await autogen_agent(options).run(task=task)
        calls = [
            (c.name, c.arguments)
            for m in result.messages
            if isinstance(m, ToolCallRequestEvent)
            for c in m.content
        ]
        expected.append((calls, result.messages[-1].to_text()))
    registry = AgentRegistry()
    registry.add(
        "semantics",
        lambda: autogen_agent(options),
        tools=ToolOptions(kinds={"echo": "read", "upper": "read"}),
    )
    actual = []
    async with run_worker(db, registry):
        for n, task in enumerate(TASKS):
            cid = new_id()
            turn = await conversations.ask(
                cid, task, f"m-{n}", StartConversation(agent="semantics")
            )
            assert turn.status == "completed"
            actual.append(([(c.name, c.arguments) for c in turn.tool_calls], turn.reply))
    assert actual == expected


async def test_plain_python_functions_become_tools(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    agent = AgentDefinition(
        name="plain",
        system_message="",
        model_client=ScriptedChatCompletionClient(),
        tools=[function_tool(echo, kind="read"), function_tool(upper, kind="read")],
    )
    async with run_worker(db, AgentRegistry([agent])):
        turn = await conversations.ask(
            new_id(), '!call upper {"text": "shout"}', "m-1", StartConversation(agent="plain")
        )
    assert turn.tool_calls[0].result == "SHOUT"
    assert json.loads(json.dumps(agent.tools[0].schema))["parameters"]["required"] == ["text"]


def test_token_counting_needs_no_download() -> None:
    import tiktoken

    # no network here: this works only from llama-index-core's bundled encodings
    assert tiktoken.get_encoding("cl100k_base").encode("claim 123")
