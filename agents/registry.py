"""The agents a worker can run, by name."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from agents.adapters.convert import definition_from
from agents.adapters.options import ToolOptions
from agents.definitions import AgentDefinition
from agents.errors import DuplicateName, UnknownAgent

__all__ = ["AgentRegistry", "Factory"]

Factory = Callable[[], object]
"""Returns an AutoGen `AssistantAgent` or team, an AG2 `ConversableAgent`, an
`(assistant, user_proxy)` pair or a `GroupChatManager`, a LlamaIndex `FunctionAgent` or
`AgentWorkflow`, an Agent Framework `Agent`, an `AgentDefinition` or a `TeamDefinition`."""


@dataclass
class _Entry:
    definition: AgentDefinition
    rebuild: Callable[[], AgentDefinition] | None = None


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
    ) -> None:
        """Register a framework agent by name. The factory runs once now, so wiring errors
        and options we cannot honour surface at start-up; with `fresh_per_call` it runs
        again for every activity, so no agent object is shared between conversations.
        `memory`: what a LlamaIndex agent is run with (`agent.run(memory=...)`)."""

        def build() -> AgentDefinition:
            return definition_from(factory(), name, tools, memory)

        self._add(name, _Entry(build(), build if fresh_per_call else None))

    def get(self, name: str) -> AgentDefinition:
        """An agent or a team by name; `<team>/<member>` is a team's member."""
        team, _, member = name.rpartition("/")
        if team and name not in self._agents:
            return self.get(team).member(member)
        try:
            entry = self._agents[name]
        except KeyError:
            raise UnknownAgent(f"no agent named {name!r}; known: {sorted(self._agents)}") from None
        return entry.rebuild() if entry.rebuild else entry.definition

    def __iter__(self) -> Iterator[AgentDefinition]:
        return iter(entry.definition for entry in self._agents.values())

    def _add(self, name: str, entry: _Entry) -> None:
        if name in self._agents:
            raise DuplicateName(f"agent {name!r} is registered twice")
        self._agents[name] = entry
