"""Teams from the frameworks: AutoGen group chats, LlamaIndex's `AgentWorkflow`, `team()`.

A team's `ToolOptions` are checked against the tools of all its framework members
together: one catalogue may describe the tools of several members.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agent_framework import RawAgent
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import TerminationCondition
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat, Swarm
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ReActAgent

from agents.adapters.agent_framework import agent_framework_definition
from agents.adapters.autogen import autogen_definition, autogen_handoffs
from agents.adapters.llamaindex import (
    LLAMA_MAX_ITERATIONS,
    llamaindex_definition,
    workflow_timeout,
)
from agents.adapters.options import ToolOptions
from agents.definitions import (
    LLAMAINDEX_HANDOFF_OUTPUT,
    LLAMAINDEX_HANDOFF_PROMPT,
    AgentDefinition,
    Handoff,
    TeamDefinition,
    TeamMode,
)
from agents.errors import ConfigurationError, UnsupportedOption

__all__ = ["AutoGenTeam", "from_autogen_team", "from_llamaindex_workflow", "team"]

AutoGenTeam = RoundRobinGroupChat | SelectorGroupChat | Swarm


def team(
    name: str,
    members: Sequence[object],
    *,
    mode: TeamMode = "round_robin",
    termination_text: str | None = None,
    max_messages: int | None = None,
    max_turns: int | None = None,
    handoffs: Mapping[str, Sequence[str | Handoff]] | None = None,
    tools: ToolOptions | None = None,
    **options: Any,
) -> TeamDefinition:
    """A team of AutoGen `AssistantAgent`s, LlamaIndex `FunctionAgent`s, Agent Framework
    `Agent`s or `AgentDefinition`s, each under its own name. `handoffs` adds AutoGen-style
    handoffs by member (an `AssistantAgent`'s own `handoffs=` count too); `tools` applies to the
    framework members. Other options are `TeamDefinition`'s fields: `model_client` (the
    selector's), `descriptions`, `can_handoff_to`, `handoff_style`, `root`, ..."""
    definitions, found = [], {}
    for member in members:
        definition, own = _member(member, tools)
        definitions.append(definition)
        extra = [
            h if isinstance(h, Handoff) else Handoff(h)
            for h in (handoffs or {}).get(definition.name, ())
        ]
        found[definition.name] = [*own, *extra]
    _check_tools(tools, name, definitions, members)
    descriptions = {
        d.name: str(getattr(m, "description", "") or "")
        for d, m in zip(definitions, members, strict=True)
    }
    return TeamDefinition(
        name=name,
        system_message="",
        model_client=options.pop("model_client", None),
        members=definitions,
        mode=mode,
        termination_text=termination_text,
        max_messages=max_messages,
        max_turns=max_turns,
        handoffs=found,
        descriptions={**descriptions, **options.pop("descriptions", {})},
        **options,
    )


def from_autogen_team(
    team: AutoGenTeam, *, name: str | None = None, tools: ToolOptions | None = None
) -> TeamDefinition:
    """A `RoundRobinGroupChat`, `SelectorGroupChat` or `Swarm` of `AssistantAgent`s, with
    its termination condition (text mention, max messages, or either) and `max_turns`."""
    _check_autogen_team(team)
    members, handoffs = [], {}
    for agent in team._participants:
        if not isinstance(agent, AssistantAgent):
            raise ConfigurationError(
                f"team member {agent.name!r}: only AssistantAgent members are supported"
            )
        definition, handoffs[agent.name] = _member(agent, tools)
        members.append(definition)
    name = name or team._name
    _check_tools(tools, name, members, team._participants)
    options: dict[str, Any] = {}
    mode: TeamMode = "round_robin"
    if isinstance(team, SelectorGroupChat):
        mode = "selector"
        options.update(
            model_client=team._model_client,
            selector_prompt=team._selector_prompt,
            allow_repeated_speaker=team._allow_repeated_speaker,
            max_selector_attempts=team._max_selector_attempts,
        )
    elif isinstance(team, Swarm):
        mode = "handoff"
        options["handoffs"] = handoffs
    return TeamDefinition(
        name=name,
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
    _check_workflow(workflow)
    members = []
    for agent in workflow.agents.values():
        if not isinstance(agent, FunctionAgent):
            raise ConfigurationError(f"workflow agent {agent.name!r}: register FunctionAgents")
        members.append(llamaindex_definition(agent, tools, in_team=True))
    _check_tools(tools, name, members, list(workflow.agents.values()))
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


def _member(source: object, tools: ToolOptions | None) -> tuple[AgentDefinition, list[Handoff]]:
    """A team member's definition, and its AutoGen handoffs (`AssistantAgent(handoffs=)`)."""
    if isinstance(source, AssistantAgent):
        return autogen_definition(source, tools, in_team=True), autogen_handoffs(source)
    if isinstance(source, FunctionAgent | ReActAgent):
        return llamaindex_definition(source, tools, in_team=True), []
    if isinstance(source, RawAgent):
        return agent_framework_definition(source, tools), []
    if isinstance(source, AgentDefinition) and not isinstance(source, TeamDefinition):
        return source, []
    raise ConfigurationError(
        "a team member is an AssistantAgent, a FunctionAgent, an Agent Framework Agent or an "
        "AgentDefinition, "
        f"got {type(source).__name__}"
    )


def _check_tools(
    tools: ToolOptions | None,
    name: str,
    definitions: Sequence[AgentDefinition],
    sources: Sequence[object],
) -> None:
    """The options against the tools of the members they apply to (framework members)."""
    if tools is None:
        return
    names = {
        t.name
        for d, source in zip(definitions, sources, strict=True)
        if not isinstance(source, AgentDefinition)
        for t in d.tools
    }
    tools.check(names, f"team {name!r}")


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
            raise UnsupportedOption(
                f"termination condition {type(part).__name__} is not supported yet"
            )
    return found


_AUTOGEN_TEAM: list[tuple[str, Callable[[Any], object]]] = [
    ("runtime", lambda t: not getattr(t, "_embedded_runtime", True)),
    ("emit_team_events", lambda t: getattr(t, "_emit_team_events", False)),
    ("selector_func", lambda t: getattr(t, "_selector_func", None)),
    ("candidate_func", lambda t: getattr(t, "_candidate_func", None)),
    ("model_client_streaming", lambda t: getattr(t, "_model_client_streaming", False)),
    ("model_context", lambda t: getattr(t, "_model_context", None)),
]
"""Group-chat options set to anything but their default; the workflow runs the team."""


def _check_autogen_team(team: AutoGenTeam) -> None:
    for option, is_set in _AUTOGEN_TEAM:
        if is_set(team):
            raise UnsupportedOption(
                f"team {team._name!r}: {type(team).__name__}({option}=...) is not supported yet"
            )


def _check_workflow(workflow: AgentWorkflow) -> None:
    unsupported = {
        "initial_state": workflow.initial_state,
        "output_cls": workflow.output_cls,
        "structured_output_fn": workflow.structured_output_fn,
        "early_stopping_method": workflow.early_stopping_method != "force",
        "timeout": workflow_timeout(workflow) is not None,
        "handoff_prompt": workflow.handoff_prompt.get_template() != LLAMAINDEX_HANDOFF_PROMPT,
        "handoff_output_prompt": (
            workflow.handoff_output_prompt.get_template() != LLAMAINDEX_HANDOFF_OUTPUT
        ),
    }
    for option, is_set in unsupported.items():
        if is_set:
            raise UnsupportedOption(f"AgentWorkflow({option}=...) is not supported yet")
