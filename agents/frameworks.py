"""Bring your own agent: AutoGen and LlamaIndex objects become agent definitions.

The workflow runs the loop (DESIGN.md); from the framework objects we take the model
client, the tools with their schemas, the system message and the loop options.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import TerminationCondition
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat, Swarm
from autogen_core import CancellationToken
from autogen_core.tools import BaseTool as AutoGenTool
from autogen_core.tools import FunctionTool as AutoGenFunctionTool
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ReActAgent
from llama_index.core.tools import BaseTool as LlamaTool
from llama_index.core.tools.types import DefaultToolFnSchema, adapt_to_async_tool
from pydantic import BaseModel

from agents.errors import ConfigurationError, ToolBusinessError
from agents.registry import AgentDefinition
from agents.teams import LLAMAINDEX_HANDOFF_OUTPUT, Handoff, TeamDefinition, TeamMode
from agents.tools import Tool, ToolContext, ToolKind
from interface import ToolPolicy

__all__ = [
    "DEFAULT_KIND",
    "autogen_tool",
    "definition_from",
    "from_autogen",
    "from_autogen_team",
    "from_llamaindex",
    "from_llamaindex_workflow",
    "function_tool",
    "llamaindex_tool",
    "member_from",
    "offline_defaults",
]

DEFAULT_KIND: ToolKind = "external"
"""A framework tool's side effects are unknown: by default it runs under the ledger as an
external tool that cannot dedupe downstream, so a crashed call is surfaced as `unknown`
instead of being repeated. Declare `read` or `database` per tool with `tool_kinds`."""

LLAMA_MAX_ITERATIONS = 20  # AgentWorkflow.run's default max_iterations


class ToolOptions:
    """How each of an agent's tools runs: kind, policy, downstream dedup, by tool name."""

    def __init__(
        self,
        kinds: Mapping[str, ToolKind] | None = None,
        policies: Mapping[str, ToolPolicy] | None = None,
        dedupes_downstream: Mapping[str, bool] | None = None,
    ) -> None:
        self.kinds, self.policies = dict(kinds or {}), dict(policies or {})
        self.dedupes = dict(dedupes_downstream or {})

    def for_tool(self, name: str) -> dict[str, Any]:
        kind = self.kinds.get(name, DEFAULT_KIND)
        return {
            "kind": kind,
            "policy": self.policies.get(name, ToolPolicy()),
            "dedupes_downstream": self.dedupes.get(name, kind != "external"),
        }


def autogen_tool(tool: AutoGenTool[Any, Any], **options: Any) -> Tool:
    """An AutoGen tool (`FunctionTool` or any `BaseTool`), run by the ledger."""

    async def run(ctx: ToolContext, args: BaseModel) -> str:
        value = await tool.run_json(
            args.model_dump(), CancellationToken(), call_id=ctx.idempotency_key
        )
        return tool.return_value_as_string(value)

    schema = tool.schema
    return Tool(
        name=tool.name,
        description=tool.description,
        args_model=tool.args_type(),
        fn=run,
        parameters=dict(schema.get("parameters", {})),
        **options,
    )


def llamaindex_tool(tool: LlamaTool, **options: Any) -> Tool:
    """A LlamaIndex tool (`FunctionTool`, `QueryEngineTool` or any `BaseTool`)."""
    meta = tool.metadata
    async_tool = adapt_to_async_tool(tool)

    async def run(ctx: ToolContext, args: BaseModel) -> str:
        output = await async_tool.acall(**args.model_dump())
        if getattr(output, "is_error", False):
            raise ToolBusinessError(str(output.content))
        return str(output.content)

    return Tool(
        name=meta.get_name(),
        description=meta.description,
        args_model=meta.fn_schema or DefaultToolFnSchema,
        fn=run,
        parameters=meta.get_parameters_dict(),
        **options,
    )


def function_tool(fn: Callable[..., Any], *, kind: ToolKind = DEFAULT_KIND, **options: Any) -> Tool:
    """A plain typed Python function, made a tool through AutoGen's `FunctionTool`."""
    description = (fn.__doc__ or fn.__name__).strip()
    options.setdefault("dedupes_downstream", kind != "external")
    return autogen_tool(AutoGenFunctionTool(fn, description=description), kind=kind, **options)


