"""Agent and team definitions: what the workflow's loop needs to know of an agent.

A definition is plain data plus its tools; the adapters (agents.adapters) build one from an
AutoGen or LlamaIndex object, and the registry (agents.registry) serves them by name.

Teams: several agents in one conversation, taking turns as the team says. The workflow
runs the team (who speaks next, handoffs, termination); each member's model calls and
tools run as they do for a single agent, under the same ledger. A team is registered
under its own name and a conversation's `agent` is that name. Members are addressed by
activities as `<team>/<member>`.

Semantics follow the frameworks:
- round_robin: AutoGen's `RoundRobinGroupChat`; the next speaker carries over to the next
  user turn.
- selector: AutoGen's `SelectorGroupChat`; the team's model picks the next speaker with
  AutoGen's prompt, without the previous speaker unless `allow_repeated_speaker`.
- random: AG2's `GroupChat(speaker_selection_method="random")`, seeded by the conversation
  and the turn. AG2 group chats also restrict who follows whom (`transitions`) and start
  every user turn afresh after the person (`first_speakers`); `selector` then uses AG2's
  prompts (agents.adapters.ag2).
- handoff: AutoGen's `Swarm` (`transfer_to_<name>` tools) or LlamaIndex's `AgentWorkflow`
  (one `handoff(to_agent, reason)` tool limited by `can_handoff_to`); the active agent
  carries over to the next user turn.
- termination: `termination_text` (TextMentionTermination), `max_messages`
  (MaxMessageTermination: the user's message counts), `max_turns` (agent turns per user
  message), and for LlamaIndex, the first text answer of the active agent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from autogen_core.models import ChatCompletionClient
from pydantic import BaseModel, Field

from agents.errors import ConfigurationError, DuplicateName, UnknownAgent
from agents.retries import framework_retries_off
from agents.tools import Tool, ToolContext
from interface import AgentSpec, HandoffSpec, ModelPolicy, TeamSpec

__all__ = [
    "AUTOGEN_SELECTOR_PROMPT",
    "AgentDefinition",
    "Handoff",
    "HandoffStyle",
    "LLAMAINDEX_HANDOFF_OUTPUT",
    "LLAMAINDEX_HANDOFF_PROMPT",
    "ModelClient",
    "TeamDefinition",
    "TeamMode",
]

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
    context_tokens: int | None = None
    """The framework's memory limit in tokens (LlamaIndex `ChatMemoryBuffer(token_limit=)`,
    AutoGen `TokenLimitedChatCompletionContext`, AG2's token limiter): the transcript window
    sent per call stays within it. None: the default budget (the model's context window)."""
    context_head: int = 0
    """Messages always kept from the conversation's start (AutoGen
    `HeadAndTailChatCompletionContext(head_size=)`); the rest of the window is the newest."""
    output_schema: dict[str, Any] | None = None
    """The JSON schema of the framework's structured output (agentchat `output_content_type`,
    LlamaIndex `output_cls`, AG2 `response_format`); the turn result carries the object."""
    model_policy: ModelPolicy = field(default_factory=ModelPolicy)
    max_tool_iterations: int | None = None
    """AutoGen semantics when set: at most this many rounds of tool calls per turn, then a
    reflection or a summary. None: loop until the model answers in text (LlamaIndex)."""
    reflect_on_tool_use: bool = True
    """After the last tool round: another model call (True) or the summary below (False)."""
    tool_call_summary_format: str = "{result}"
    """AutoGen's per-call summary template: {tool_name}, {arguments}, {result}, {is_error}."""
    output_type: type[BaseModel] | None = None
    """The pydantic model behind `output_schema`: the model activity asks for it and
    validates the answer with it."""

    def __post_init__(self) -> None:
        names = [t.name for t in self.tools]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise DuplicateName(f"agent {self.name!r}: tool names registered twice: {duplicates}")
        self._tools = {t.name: t for t in self.tools}
        if self.output_type is not None and self.output_schema is None:
            self.output_schema = self.output_type.model_json_schema()
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


TeamMode = Literal["round_robin", "selector", "handoff", "random"]
HandoffStyle = Literal["autogen", "llamaindex"]

AUTOGEN_SELECTOR_PROMPT = """You are in a role play game. The following roles are available:
{roles}.
Read the following conversation. Then select the next role from {participants} to play. Only return the role.

{history}

Read the above conversation. Then select the next role from {participants} to play. Only return the role.
"""  # noqa: E501  (SelectorGroupChat's default, verbatim)

LLAMAINDEX_HANDOFF_PROMPT = """Useful for handing off to another agent.
If you are currently not equipped to handle the user's request, or another agent is better suited to handle the request, please hand off to the appropriate agent.

Currently available agents:
{agent_info}
"""  # noqa: E501  (AgentWorkflow's DEFAULT_HANDOFF_PROMPT, verbatim)

LLAMAINDEX_HANDOFF_OUTPUT = (
    "Agent {to_agent} is now handling the request due to the following reason: {reason}.\n"
    "Please continue with the current request."
)


@dataclass(frozen=True)
class Handoff:
    """AutoGen's `Handoff`: a `transfer_to_<target>` tool whose result is `message`."""

    target: str
    description: str | None = None
    name: str | None = None
    message: str | None = None

    @property
    def tool_name(self) -> str:
        return self.name or f"transfer_to_{self.target}".lower()

    @property
    def tool_message(self) -> str:
        return self.message or (
            f"Transferred to {self.target}, adopting the role of {self.target} immediately."
        )

    @property
    def tool_description(self) -> str:
        return self.description or f"Handoff to {self.target}."


class _NoArguments(BaseModel):
    pass


class _HandoffArguments(BaseModel):
    to_agent: str = Field(description="The name of the agent to hand off to.")
    reason: str = Field(description="The reason for handing off.")


async def _never_run(ctx: ToolContext, args: Any) -> str:
    raise ConfigurationError("handoff tools are handled by the workflow, not run as tools")


@dataclass
class TeamDefinition(AgentDefinition):
    """A team. Build one with `agents.adapters.team(...)` or from a framework object."""

    members: Sequence[AgentDefinition] = ()
    mode: TeamMode = "round_robin"
    root: str | None = None
    """The first speaker (a handoff team's root agent); by default the first member."""
    descriptions: Mapping[str, str] = field(default_factory=dict)
    """What each member does: the selector's `{roles}`, the handoff tool's agent list."""
    handoffs: Mapping[str, Sequence[Handoff]] = field(default_factory=dict)
    """AutoGen style: each member's `transfer_to_<name>` handoffs."""
    can_handoff_to: Mapping[str, Sequence[str] | None] = field(default_factory=dict)
    """LlamaIndex style: the members each may hand off to (missing or None: all others)."""
    handoff_style: HandoffStyle = "autogen"
    termination_text: str | None = None
    termination_sources: Sequence[str] | None = None
    max_messages: int | None = None
    max_turns: int | None = None
    stop_on_text_reply: bool = False
    selector_prompt: str = AUTOGEN_SELECTOR_PROMPT
    allow_repeated_speaker: bool = False
    max_selector_attempts: int = 3
    transitions: Mapping[str, Sequence[str]] | None = None
    """AG2's allowed speaker transitions: who may speak after each member."""
    first_speakers: Sequence[str] | None = None
    """AG2: who may speak first after the person; set, every user turn starts afresh."""

    def __post_init__(self) -> None:
        super().__post_init__()
        names = [m.name for m in self.members]
        if not names:
            raise ConfigurationError(f"team {self.name!r} has no members")
        if len(set(names)) != len(names):
            raise ConfigurationError(f"team {self.name!r}: member names repeat: {names}")
        if self.root is not None and self.root not in names:
            raise ConfigurationError(f"team {self.name!r}: root {self.root!r} is not a member")
        if self.mode == "selector" and self.model_client is None:
            raise ConfigurationError(f"team {self.name!r}: a selector team needs a model_client")
        for count in (self.max_messages, self.max_turns):
            if count is not None and count < 1:
                raise ConfigurationError(f"team {self.name!r}: limits must be at least 1")
        self._members = {m.name: self._with_handoffs(m) for m in self.members}

    def member(self, name: str) -> AgentDefinition:
        try:
            return self._members[name]
        except KeyError:
            raise UnknownAgent(f"team {self.name!r} has no member {name!r}") from None

    def spec(self) -> AgentSpec:
        names = list(self._members)
        members = {}
        for name, member in self._members.items():
            spec = member.spec()
            spec.agent = f"{self.name}/{name}"
            spec.handoffs = self._handoff_specs(name)
            spec.tools = {k: v for k, v in spec.tools.items() if k not in spec.handoffs}
            members[name] = spec
        return AgentSpec(
            agent=self.name,
            max_steps=self.max_steps,
            model=self.model_policy,
            team=TeamSpec(
                mode=self.mode,
                members=names,
                root=self.root or names[0],
                termination_text=self.termination_text,
                termination_sources=(
                    list(self.termination_sources) if self.termination_sources else None
                ),
                max_messages=self.max_messages,
                max_turns=self.max_turns,
                stop_on_text_reply=self.stop_on_text_reply,
                allow_repeated_speaker=self.allow_repeated_speaker,
                transitions=(
                    {k: list(v) for k, v in self.transitions.items()}
                    if self.transitions is not None
                    else None
                ),
                first_speakers=list(self.first_speakers) if self.first_speakers else None,
            ),
            members=members,
        )

    def roles(self, names: Sequence[str] | None = None) -> str:
        """The selector prompt's `{roles}`: one `name: description` line per member."""
        lines = []
        for name in names or list(self._members):
            text = " ".join(f"{name}: {self.descriptions.get(name, '')}".split())
            lines.append(text)
        return "\n".join(lines)

    # --- handoff tools -------------------------------------------------------------------

    def _targets(self, name: str) -> list[str]:
        if self.mode != "handoff":
            return []
        if self.handoff_style == "autogen":
            return [h.target for h in self.handoffs.get(name, ())]
        allowed = self.can_handoff_to.get(name)
        others = [m.name for m in self.members if m.name != name]
        return others if allowed is None else [a for a in allowed if a in others]

    def _with_handoffs(self, member: AgentDefinition) -> AgentDefinition:
        targets = self._targets(member.name)
        names = {m.name for m in self.members}
        unknown = [t for t in targets if t not in names]
        if unknown:
            raise ConfigurationError(
                f"team {self.name!r}: {member.name!r} hands off to non-members {unknown}"
            )
        if not targets:
            return member
        if self.handoff_style == "autogen":
            extra = [
                Tool(
                    name=h.tool_name,
                    description=h.tool_description,
                    args_model=_NoArguments,
                    fn=_never_run,
                )
                for h in self.handoffs.get(member.name, ())
            ]
        else:
            info = {t: self.descriptions.get(t, "") for t in targets}
            extra = [
                Tool(
                    name="handoff",
                    description=LLAMAINDEX_HANDOFF_PROMPT.format(agent_info=str(info)),
                    args_model=_HandoffArguments,
                    fn=_never_run,
                )
            ]
        return replace(member, tools=[*member.tools, *extra])

    def _handoff_specs(self, name: str) -> dict[str, HandoffSpec]:
        targets = self._targets(name)
        if not targets:
            return {}
        if self.handoff_style == "llamaindex":
            return {"handoff": HandoffSpec(message=LLAMAINDEX_HANDOFF_OUTPUT, allowed=targets)}
        return {
            h.tool_name: HandoffSpec(target=h.target, message=h.tool_message)
            for h in self.handoffs.get(name, ())
        }
