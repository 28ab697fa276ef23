"""Every payload that crosses the workflow boundary: signals, updates, queries, activities.

These are the stable public interface (see DESIGN.md). Clients in other languages send the
same JSON. Adding a field with a default is backward-compatible; renaming or removing one
is not.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from interface.contract import DEFAULT_TASK_QUEUE, WORKFLOW_TYPE  # noqa: F401 (re-exported)
from interface.policies import ConversationSettings, ModelPolicy, ToolPolicy

ConversationStatus = Literal["idle", "thinking", "waiting_approval", "ended", "failed"]
ToolCallStatus = Literal["ok", "error", "denied", "unknown"]
TurnStatus = Literal["completed", "step_limit", "failed", "duplicate", "interrupted"]
"""`interrupted`: the `cancel_turn` update stopped the turn (its partial reply is kept)."""


# --- messages: the neutral form every framework is converted to and from ---------------


class ToolCall(BaseModel):
    """One function call requested by the model; `arguments` is the model's raw JSON text."""

    id: str
    name: str
    arguments: str = "{}"


class Message(BaseModel):
    """One transcript message in a framework-neutral form."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False
    message_id: str | None = None
    source: str | None = None
    thought: str | None = None
    """A ReAct agent's `Thought:` before its action or answer; None for other agents."""
    interrupted: bool = False
    """An assistant message cut short by `cancel_turn`: the text written before it."""