def from_autogen(
    agent: AssistantAgent, *, tools: ToolOptions | None = None, in_team: bool = False
) -> AgentDefinition:
    """An `AssistantAgent`'s model client, tools, system message and loop options."""
    _check_autogen_supported(agent, in_team)
    options = tools or ToolOptions()
    return AgentDefinition(
        name=agent.name,
        system_message="\n".join(str(m.content) for m in agent._system_messages),
        model_client=agent._model_client,
        tools=[autogen_tool(t, **options.for_tool(t.name)) for t in agent._tools],
        max_steps=agent._max_tool_iterations + 1,
        max_tool_iterations=agent._max_tool_iterations,
        reflect_on_tool_use=agent._reflect_on_tool_use,
        tool_call_summary_format=agent._tool_call_summary_format,
    )


def from_llamaindex(
    agent: FunctionAgent | ReActAgent, *, tools: ToolOptions | None = None
) -> AgentDefinition:
    """A `FunctionAgent`'s LLM, tools and system prompt; it loops until a text answer."""
    if isinstance(agent, ReActAgent):
        raise ConfigurationError(
            "ReActAgent parses tool calls out of text; register a FunctionAgent instead"
        )
    options = tools or ToolOptions()
    llama_tools = [t for t in agent.tools or [] if isinstance(t, LlamaTool)]
    return AgentDefinition(
        name=agent.name,
        system_message=agent.system_prompt or "",
        model_client=agent.llm,
        tools=[llamaindex_tool(t, **options.for_tool(t.metadata.get_name())) for t in llama_tools],
        max_steps=LLAMA_MAX_ITERATIONS,
    )


def from_autogen_team(
    team: RoundRobinGroupChat | SelectorGroupChat | Swarm,
    *,
    name: str | None = None,
    tools: ToolOptions | None = None,
) -> TeamDefinition:
    """A `RoundRobinGroupChat`, `SelectorGroupChat` or `Swarm` of `AssistantAgent`s, with
    its termination condition (text mention, max messages, or either) and `max_turns`."""
    members = []
    for agent in team._participants:
        if not isinstance(agent, AssistantAgent):
            raise ConfigurationError(
                f"team member {agent.name!r}: only AssistantAgent members are supported"
            )
        members.append(member_from(agent, tools)[0])
    options: dict[str, Any] = {}
    mode: TeamMode = "round_robin"
    if isinstance(team, SelectorGroupChat):
        if team._selector_func is not None or team._candidate_func is not None:
            raise ConfigurationError("selector_func and candidate_func are not supported yet")
        mode = "selector"
        options.update(
            model_client=team._model_client,
            selector_prompt=team._selector_prompt,
            allow_repeated_speaker=team._allow_repeated_speaker,
            max_selector_attempts=team._max_selector_attempts,
        )
    elif isinstance(team, Swarm):
        mode = "handoff"
        options["handoffs"] = {a.name: member_from(a, tools)[1] for a in team._participants}
    return TeamDefinition(
        name=name or team._name,
        system_message="",
        model_client=options.pop("model_client", None),
        members=members,
        mode=mode,
        descriptions={a.name: a.description for a in team._participants},
        max_turns=team._max_turns,
        **_autogen_termination(team._termination_condition),
        **options,
    )


def from_llamaindex_workflow(
    workflow: AgentWorkflow, *, name: str = "agent_workflow", tools: ToolOptions | None = None
) -> TeamDefinition:
    """An `AgentWorkflow` of `FunctionAgent`s: the root agent starts, `handoff(to_agent,
    reason)` switches agents within `can_handoff_to`, and a text answer ends the turn."""
    members = []
    for agent in workflow.agents.values():
        if not isinstance(agent, FunctionAgent):
            raise ConfigurationError(f"workflow agent {agent.name!r}: register FunctionAgents")
        members.append(from_llamaindex(agent, tools=tools))
    output = workflow.handoff_output_prompt.get_template()
    if output != LLAMAINDEX_HANDOFF_OUTPUT:
        raise ConfigurationError("a custom handoff_output_prompt is not supported yet")
    return TeamDefinition(
        name=name,
        system_message="",
        model_client=None,
        members=members,
        mode="handoff",
        root=workflow.root_agent,
        descriptions={a.name: a.description for a in workflow.agents.values()},
        can_handoff_to={a.name: a.can_handoff_to for a in workflow.agents.values()},
        handoff_style="llamaindex",
        stop_on_text_reply=True,
        max_steps=LLAMA_MAX_ITERATIONS,
        max_turns=LLAMA_MAX_ITERATIONS,
    )


