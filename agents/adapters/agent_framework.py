"""Microsoft Agent Framework's `Agent` and function tools, as agent definitions.

The workflow runs the loop (DESIGN.md): from the agent we take its chat client, its chat
options (`default_options`: model, temperature, ...), its instructions and its function
tools, and the client's `max_iterations`; the options the durable loop cannot honour yet
are refused by name rather than ignored.

The chat client is copied with its own tool loop switched off (the workflow runs tools, as
activities under the ledger) and its SDK client's retries off (Temporal retries model
calls); the user's client object is left as it was.
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent_framework import BaseChatClient, Content, FunctionTool, RawAgent, Workflow
from agent_framework_orchestrations import (
    ConcurrentBuilder,
    GroupChatBuilder,
    HandoffBuilder,
    MagenticBuilder,
    SequentialBuilder,
)
from agent_framework_orchestrations._handoff import HANDOFF_FUNCTION_RESULT_KEY
from agent_framework_orchestrations._handoff import get_handoff_tool_name as _handoff_tool_name
from pydantic import BaseModel, ConfigDict

from agents.adapters.options import ToolOptions, Unsupported, refuse_unsupported
from agents.definitions import AgentDefinition, Handoff, TeamDefinition
from agents.errors import ConfigurationError, UnsupportedOption
from agents.retries import framework_retries_off
from agents.tools import Tool, ToolContext

__all__ = [
    "UNMAPPED_ORCHESTRATIONS",
    "AgentFrameworkModel",
    "agent_framework_definition",
    "agent_framework_tool",
    "from_agent_framework",
    "from_agent_framework_handoff",
    "refuse_orchestration",
]

DEFAULT_MAX_ITERATIONS = 40
"""agent_framework's own default: tool rounds per run, then one answer without tools."""


@dataclass
class AgentFrameworkModel:
    """An Agent Framework chat client and the agent's chat options: the model activity
    calls `client.get_response` once per model call, the client's tool loop off."""

    client: Any
    options: Mapping[str, Any] = field(default_factory=dict)


class _AnyArguments(BaseModel):
    """A tool declared by a JSON schema: the arguments pass through as the model sent them."""

    model_config = ConfigDict(extra="allow")


def agent_framework_tool(tool: FunctionTool, **options: Any) -> Tool:
    """An Agent Framework `FunctionTool` (`@tool` or a plain function), run by the ledger.
    A synchronous function runs in a thread with a copy of the context (agent_framework's
    own `asyncio.to_thread`), so `current_tool_context()` works in it."""
    _check_tool(tool, options.get("kind"))
    if tool.approval_mode == "always_require":
        options["policy"] = options["policy"].model_copy(update={"needs_approval": True})

    async def run(ctx: ToolContext, args: BaseModel) -> str:
        return result_text(await tool.invoke(arguments=args.model_dump(exclude_unset=True)))

    return Tool(
        name=tool.name,
        description=tool.description,
        args_model=tool.input_model or _AnyArguments,
        fn=run,
        parameters=tool.parameters(),
        **options,
    )


def result_text(contents: list[Content]) -> str:
    """A tool's `list[Content]` as the text the model reads."""
    if all(c.type == "text" for c in contents):
        return "".join(c.text or "" for c in contents)
    return json.dumps([c.to_dict(exclude={"raw_representation"}) for c in contents])


def from_agent_framework(agent: RawAgent, *, tools: ToolOptions | None = None) -> AgentDefinition:
    """An `Agent`'s chat client, options, instructions and function tools."""
    definition = agent_framework_definition(agent, tools)
    if tools is not None:
        tools.check([t.name for t in definition.tools], f"agent {agent.name!r}")
    return definition


def agent_framework_definition(agent: RawAgent, tools: ToolOptions | None) -> AgentDefinition:
    """`from_agent_framework` without the options check, which a team makes over its members."""
    name = _name(agent)
    _check_agent(agent, name)
    options = dict(agent.default_options)
    function_tools = options.pop("tools", [])
    instructions = options.pop("instructions", "") or ""
    output_schema = _output_schema(options.get("response_format"))
    client: Any = agent.client  # checked above: a BaseChatClient with function invocation
    iterations = client.function_invocation_configuration.get(
        "max_iterations", DEFAULT_MAX_ITERATIONS
    )
    tool_options = tools or ToolOptions()
    return AgentDefinition(
        name=name,
        system_message=instructions,
        model_client=AgentFrameworkModel(_one_round_client(client), options),
        tools=[agent_framework_tool(t, **tool_options.for_tool(t.name)) for t in function_tools],
        max_steps=iterations + 1,
        max_tool_iterations=iterations,
        reflect_on_tool_use=True,
        output_schema=output_schema,
        output_type=_output_type(options.get("response_format")),
    )


