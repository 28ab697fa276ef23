"""Whatever a registry factory returns, as an agent definition."""

from __future__ import annotations

from agent_framework import RawAgent
from agent_framework_orchestrations import HandoffBuilder
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat, Swarm
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ReActAgent

from agents.adapters.agent_framework import (
    UNMAPPED_ORCHESTRATIONS,
    from_agent_framework,
    from_agent_framework_handoff,
    refuse_orchestration,
)
from agents.adapters.autogen import from_autogen
from agents.adapters.llamaindex import from_llamaindex
from agents.adapters.options import ToolOptions
from agents.adapters.teams import from_autogen_team, from_llamaindex_workflow
from agents.definitions import AgentDefinition
from agents.errors import ConfigurationError

__all__ = ["definition_from"]


def definition_from(
    source: object, name: str, tools: ToolOptions | None = None, memory: object | None = None
) -> AgentDefinition:
    """Normalize what a factory returned into an `AgentDefinition` called `name`; `memory`
    is a LlamaIndex agent's `run(memory=...)`."""
    if memory is not None and not isinstance(source, FunctionAgent | ReActAgent):
        raise ConfigurationError(
            f"agent {name!r}: memory= is a LlamaIndex agent's memory; an AutoGen agent's "
            "window is its model_context="
        )
    if isinstance(source, AgentDefinition):
        if tools is not None:
            raise ConfigurationError(
                f"agent {name!r}: tools= applies to framework agents; an AgentDefinition's "
                "tools carry their own kind and policy"
            )
        definition = source
    elif isinstance(source, RoundRobinGroupChat | SelectorGroupChat | Swarm):
        definition = from_autogen_team(source, name=name, tools=tools)
    elif isinstance(source, AgentWorkflow):
        definition = from_llamaindex_workflow(source, name=name, tools=tools)
    elif isinstance(source, AssistantAgent):
        definition = from_autogen(source, tools=tools)
    elif isinstance(source, FunctionAgent | ReActAgent):
        definition = from_llamaindex(source, tools=tools, memory=memory)
    elif isinstance(source, RawAgent):
        definition = from_agent_framework(source, tools=tools)
    elif isinstance(source, HandoffBuilder):
        definition = from_agent_framework_handoff(source, name=name, tools=tools)
    elif isinstance(source, UNMAPPED_ORCHESTRATIONS):
        raise refuse_orchestration(source, name)
    elif _is_ag2(source):
        from agents.adapters.ag2 import from_ag2_source  # AG2 loads only for its agents

        definition = from_ag2_source(source, name, tools)
    else:
        raise ConfigurationError(
            f"agent {name!r}: expected an AssistantAgent, a FunctionAgent, an AutoGen team, "
            "an AgentWorkflow, an AG2 agent or (assistant, user_proxy), an Agent Framework "
            f"Agent or an AgentDefinition, got {type(source).__name__}"
        )
    definition.name = name
    return definition


def _is_ag2(source: object) -> bool:
    """An AG2 object, or a tuple of them (`(assistant, user_proxy)`), by its module."""
    items = source if isinstance(source, tuple) else (source,)
    return bool(items) and all(type(i).__module__.partition(".")[0] == "autogen" for i in items)