def member_from(
    source: object, tools: ToolOptions | None = None
) -> tuple[AgentDefinition, list[Handoff]]:
    """A team member's definition, and its AutoGen handoffs (`AssistantAgent(handoffs=)`)."""
    if isinstance(source, AssistantAgent):
        handoffs = [
            Handoff(h.target, h.description, h.name, h.message) for h in source._handoffs.values()
        ]
        return from_autogen(source, tools=tools, in_team=True), handoffs
    name = getattr(source, "name", None)
    if not isinstance(name, str):
        raise ConfigurationError(f"a team member needs a name, got {type(source).__name__}")
    return definition_from(source, name, tools), []


def _autogen_termination(condition: TerminationCondition | None) -> dict[str, Any]:
    """TextMentionTermination, MaxMessageTermination, or the two joined with `|`."""
    parts = getattr(condition, "_conditions", None)
    if parts is not None and type(condition).__name__ != "OrTerminationCondition":
        raise ConfigurationError("only `|` of termination conditions is supported yet")
    found: dict[str, Any] = {}
    for part in parts if parts is not None else [condition] if condition else []:
        if isinstance(part, TextMentionTermination) and "termination_text" not in found:
            found["termination_text"] = part._termination_text
            found["termination_sources"] = part._sources
        elif isinstance(part, MaxMessageTermination) and not part._include_agent_event:
            found["max_messages"] = min(part._max_messages, found.get("max_messages", 1 << 30))
        else:
            raise ConfigurationError(
                f"termination condition {type(part).__name__} is not supported yet"
            )
    return found


def definition_from(source: object, name: str, tools: ToolOptions | None = None) -> AgentDefinition:
    """Normalize what a factory returned into an `AgentDefinition` called `name`."""
    if isinstance(source, AgentDefinition):
        definition = source
    elif isinstance(source, RoundRobinGroupChat | SelectorGroupChat | Swarm):
        definition = from_autogen_team(source, name=name, tools=tools)
    elif isinstance(source, AgentWorkflow):
        definition = from_llamaindex_workflow(source, name=name, tools=tools)
    elif isinstance(source, AssistantAgent):
        definition = from_autogen(source, tools=tools)
    elif isinstance(source, FunctionAgent | ReActAgent):
        definition = from_llamaindex(source, tools=tools)
    else:
        raise ConfigurationError(
            f"agent {name!r}: expected an AssistantAgent, a FunctionAgent, an AutoGen team, "
            f"an AgentWorkflow or an AgentDefinition, got {type(source).__name__}"
        )
    definition.name = name
    return definition


def offline_defaults() -> None:
    """Point tiktoken at llama-index-core's bundled encodings: nothing downloads at run time."""
    import llama_index.core

    bundled = Path(llama_index.core.__file__).parent / "_static" / "tiktoken_cache"
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(bundled))


def _check_autogen_supported(agent: AssistantAgent, in_team: bool = False) -> None:
    missing = [a for a in ("_model_client", "_system_messages", "_tools") if not hasattr(agent, a)]
    if missing:
        raise ConfigurationError(f"unsupported autogen-agentchat version: no {missing}")
    formatter = agent._tool_call_summary_formatter
    unsupported = {
        "tool_call_summary_formatter (use tool_call_summary_format)": formatter,
        "structured output (output_content_type)": agent._output_content_type,
        "memory": agent._memory,
        "handoffs (register a team instead)": agent._handoffs and not in_team,
    }
    for what, value in unsupported.items():
        if value:
            raise ConfigurationError(f"agent {agent.name!r}: {what} is not supported yet")
    custom = [
        w
        for w in agent._workbench
        if type(w).__name__ not in ("StaticWorkbench", "StaticStreamWorkbench")
    ]
    if custom:
        raise ConfigurationError(
            f"agent {agent.name!r}: workbenches other than tools= are not supported yet"
        )