def _name(agent: RawAgent) -> str:
    if not agent.name:
        raise ConfigurationError("an Agent Framework Agent needs a name= to be registered")
    return agent.name


def _one_round_client(client: Any) -> Any:
    """A copy of the client that answers one model round: no tool loop, no SDK retries."""
    one_round = copy.copy(client)
    config = dict(client.function_invocation_configuration)
    one_round.function_invocation_configuration = {**config, "enabled": False}
    return framework_retries_off(one_round)


def _output_schema(response_format: object) -> dict[str, Any] | None:
    """`response_format`: a pydantic model or a JSON schema; the model is asked for it."""
    if response_format is None:
        return None
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        return response_format.model_json_schema()
    if isinstance(response_format, Mapping):
        return dict(response_format)
    raise UnsupportedOption(
        f"Agent(default_options={{'response_format': {type(response_format).__name__}}}) "
        "is not supported: give a pydantic model or a JSON schema"
    )


def _output_type(response_format: object) -> type[BaseModel] | None:
    """The pydantic model MAF's `ChatResponse.value` validates the answer with."""
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        return response_format
    return None


_FUNCTION_INVOCATION_DEFAULTS: dict[str, object] = {
    "enabled": True,
    "max_function_calls": None,
    "max_duration_seconds": None,
    "max_consecutive_errors_per_request": 3,
    "terminate_on_unknown_calls": False,
    "additional_tools": [],
    "include_detailed_errors": False,
    "allow_concurrent_invocation": True,
    "disable_approval_response_binding": False,
}
"""function_invocation_configuration keys we cannot honour unless at their default
(`max_iterations` is honoured: the tool rounds of a turn)."""

_UNSUPPORTED: list[Unsupported] = [
    ("middleware", lambda a: a.middleware, "the workflow runs the loop; no middleware runs"),
    (
        "context_providers",
        lambda a: a.context_providers,
        "memory and history providers are not queried: the transcript is the history",
    ),
    ("compaction_strategy", lambda a: a.compaction_strategy, "the window is context_messages"),
    ("tokenizer", lambda a: a.tokenizer, "the window is context_messages"),
    (
        "MCP tools",
        lambda a: a.mcp_tools,
        "register the server with registry.add(..., extra_tools=mcp_tools(StdioServer(...)))",
    ),
    (
        "default_options conversation_id",
        lambda a: a.default_options.get("conversation_id"),
        "the conversation's state is the workflow's, not the service's",
    ),
    (
        "default_options tool_choice",
        lambda a: a.default_options.get("tool_choice", "auto") != "auto",
        "the model chooses its tools (tool_choice='auto')",
    ),
    (
        "client middleware",
        lambda a: (
            getattr(a.client, "chat_middleware", None)
            or getattr(a.client, "function_middleware", None)
        ),
        "no chat or function middleware runs",
    ),
    (
        "client compaction_strategy",
        lambda a: (
            getattr(a.client, "compaction_strategy", None) or getattr(a.client, "tokenizer", None)
        ),
        "the window is context_messages",
    ),
]
"""Options set to anything but their default that the durable loop cannot honour yet."""


def _check_agent(agent: RawAgent, name: str) -> None:
    if not isinstance(agent.client, BaseChatClient) or not hasattr(
        agent.client, "function_invocation_configuration"
    ):
        raise UnsupportedOption(
            f"agent {name!r}: chat client {type(agent.client).__name__} is not supported: "
            "use an agent_framework chat client with function invocation (e.g. "
            "agent_framework.openai.OpenAIChatCompletionClient)"
        )
    refuse_unsupported(agent, _UNSUPPORTED, lambda o: f"agent {name!r}: Agent({o}=...)")
    config = getattr(agent.client, "function_invocation_configuration", {})
    for key, default in _FUNCTION_INVOCATION_DEFAULTS.items():
        if config.get(key, default) != default:
            raise UnsupportedOption(
                f"agent {name!r}: function_invocation_configuration[{key!r}] is not supported "
                "yet: the workflow runs the tool loop (max_iterations is honoured)"
            )
    for tool in agent.default_options.get("tools", []):
        if not isinstance(tool, FunctionTool):
            raise UnsupportedOption(
                f"agent {name!r}: tool {tool!r} ({type(tool).__name__}) is not supported: "
                "only function tools run under the ledger"
            )


