"""The agents a worker can run, by name."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from autogen_core.models import ChatCompletionClient

from agents.errors import DuplicateName, UnknownAgent
from agents.tools import Tool
from interface import AgentSpec, ModelPolicy


@dataclass
class AgentDefinition:
    """An agent's configuration. The workflow runs its loop; activities call its parts."""

    name: str
    system_message: str
    model_client: ChatCompletionClient
    tools: Sequence[Tool] = ()
    max_steps: int = 8
    """Model calls per turn before the turn stops with `step_limit`."""
    context_messages: int = 60
    """Transcript messages sent to the model per call (the newest ones)."""
    model_policy: ModelPolicy = field(default_factory=ModelPolicy)

    def __post_init__(self) -> None:
        names = [t.name for t in self.tools]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise DuplicateName(f"agent {self.name!r}: tool names registered twice: {duplicates}")
        self._tools = {t.name: t for t in self.tools}

    def tool(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def spec(self) -> AgentSpec:
        return AgentSpec(
            agent=self.name,
            max_steps=self.max_steps,
            model=self.model_policy,
            tools={t.name: t.policy for t in self.tools},
        )


class AgentRegistry:
    def __init__(self, agents: Iterable[AgentDefinition] = ()) -> None:
        self._agents: dict[str, AgentDefinition] = {}
        for agent in agents:
            self.register(agent)

    def register(self, agent: AgentDefinition) -> None:
        if agent.name in self._agents:
            raise DuplicateName(f"agent {agent.name!r} is registered twice")
        self._agents[agent.name] = agent

    def get(self, name: str) -> AgentDefinition:
        try:
            return self._agents[name]
        except KeyError:
            raise UnknownAgent(f"no agent named {name!r}; known: {sorted(self._agents)}") from None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._agents.values())
