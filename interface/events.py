"""A conversation's live events: what a client watching a turn sees, in order.

One flat model, so that a client in any language reads every event the same way: `type`
says which fields are set. The gateway serves them as Server-Sent Events (`event:` is the
type, `data:` the JSON, `id:` the event's offset, which a client sends back as
`Last-Event-ID` to get exactly what it missed); the Python client and the CLI read the same
objects.

Durable events (everything but `text` and `text_reset`) are published by the workflow and
survive restarts and continue-as-new. Text deltas come from the model activity while it
runs; a retried model call first sends `text_reset` for its step, and the client replaces
the partial message of that step with what follows. Nothing here is per token in history.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from interface.models import ToolCallStatus, TurnError, TurnResult, TurnStatus

__all__ = ["EVENT_TYPES", "ConversationEvent", "EventType", "turn_finished"]

EventType = Literal[
    "turn_accepted",  # a user turn was queued: message_id, turn (0 while it waits), text
    "turn_started",  # the turn began: message_id, turn
    "model_started",  # a model call began: turn, step, agent (the speaker in a team)
    "text",  # a delta of the reply being written: turn, step, attempt, text
    "text_reset",  # a retried model call restarts step `step`: drop its partial text
    "tool_started",  # a tool call began: turn, tool_call_id, name, arguments, agent
    "tool_finished",  # a tool call ended: turn, tool_call_id, name, status, result
    "approval_needed",  # a tool call waits for a person: turn, tool_call_id, name, arguments
    "approval_decided",  # turn, tool_call_id, status ("ok" approved, "denied")
    "turn_finished",  # the turn ended: message_id, turn, status, text (the reply), error
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]


class ConversationEvent(BaseModel):
    """One event of a conversation's stream; fields beyond `type` are set as `type` says."""

    type: EventType
    turn: int = 0
    message_id: str | None = None
    step: int | None = None
    attempt: int | None = None
    """`text`/`text_reset`: the model call's attempt; a new attempt restarts the step."""
    agent: str | None = None
    text: str | None = None
    """`text`: the delta; `turn_finished`: the whole reply; `turn_accepted`: the message."""
    tool_call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    status: TurnStatus | ToolCallStatus | None = None
    """`turn_finished`: the turn's status ("interrupted" when cancelled); `tool_finished`
    and `approval_decided`: the call's."""
    result: str | None = None
    """`tool_finished`: the tool's result, shortened as in `state`."""
    error: TurnError | None = None


def turn_finished(result: TurnResult) -> ConversationEvent:
    """A turn's `turn_finished` event, made of its result: the workflow publishes it, and
    the gateway makes it again for a turn that finished before the stream was read."""
    return ConversationEvent(
        type="turn_finished",
        turn=result.turn,
        message_id=result.message_id,
        status=result.status,
        text=result.reply,
        error=result.error,
    )
