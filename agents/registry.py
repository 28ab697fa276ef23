"""The agents a worker can run, by name."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from autogen_core.models import ChatCompletionClient

from agents.errors import DuplicateName, UnknownAgent
from agents.retries import framework_retries_off
from agents.tools import Tool
from interface import AgentSpec, ModelPolicy

ModelClient = Any
"""An AutoGen `ChatCompletionClient` or a LlamaIndex `LLM`."""


@dataclass
class AgentDefinition:
    """An agent's configuration. The workflow runs its loop; activities call its parts."""

    name: str
    system_message: str
    model_client: ChatCompletionClient | ModelClient
    tools: Sequence[Tool] = ()
    max_steps: int = 8
    """Model calls per turn before the turn stops with `step_limit`."""
    context_messages: int = 60
    """Transcript messages sent to the model per call (the newest ones)."""
    model_policy: ModelPolicy = field(default_factory=ModelPolicy)
    max_tool_iterations: int | None = None
    """AutoGen semantics when set: at most this many rounds of tool calls per turn, then a
    reflection or a summary. None: loop until the model answers in text (LlamaIndex)."""
    reflect_on_tool_use: bool = True
    """After the last tool round: another model call (True) or the summary below (False)."""
    tool_call_summary_format: str = "{result}"
    """AutoGen's per-call summary template: {tool_name}, {arguments}, {result}, {is_error}."""

    def __post_init__(self) -> None:
        names = [t.name for t in self.tools]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise DuplicateName(f"agent {self.name!r}: tool names registered twice: {duplicates}")
        self._tools = {t.name: t for t in self.tools}
        self.model_client = framework_retries_off(self.model_client)

    def tool(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def member(self, name: str) -> AgentDefinition:
        """A team's member; a single agent has none."""
        raise UnknownAgent(f"agent {self.name!r} is not a team: no member {name!r}")

    def spec(self) -> AgentSpec:
        return AgentSpec(
            agent=self.name,
            max_steps=self.max_steps,
            model=self.model_policy,
            tools={t.name: t.policy for t in self.tools},
            max_tool_iterations=self.max_tool_iterations,
            reflect_on_tool_use=self.reflect_on_tool_use,
            tool_call_summary_format=self.tool_call_summary_format,
        )


Factory = Callable[[], object]
"""Returns an AutoGen `AssistantAgent` or team, a LlamaIndex `FunctionAgent` or
`AgentWorkflow`, an `AgentDefinition` or a `TeamDefinition` (agents.teams)."""


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
        self, name: str, factory: Factory, *, fresh_per_call: bool = False, tools: Any = None
    ) -> None:
        """Register a framework agent by name. The factory runs once now, so wiring errors
        surface at start-up; with `fresh_per_call` it runs again for every activity, so
        no agent object is shared between conversations."""
        from agents.frameworks import definition_from

        def build() -> AgentDefinition:
            return definition_from(factory(), name, tools)

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
