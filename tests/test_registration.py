"""Registration refuses what the durable loop cannot honour, naming the offending option;
synchronous tools get their tool context."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat
from autogen_core import SingleThreadedAgentRuntime
from autogen_core.memory import ListMemory
from autogen_core.model_context import (
    BufferedChatCompletionContext,
    UnboundedChatCompletionContext,
)
from autogen_core.models import UserMessage
from autogen_core.tools import FunctionTool, StaticWorkbench
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.core.tools import FunctionTool as LlamaFunctionTool
from pydantic import BaseModel
from sqlalchemy import select

from activities.db import Database
from activities.tables import LedgerEntry
from agents.adapters import (
    ToolOptions,
    from_autogen,
    from_autogen_team,
    from_llamaindex,
    function_tool,
    team,
)
from agents.definitions import AgentDefinition
from agents.errors import ConfigurationError, InvalidToolOptions, UnsupportedOption
from agents.registry import AgentRegistry
from agents.tools import ToolContext, current_tool_context, tool
from conversation_client import Conversations
from demo.scripted_model import ScriptedChatCompletionClient, scripted_llamaindex_llm
from interface import StartConversation, ToolPolicy
from support.ids import new_id
from support.workers import WorkerFactory


async def ping(host: str) -> str:
    """Ping a host."""
    return f"pong:{host}"


async def echo(text: str) -> str:
    """Echo the text."""
    return text


class Answer(BaseModel):
    text: str


def autogen(**options: Any) -> AssistantAgent:
    tools = options.pop("tools", [FunctionTool(ping, description="Ping."), echo])
    return AssistantAgent("net", ScriptedChatCompletionClient(), tools=tools, **options)


def llama(**options: Any) -> FunctionAgent:
    tools = [LlamaFunctionTool.from_defaults(async_fn=f) for f in (ping, echo)]
    return FunctionAgent(
        name="net", description="Pings.", llm=scripted_llamaindex_llm(), tools=tools, **options
    )


# --- ToolOptions ---------------------------------------------------------------------------

MISNAMED = {
    "kinds": ToolOptions(kinds={"pnig": "database"}),
    "policies": ToolOptions(policies={"pnig": ToolPolicy()}),
    "dedupes_downstream": ToolOptions(dedupes_downstream={"pnig": True}),
}


@pytest.mark.parametrize("option", list(MISNAMED))
@pytest.mark.parametrize("factory", [autogen, llama], ids=["autogen", "llamaindex"])
def test_a_tool_name_the_agent_lacks_is_refused(option: str, factory: Callable[[], object]) -> None:
    with pytest.raises(InvalidToolOptions) as refused:
        AgentRegistry().add("net", factory, tools=MISNAMED[option])
    message = str(refused.value)
    assert f"ToolOptions {option}= names 'pnig'" in message
    assert "did you mean 'ping'?" in message and "['echo', 'ping']" in message


def test_an_unknown_kind_is_refused_listing_the_kinds() -> None:
    valid = "valid kinds: read, database, external"
    with pytest.raises(InvalidToolOptions, match=f"kinds= for 'x': kind 'databse' .*{valid}"):
        ToolOptions(kinds={"x": "databse"})  # type: ignore[dict-item]
    with pytest.raises(InvalidToolOptions, match=f"tool 'ping': kind 'databse'.*{valid}"):
        function_tool(ping, kind="databse")  # type: ignore[arg-type]

    with pytest.raises(InvalidToolOptions, match=f"tool 'write': kind 'db'.*{valid}"):

        @tool(kind="db")  # type: ignore[arg-type]
        async def write(ctx: ToolContext, args: Answer) -> str:
            return args.text


def test_other_tool_options_are_checked() -> None:
    with pytest.raises(InvalidToolOptions, match="policies= for 'ping': expected a ToolPolicy"):
        ToolOptions(policies={"ping": {"start_to_close": 5}})  # type: ignore[dict-item]
    with pytest.raises(InvalidToolOptions, match="dedupes_downstream= for 'ping'.*'read' tool"):
        ToolOptions(kinds={"ping": "read"}, dedupes_downstream={"ping": True})


def test_options_that_match_the_tools_are_applied() -> None:
    options = ToolOptions(kinds={"ping": "read"}, dedupes_downstream={"echo": True})
    definition = from_autogen(autogen(), tools=options)
    assert {t.name: (t.kind, t.dedupes_downstream) for t in definition.tools} == {
        "ping": ("read", True),
        "echo": ("external", True),
    }
    assert [t.kind for t in from_llamaindex(llama(), tools=options).tools] == ["read", "external"]


def test_shared_options_need_a_kind_for_every_tool() -> None:
    catalogue = {"ping": "read", "echo": "read", "send_email": "external"}
    shared = ToolOptions(kinds=catalogue, shared=True)  # type: ignore[arg-type]
    assert [t.kind for t in from_autogen(autogen(), tools=shared).tools] == ["read", "read"]
    typo = ToolOptions(kinds={"pnig": "read", "echo": "read"}, shared=True)
    with pytest.raises(InvalidToolOptions, match="no kind for its tool 'ping' .*'pnig'"):
        from_autogen(autogen(), tools=typo)


def test_a_team_checks_its_options_against_all_its_members() -> None:
    client = ScriptedChatCompletionClient()
    one = AssistantAgent("one", client, tools=[FunctionTool(ping, description="Ping.")])
    two = AssistantAgent("two", client, tools=[FunctionTool(echo, description="Echo.")])
    both = ToolOptions(kinds={"ping": "read", "echo": "read"})
    made = team("t", [one, two], tools=both)
    assert [t.kind for m in made.members for t in m.tools] == ["read", "read"]
    with pytest.raises(InvalidToolOptions, match="team 't': ToolOptions kinds= names 'pnig'"):
        team("t", [one, two], tools=ToolOptions(kinds={"pnig": "read"}))
    chat = RoundRobinGroupChat([one, two])
    with pytest.raises(InvalidToolOptions, match="names 'pnig'"):
        from_autogen_team(chat, name="t", tools=ToolOptions(kinds={"pnig": "read"}))


def test_tool_options_do_not_apply_to_an_agent_definition() -> None:
    definition = AgentDefinition("plain", "", ScriptedChatCompletionClient())
    with pytest.raises(ConfigurationError, match="tools= applies to framework agents"):
        AgentRegistry().add("plain", lambda: definition, tools=ToolOptions())


# --- framework options -----------------------------------------------------------------------


UNSUPPORTED_AUTOGEN: dict[str, Callable[[], object]] = {
    "memory": lambda: autogen(memory=[ListMemory()]),
    "model_context": lambda: autogen(
        model_context=UnboundedChatCompletionContext([UserMessage(content="hi", source="u")])
    ),
    "workbench": lambda: autogen(tools=None, workbench=StaticWorkbench([])),
    "tool_call_summary_formatter": lambda: autogen(tool_call_summary_formatter=lambda c, r: ""),
    "handoffs": lambda: autogen(handoffs=["other"]),
}


@pytest.mark.parametrize("option", list(UNSUPPORTED_AUTOGEN))
def test_assistant_agent_options_that_cannot_be_honoured_are_refused(option: str) -> None:
    with pytest.raises(UnsupportedOption, match=rf"'net': AssistantAgent\({option.strip()}="):
        AgentRegistry().add("net", UNSUPPORTED_AUTOGEN[option])


def test_assistant_agent_options_we_honour_are_accepted() -> None:
    agent = autogen(
        description="Pings hosts.",
        system_message="Be brief.",
        reflect_on_tool_use=True,
        max_tool_iterations=3,
        tool_call_summary_format="{tool_name}: {result}",
        metadata={"team": "network"},
        model_context=UnboundedChatCompletionContext(),
        model_client_stream=True,  # the worker streams every agent's text (stream_text)
    )
    definition = from_autogen(agent)
    assert (definition.system_message, definition.max_tool_iterations) == ("Be brief.", 3)
    assert definition.tool_call_summary_format == "{tool_name}: {result}"


UNSUPPORTED_LLAMA: dict[str, dict[str, Any]] = {
    "initial_state": {"initial_state": {"visits": 0}},
    "structured_output_fn": {"structured_output_fn": lambda messages: {}},
    "early_stopping_method": {"early_stopping_method": "generate"},
    "timeout": {"timeout": 30.0},
    "initial_tool_choice": {"initial_tool_choice": "ping"},
    "allow_parallel_tool_calls": {"allow_parallel_tool_calls": False},
}


@pytest.mark.parametrize("option", list(UNSUPPORTED_LLAMA))
def test_function_agent_options_that_cannot_be_honoured_are_refused(option: str) -> None:
    with pytest.raises(UnsupportedOption, match=rf"'net': FunctionAgent\({option}="):
        AgentRegistry().add("net", lambda: llama(**UNSUPPORTED_LLAMA[option]))
    accepted = from_llamaindex(llama(streaming=False, verbose=True, can_handoff_to=["x"]))
    assert [t.name for t in accepted.tools] == ["ping", "echo"]


UNSUPPORTED_WORKFLOW: dict[str, dict[str, Any]] = {
    "initial_state": {"initial_state": {"visits": 0}},
    "output_cls": {"output_cls": Answer},
    "early_stopping_method": {"early_stopping_method": "generate"},
    "timeout": {"timeout": 30.0},
    "handoff_prompt": {"handoff_prompt": "Hand off to one of {agent_info}."},
    "handoff_output_prompt": {"handoff_output_prompt": "Now {to_agent}: {reason}."},
}


@pytest.mark.parametrize("option", list(UNSUPPORTED_WORKFLOW))
def test_agent_workflow_options_that_cannot_be_honoured_are_refused(option: str) -> None:
    def workflow() -> AgentWorkflow:
        return AgentWorkflow([llama()], **UNSUPPORTED_WORKFLOW[option])

    with pytest.raises(UnsupportedOption, match=rf"AgentWorkflow\({option}="):
        AgentRegistry().add("flow", workflow)


def test_group_chat_options_that_cannot_be_honoured_are_refused() -> None:
    client = ScriptedChatCompletionClient()
    members = [AssistantAgent("one", client), AssistantAgent("two", client)]
    refused = {
        "runtime": RoundRobinGroupChat(members, runtime=SingleThreadedAgentRuntime()),
        "emit_team_events": RoundRobinGroupChat(members, emit_team_events=True),
        "model_client_streaming": SelectorGroupChat(members, client, model_client_streaming=True),
        "model_context": SelectorGroupChat(
            members, client, model_context=BufferedChatCompletionContext(3)
        ),
    }
    for option, chat in refused.items():
        with pytest.raises(UnsupportedOption, match=rf"Chat\({option}="):
            from_autogen_team(chat)


# --- synchronous tools ---------------------------------------------------------------------


def stamp(text: str) -> str:
    """Stamp the text with the tool call's conversation and idempotency key."""
    ctx = current_tool_context()  # works in the thread a sync function runs in
    assert threading.current_thread() is not threading.main_thread()
    return json.dumps(
        {"text": text, "conversation": ctx.conversation_id, "key": ctx.idempotency_key}
    )


