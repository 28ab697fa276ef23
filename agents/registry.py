"""The agents a worker can run, by name."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import cast

from agents.adapters.convert import definition_from
from agents.adapters.options import ToolOptions
from agents.definitions import AgentDefinition, TeamDefinition
from agents.errors import ConfigurationError, DuplicateName, UnknownAgent
from agents.tools import Tool

__all__ = ["AgentRegistry", "Factory"]

Factory = Callable[[], object]
"""Returns an AutoGen `AssistantAgent` or team, an AG2 `ConversableAgent`, an
`(assistant, user_proxy)` pair or a `GroupChatManager`, a LlamaIndex `FunctionAgent` or
`AgentWorkflow`, an Agent Framework `Agent`, an `AgentDefinition` or a `TeamDefinition`."""


ToolSource = Tool | Iterable[Tool]
"""A tool, or a live collection of them such as `mcp_tools(...)`'s `McpToolset`."""


@dataclass
class _Entry:
    definition: AgentDefinition
    rebuild: Callable[[], AgentDefinition] | None = None
    sources: list[ToolSource] = field(default_factory=list)
    versions: tuple[int, ...] | None = None
    base: AgentDefinition | None = None  # without the extra tools

    def current(self) -> AgentDefinition:
        """The definition, rebuilt when a live tool source (an MCP server's list) changed."""
        if self.rebuild:
            return self.rebuild()
        if self.sources and _versions(self.sources) != self.versions:
            self.base = self.base or self.definition
            self.definition = _with_tools(self.base, self.sources)
            self.versions = _versions(self.sources)
        return self.definition


class AgentRegistry:
    def __init__(self, agents: Sequence[AgentDefinition] = ()) -> None:
        self._agents: dict[str, _Entry] = {}
        for agent in agents:
            self.register(agent)

    def register(self, agent: AgentDefinition) -> None:
        self._add(agent.name, _Entry(agent))

    def add(
        self,
        name: str,
        factory: Factory,
        *,
        fresh_per_call: bool = False,
        tools: ToolOptions | None = None,
        memory: object | None = None,
        extra_tools: Iterable[ToolSource] = (),
    ) -> None:
        """Register a framework agent by name. The factory runs once now, so wiring errors
        and options we cannot honour surface at start-up; with `fresh_per_call` it runs
        again for every activity, so no agent object is shared between conversations.
        `memory`: what a LlamaIndex agent is run with (`agent.run(memory=...)`).

        `extra_tools` are added to the agent's own: `Tool`s, or `mcp_tools(server)` (one
        toolset or a list of them), whose changes reach the agent when the server's list
        changes. `tools=` options apply to the framework agent's own tools."""
        sources = _sources(extra_tools)
        base = definition_from(factory(), name, tools, memory)
        _check_extra(base, sources)

        def build() -> AgentDefinition:
            return _with_tools(definition_from(factory(), name, tools, memory), sources)

        entry = _Entry(base, build if fresh_per_call else None, sources)
        entry.current()
        self._add(name, entry)

    def get(self, name: str) -> AgentDefinition:
        """An agent or a team by name; `<team>/<member>` is a team's member."""
        team, _, member = name.rpartition("/")
        if team and name not in self._agents:
            return self.get(team).member(member)
        try:
            entry = self._agents[name]
        except KeyError:
            raise UnknownAgent(f"no agent named {name!r}; known: {sorted(self._agents)}") from None
        return entry.current()

    def __iter__(self) -> Iterator[AgentDefinition]:
        return iter(entry.definition for entry in self._agents.values())

    def _add(self, name: str, entry: _Entry) -> None:
        if name in self._agents:
            raise DuplicateName(f"agent {name!r} is registered twice")
        self._agents[name] = entry


def _sources(extra: Iterable[ToolSource]) -> list[ToolSource]:
    if isinstance(extra, Tool) or hasattr(extra, "version"):
        return [cast(ToolSource, extra)]  # one tool, or one live toolset
    return list(extra)


def _versions(sources: Sequence[ToolSource]) -> tuple[int, ...]:
    return tuple(getattr(s, "version", 0) for s in sources)


def _flatten(sources: Sequence[ToolSource]) -> list[Tool]:
    return [t for s in sources for t in ([s] if isinstance(s, Tool) else s)]


def _check_extra(definition: AgentDefinition, sources: Sequence[ToolSource]) -> None:
    if sources and isinstance(definition, TeamDefinition):
        raise ConfigurationError(
            f"team {definition.name!r}: extra_tools= belong to one agent; give them to a "
            "member (an AgentDefinition's tools=) or register that agent on its own"
        )
    for tool in _flatten(sources):
        if not isinstance(tool, Tool):
            raise ConfigurationError(
                f"agent {definition.name!r}: extra_tools= takes Tools or mcp_tools(...), "
                f"not {type(tool).__name__}"
            )


def _with_tools(definition: AgentDefinition, sources: Sequence[ToolSource]) -> AgentDefinition:
    if not sources:
        return definition
    return replace(definition, tools=[*definition.tools, *_flatten(sources)])