def _check_tool(tool: FunctionTool, kind: object) -> None:
    if tool.declaration_only:
        raise UnsupportedOption(f"tool {tool.name!r}: a declaration-only tool has nothing to run")
    for option in ("max_invocations", "max_invocation_exceptions"):
        if getattr(tool, option) is not None:
            raise UnsupportedOption(
                f"tool {tool.name!r}: FunctionTool({option}=...) is not supported yet: its "
                "count lives in one process; the ledger runs each call once"
            )
    func = tool.func.func if isinstance(tool.func, FunctionTool) else tool.func
    if kind == "database" and not inspect.iscoroutinefunction(func):
        raise UnsupportedOption(
            f"tool {tool.name!r}: a synchronous function cannot be a 'database' tool (its "
            "writes go through the ledger's AsyncSession); write it as `async def`"
        )


# --- orchestrations -------------------------------------------------------------------------

UNMAPPED_ORCHESTRATIONS = (
    GroupChatBuilder,
    SequentialBuilder,
    ConcurrentBuilder,
    MagenticBuilder,
    Workflow,
)
"""Orchestrations with no team mode of ours yet; registering one is refused by name."""


def from_agent_framework_handoff(
    builder: HandoffBuilder, *, name: str | None = None, tools: ToolOptions | None = None
) -> TeamDefinition:
    """A `HandoffBuilder` (before `.build()`) as a handoff team: the start agent speaks
    first, `handoff_to_<agent>` tools switch agents along `add_handoff` (every agent to
    every other without one), a text answer ends the user's turn, and the active agent
    answers the next one (agent_framework's default `enable_return_to_previous`)."""
    _check_handoff(builder)
    agents = dict(builder._participants)
    members = [agent_framework_definition(agent, tools) for agent in agents.values()]
    for member, key in zip(members, agents, strict=True):
        member.name = key  # agent_framework's own id: the name, else the agent's id
    if tools is not None:
        tools.check({t.name for m in members for t in m.tools}, f"team {builder._name!r}")
    return TeamDefinition(
        name=name or builder._name,
        system_message="",
        model_client=None,
        members=members,
        mode="handoff",
        root=builder._start_id or next(iter(agents)),
        descriptions={key: agent.description or "" for key, agent in agents.items()},
        handoffs={key: _handoffs(builder, key) for key in agents},
        stop_on_text_reply=True,
    )


def refuse_orchestration(source: object, name: str) -> UnsupportedOption:
    """The refusal of an orchestration that maps onto no team of ours."""
    kind = type(source).__name__
    if isinstance(source, Workflow):
        advice = "register the HandoffBuilder itself (before .build()) for a handoff team"
    else:
        advice = "register a HandoffBuilder, or build the team with agents.adapters.team()"
    return UnsupportedOption(f"agent {name!r}: agent_framework {kind} is not supported: {advice}")


def _handoffs(builder: HandoffBuilder, source: str) -> list[Handoff]:
    """The source's handoffs in participant order (agent_framework keeps them in a set)."""
    agents = builder._participants
    if builder._handoff_config:
        configured = {c.target_id: c.description for c in builder._handoff_config.get(source, ())}
    else:
        configured = {target: None for target in agents if target != source}
    return [
        Handoff(
            target=target,
            description=configured[target]
            or agents[target].description
            or f"Handoff to the {target} agent.",
            name=_handoff_tool_name(target),
            message=json.dumps({HANDOFF_FUNCTION_RESULT_KEY: target}),
        )
        for target in agents
        if target in configured
    ]


_HANDOFF_UNSUPPORTED: list[Unsupported] = [
    ("with_autonomous_mode", lambda b: b._autonomous_mode, "a text answer ends the user's turn"),
    ("with_checkpointing", lambda b: b._checkpoint_storage, "Temporal's history is the checkpoint"),
    (
        "with_termination_condition",
        lambda b: b._termination_condition,
        "a text answer ends the user's turn",
    ),
    (
        "enable_return_to_previous(False)",
        lambda b: not b._return_to_previous,
        "the active agent answers the next user turn",
    ),
]


def _check_handoff(builder: HandoffBuilder) -> None:
    if not builder._participants:
        raise ConfigurationError(f"HandoffBuilder {builder._name!r} has no participants")
    refuse_unsupported(
        builder, _HANDOFF_UNSUPPORTED, lambda o: f"HandoffBuilder {builder._name!r}: {o}"
    )