class SeqMessage(BaseModel):
    """A message with its position in the conversation's append-only transcript."""

    seq: int
    message: Message


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def plus(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


# --- workflow input, signals, updates, queries ------------------------------------------


class UserMessage(BaseModel):
    """Input of the `user_message` signal and the `ask` update."""

    message_id: str
    text: str
    resume: bool = False
    """With the `message_id` of a failed turn: continue that turn where it failed, under the
    same ledger keys, instead of answering with its recorded failure. `text` is not used."""


class ToolDecision(BaseModel):
    """Input of the `decide_tool` signal."""

    tool_call_id: str
    approve: bool
    reason: str = ""


class EndConversation(BaseModel):
    """Input of the `end` signal."""


class CancelTurn(BaseModel):
    """Input of the `cancel_turn` update: stop the running turn (or the one `message_id`
    names, if it is the running one). Queued turns go on."""

    message_id: str | None = None
    reason: str = ""


class CancelTurnResult(BaseModel):
    """Result of `cancel_turn`: whether a running turn was interrupted, and which."""

    cancelled: bool
    message_id: str | None = None
    turn: int | None = None


class ToolCallRecord(BaseModel):
    """What happened to one tool call, as shown in a turn's result and in `state`."""

    id: str
    name: str
    arguments: str
    status: ToolCallStatus
    result: str
    turn: int = 0
    speaker: str | None = None
    """In a team: the member whose model made the call."""


class TurnError(BaseModel):
    """Why a turn did not complete: `type` is one of the README's error types."""

    type: str
    message: str = ""


class TurnResult(BaseModel):
    """Result of the `ask` update: what one user turn produced."""

    message_id: str
    turn: int
    status: TurnStatus
    reply: str
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    steps: int = 0
    speaker: str | None = None
    """In a team: the member who gave the reply."""
    speakers: list[str] = Field(default_factory=list)
    """In a team: the members who spoke in this turn, in order."""
    output: dict[str, Any] | None = None
    """The agent's structured output (agentchat `output_content_type`, LlamaIndex
    `output_cls`, AG2 and Agent Framework `response_format`), validated with its model, as
    JSON; None for agents without one."""
    error: TurnError | None = None
    """Set when `status` is "failed": the failure's type and message; when "interrupted":
    type `TurnInterrupted` and the reason given to `cancel_turn`."""


class PendingApproval(BaseModel):
    tool_call_id: str
    name: str
    arguments: str
    turn: int


class RecentMessage(BaseModel):
    seq: int
    role: str
    content: str
    name: str | None = None
    speaker: str | None = None
    """In a team: the member who wrote an assistant or tool message."""


class ConversationState(BaseModel):
    """Result of the `state` query."""

    agent: str
    status: ConversationStatus
    turn_count: int
    messages: list[RecentMessage] = Field(default_factory=list)
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    pending_approvals: list[PendingApproval] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    queued_turns: int = 0
    run_turns: int = 0
    active_agent: str | None = None
    """In a team: the member speaking now, or the last one to speak."""


class CarriedState(BaseModel):
    """Bounded state carried across continue-as-new. Never holds the whole transcript."""

    turn_count: int = 0
    next_seq: int = 0
    usage: Usage = Field(default_factory=Usage)
    recent_message_ids: list[str] = Field(default_factory=list)
    recent_results: list[TurnResult] = Field(default_factory=list)
    queue: list[UserMessage] = Field(default_factory=list)
    messages: list[RecentMessage] = Field(default_factory=list)
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    unsent: list[SeqMessage] = Field(default_factory=list)
    end_requested: bool = False
    runs: int = 1
    speaker: str | None = None
    """In a team: the last speaker (a handoff team's active agent)."""
    next_speaker_index: int = 0
    """In a round-robin team: whose turn is next, carried across user turns as AutoGen does."""
    chain_id: str | None = None
    """The transcript chain once a reset forked it; None: the first run's ID."""


class StreamItem(BaseModel):
    topic: str
    data: str
    """base64 of the item's serialized Payload."""
    offset: int = 0


class StreamPublisher(BaseModel):
    sequence: int
    last_seen: datetime


class StreamState(BaseModel):
    """`temporalio.contrib.workflow_streams.WorkflowStreamState`, field for field, as a
    model of ours: the interface imports no Temporal module (the workflow converts it)."""

    log: list[StreamItem] = Field(default_factory=list)
    base_offset: int = 0
    publishers: dict[str, StreamPublisher] = Field(default_factory=dict)


class StartConversation(BaseModel):
    """Workflow input. Callers send `{"agent": ..., "metadata": {...}}`; the rest defaults."""

    agent: str = "claims-assistant"
    metadata: dict[str, Any] = Field(default_factory=dict)
    settings: ConversationSettings = Field(default_factory=ConversationSettings)
    carried: CarriedState | None = None
    stream: StreamState | None = None
    """The event stream's retained events and offsets, carried across continue-as-new;
    None on a first start."""


class ConversationSummary(BaseModel):
    """Workflow result, once the conversation has ended."""

    agent: str
    turn_count: int
    usage: Usage


# --- activity inputs and outputs --------------------------------------------------------


class DescribeAgentInput(BaseModel):
    agent: str
    conversation_id: str | None = None
    chain_id: str | None = None
    """Set on a conversation's first run: the activity refuses to start it as an empty
    chain if an earlier conversation under its ID has a transcript (it was terminated)."""


class HandoffSpec(BaseModel):
    """A handoff tool of a team member. The workflow switches the speaker; no activity runs."""

    target: str | None = None
    """AutoGen's `transfer_to_<target>`; None: LlamaIndex's `handoff(to_agent, reason)`."""
    message: str = ""
    """The tool result (AutoGen's `Handoff.message`; LlamaIndex's handoff output prompt,
    with `{to_agent}` and `{reason}`)."""
    allowed: list[str] = Field(default_factory=list)
    """LlamaIndex: the members `to_agent` may name (`can_handoff_to`)."""


class TeamSpec(BaseModel):
    """How a team's members take turns within one user turn."""

    mode: Literal["round_robin", "selector", "handoff", "random"]
    """random: AG2's `speaker_selection_method="random"`, seeded by the conversation and
    the turn, so a replay picks the same speakers."""
    members: list[str]
    root: str
    """The first speaker of a handoff team (and after a fresh start)."""
    termination_text: str | None = None
    """TextMentionTermination: stop when an agent's message contains this text."""
    termination_sources: list[str] | None = None
    """...only in messages of these members; None: any member."""
    max_messages: int | None = None
    """MaxMessageTermination: stop after this many messages, the user's message included."""
    max_turns: int | None = None
    """The team's max_turns: agent turns per user message."""
    stop_on_text_reply: bool = False
    """LlamaIndex AgentWorkflow: the user turn ends when the active agent answers in text."""
    allow_repeated_speaker: bool = False
    """Selector: the previous speaker may be chosen again."""
    transitions: dict[str, list[str]] | None = None
    """AG2's `allowed_or_disallowed_speaker_transitions`: who may speak after each member
    (a member missing here: anyone). None: no graph."""
    first_speakers: list[str] | None = None
    """AG2 group chats: who may speak first after the person's message. Set, a user turn
    starts afresh (AG2's round robin restarts after the person, who initiates each chat)."""


class AgentSpec(BaseModel):
    """What the workflow needs to know of an agent; the agent itself lives in the worker."""

    agent: str
    max_steps: int
    model: ModelPolicy
    tools: dict[str, ToolPolicy] = Field(default_factory=dict)
    default_tool: ToolPolicy = Field(default_factory=ToolPolicy)
    max_tool_iterations: int | None = None
    """AutoGen loop: tool rounds per turn, then reflection or summary; None: until text."""
    reflect_on_tool_use: bool = True
    tool_call_summary_format: str = "{result}"
    search_attributes: bool = False
    """The namespace has AgentName, ConversationStatus and TurnCount: keep them current."""
    handoffs: dict[str, HandoffSpec] = Field(default_factory=dict)
    """A team member's handoff tools, by tool name."""
    team: TeamSpec | None = None
    """Set for a team: the conversation's agent is the team, its members speak in turn."""
    members: dict[str, AgentSpec] = Field(default_factory=dict)
    """A team's members by name; each member's `agent` is the name its activities use."""

    def tool_policy(self, name: str) -> ToolPolicy:
        return self.tools.get(name, self.default_tool)


class SpeakerSelection(BaseModel):
    """AutoGen SelectorGroupChat's model-based choice among `candidates`."""

    candidates: list[str]
    previous: str | None = None


@cache
def _defaults(model: type[BaseModel]) -> dict[str, object]:
    """A model's fields whose default is None, a bool, a string or empty, and that default
    (computed once per model: `get_default` is slow enough to show in a profile)."""
    found: dict[str, object] = {}
    for name, field in model.model_fields.items():
        if field.is_required():
            continue
        default = field.get_default(call_default_factory=True)
        if isinstance(default, (type(None), bool, str, list, dict)):
            found[name] = default
    return found


def _without_defaults(data: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """`data` (one `model` serialized) without the fields that hold their default, which
    validation puts back. Only `model`'s own fields, not the values inside them (a
    structured output's nulls are the user's data)."""
    for name, default in _defaults(model).items():
        if name in data and data[name] == default:
            del data[name]
    return data


class _ActivityPayload(BaseModel):
    """An activity's input or result: it rides in the history of every turn, three or more
    times per turn, so it leaves out fields at their default (here and in the messages it
    carries), which any JSON reader gets back as the default. The messages that clients read
    (`ask`, `state`) keep every field."""

    _messages: ClassVar[tuple[str, ...]] = ()
    """Fields holding a Message, a SeqMessage or a list of them."""

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = _without_defaults(handler(self), type(self))
        for name in self._messages:
            value = data.get(name)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    nested = item.get("message", item) if "seq" in item else item
                    _without_defaults(nested, Message)
        return data


class ModelCallInput(_ActivityPayload):
    _messages = ("new_messages",)

    conversation_id: str
    chain_id: str
    agent: str
    turn: int
    step: int
    new_messages: list[SeqMessage]
    output_seq: int
    tools_enabled: bool = True
    """False for AutoGen's reflection call, made without tools."""
    select_speaker: SpeakerSelection | None = None
    """Set for a selector team: pick the next speaker with the team's model; nothing is
    written at `output_seq`, and the output message's content is the chosen name."""


class ModelCallOutput(_ActivityPayload):
    _messages = ("message",)

    message: Message
    usage: Usage = Field(default_factory=Usage)
    duplicate_message_id: str | None = None
    replayed: bool = False
    output: dict[str, Any] | None = None
    """The final answer's validated structured output, for agents that declare one."""
    terminate: bool = False
    """The agent's own termination rule held on this answer (AG2's `is_termination_msg`,
    evaluated in the activity): the turn ends with it, its tool calls are not run."""
    chain_id: str | None = None
    """Set when the transcript forked onto a chain of its own (a reset run found the
    abandoned branch's messages at its seqs); later calls and ledger keys use it."""


class ToolCallInput(_ActivityPayload):
    conversation_id: str
    chain_id: str
    agent: str
    turn: int
    key: str
    name: str
    arguments: str
    call_ids: list[str]
    result_seqs: list[int] = Field(default_factory=list)
    """The transcript seqs of the result messages, one per call ID: given, a database or
    external tool writes them in the transaction that records its result (`written`)."""


class ToolCallOutput(_ActivityPayload):
    status: ToolCallStatus
    content: str
    error_type: str | None = None
    written: bool = False
    """The result messages are in the transcript at `result_seqs` (the next model call
    need not carry them)."""
