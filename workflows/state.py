"""The conversation's state: one model that handlers mutate, queries read and
continue-as-new carries (its `carried` part). No Temporal import."""

from __future__ import annotations

from pydantic import BaseModel, Field

from interface import (
    AgentSpec,
    CarriedState,
    ConversationStatus,
    PendingApproval,
    StartConversation,
    ToolCallRecord,
    ToolDecision,
    TurnError,
    Usage,
    UserMessage,
)

__all__ = ["ConversationData", "TurnProgress"]


class TurnProgress(BaseModel):
    """Bookkeeping for the user turn in progress."""

    number: int
    message: UserMessage
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    steps: int = 0
    speaker: str | None = None
    """In a team: the member speaking now (after the turn: the last one)."""
    speakers: list[str] = Field(default_factory=list)
    handoff: tuple[str, str] | None = None
    """(target, message) of the speaking member's handoff."""
    resumed: int = 0
    """How many times this failed turn was resumed (`UserMessage.resume`); 0: a new turn."""
    interrupt: TurnError | None = None
    """Set by `cancel_turn`: the turn ends after the actions running now, `interrupted`."""


class ConversationData(BaseModel):
    """Everything the workflow knows of its conversation; `carried` outlives the run."""

    start: StartConversation
    conversation_id: str
    chain_id: str
    """The first run's ID: transcript rows and ledger keys of all runs hang on it."""
    carried: CarriedState
    """`carried.queue` is the live queue of user turns."""
    seen: set[str] = Field(default_factory=set)
    """Message IDs answered, running or queued: their repeats are answered from the record."""
    status: ConversationStatus = "idle"
    spec: AgentSpec | None = None
    turn: TurnProgress | None = None
    approvals: dict[str, PendingApproval] = Field(default_factory=dict)
    decisions: dict[str, ToolDecision] = Field(default_factory=dict)
    run_turns: int = 0
    indexed: bool = False
    """Keep the search attributes current (the namespace has them)."""
    upserted: tuple[str, int] | None = None
    tools_write_results: bool = False
    """Tool activities get their result messages' seqs and write them with their ledger
    row (the shell's patch `tool-results-written`): the next model call does not carry
    the results they wrote."""