def sync_agents() -> AgentRegistry:
    registry = AgentRegistry()
    options = ToolOptions(kinds={"stamp": "external"}, dedupes_downstream={"stamp": True})
    registry.add(
        "sync-autogen",
        lambda: AssistantAgent(
            "sync", ScriptedChatCompletionClient(), tools=[FunctionTool(stamp, "Stamp.")]
        ),
        tools=options,
    )
    registry.add(
        "sync-llamaindex",
        lambda: FunctionAgent(
            name="sync",
            llm=scripted_llamaindex_llm(),
            tools=[LlamaFunctionTool.from_defaults(fn=stamp)],
        ),
        tools=options,
        fresh_per_call=True,
    )
    registry.register(
        AgentDefinition("sync-plain", "", ScriptedChatCompletionClient(), [function_tool(stamp)])
    )
    return registry


async def test_a_synchronous_tool_gets_its_tool_context(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    seen = {}
    async with run_worker(db, sync_agents()):
        for agent in ("sync-autogen", "sync-llamaindex", "sync-plain"):
            cid = new_id(agent)
            turn = await conversations.ask(
                cid, '!call stamp {"text": "hello"}', "m-1", StartConversation(agent=agent)
            )
            [call] = turn.tool_calls
            assert call.status == "ok", call.result
            seen[agent] = (cid, json.loads(call.result))
    async with db.session() as session:
        ledger = {
            (row.conversation_id, row.key) for row in await session.scalars(select(LedgerEntry))
        }
    for cid, stamped in seen.values():
        assert (stamped["text"], stamped["conversation"]) == ("hello", cid)
        assert (cid, stamped["key"]) in ledger  # the key the tool saw is its ledger row's


def test_a_synchronous_database_tool_is_refused() -> None:
    def note(text: str) -> str:
        """Write a note."""
        return text

    with pytest.raises(UnsupportedOption, match="tool 'note': a synchronous function .*async def"):
        function_tool(note, kind="database")
    with pytest.raises(UnsupportedOption, match="tool 'note': a synchronous function"):
        from_llamaindex(
            FunctionAgent(
                name="n",
                llm=scripted_llamaindex_llm(),
                tools=[LlamaFunctionTool.from_defaults(fn=note)],
            ),
            tools=ToolOptions(kinds={"note": "database"}),
        )
