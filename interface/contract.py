"""The wire contract: every name a client in any language, or the Web UI, can see.

Workflow, signal, update, query and activity names, and the `ApplicationError` types that
reach clients. The workflow, the activities, the gateway, the CLI and the tests use these
constants; nothing else spells them. Clients match on types, never on message text.

Error types a client may see:

MessageRejected        the `ask` validator refused the message (empty text, too long, bad ID);
                       the update is rejected before it enters history
ConversationEnding     the `ask` validator: `end` was signalled, no new turns are taken
BacklogFull            the `ask` validator: the queue of waiting turns is at its bound
                       (`max_queued_turns`, `max_queued_chars`); send again once turns drain
ConversationClosed     the conversation was terminated, cancelled or timed out; it does not
                       start again under its ID as an empty conversation (a new ID does)
UnknownAgent           the conversation names an agent no worker has; the workflow fails with
                       it, and asks that were waiting fail with it too
EncryptionRequired     with encryption on, the worker refused a message that arrived unencrypted:
                       an `ask` is rejected before it enters history, a signal is dropped
InvalidConversationId  the workflow ID is longer than `MAX_CONVERSATION_ID_CHARS`; the workflow
                       fails with it at once, and asks are rejected with it

Error types of a failed tool call (`ToolCallOutput.error_type`, and `"error"` in the result's JSON):

ToolInputError         arguments the tool cannot use; the model sees the message
ToolBusinessError      a business rule refused the call; the model sees the message
OutcomeUnknown         the call may or may not have happened (a crash mid-call on a tool that
                       cannot dedupe downstream, or an external tool interrupted by
                       `cancel_turn` while it ran); never re-run, surfaced to a person
TurnInterrupted        `cancel_turn` stopped the call before it finished (or before it ran); it
                       had no effect

Error types of a failed turn (`TurnResult.error.type`, status "failed"):

ModelHTTP<status>      the model endpoint's status (a 4xx at once, a 429/5xx after retries)
ContextLengthExceeded  one message does not fit the model's context window
ModelUnavailable       the model endpoint could not be reached
ModelResponseInvalid   the endpoint's answer could not be parsed (after 3 attempts)

The type of an interrupted turn (`TurnResult.error.type`, status "interrupted"):

TurnInterrupted        the `cancel_turn` update stopped the turn; `error.message` is its reason

Activity failure types, seen in history and the Web UI (retried or not as marked):

LeaseHeld              another attempt holds the tool call's claim; retried after its lease
LeaseLost              this attempt's claim was taken over; retried
LedgerKeyConflict      one ledger key was used for two different calls; not retried
ModelUnavailable       the model endpoint could not be reached; retried
ModelResponseInvalid   the model's answers could not be used (a ReAct agent's text that
                       never parsed within its step limit); not retried
ConfigurationError     the agent's wiring is wrong; not retried
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "ACTIVITY_CALL_TOOL",
    "ACTIVITY_DESCRIBE_AGENT",
    "ACTIVITY_MODEL_CALL",
    "CLIENT_ERROR_TYPES",
    "DEFAULT_TASK_QUEUE",
    "EVENTS_TOPIC",
    "ErrorType",
    "MCP_IDEMPOTENCY_META_KEY",
    "MAX_CONVERSATION_ID_CHARS",
    "QUERY_STATE",
    "SIGNAL_DECIDE_TOOL",
    "SIGNAL_END",
    "SIGNAL_USER_MESSAGE",
    "UPDATE_ASK",
    "UPDATE_CANCEL_TURN",
    "WORKFLOW_TYPE",
]

WORKFLOW_TYPE: Final = "AgentConversation"
DEFAULT_TASK_QUEUE: Final = "agent-conversations"
MAX_CONVERSATION_ID_CHARS: Final = 200
"""The longest conversation ID (workflow ID) our clients, the CLI and the gateway start. The
database columns hold up to 1,000 (Temporal's own limit), so a longer ID that another SDK
starts still works; this bound keeps IDs, and the ledger keys built from them, short."""

SIGNAL_USER_MESSAGE: Final = "user_message"
SIGNAL_DECIDE_TOOL: Final = "decide_tool"
SIGNAL_END: Final = "end"
UPDATE_ASK: Final = "ask"
UPDATE_CANCEL_TURN: Final = "cancel_turn"
QUERY_STATE: Final = "state"

EVENTS_TOPIC: Final = "events"
"""The conversation's durable events (interface.events.ConversationEvent) on its Workflow
Stream (`temporalio.contrib.workflow_streams`): clients poll the update
`__temporal_workflow_stream_poll` with `{"topics": ["events"], "from_offset": N}` (or the
query of that name, which answers at once), and `__temporal_workflow_stream_offset` gives
the offset of now. Text deltas are not on it: they go through the database (text_deltas)."""

# Versioned: a change of input or output that old histories cannot decode gets a new name.
ACTIVITY_DESCRIBE_AGENT: Final = "agent.describe-v1"
ACTIVITY_MODEL_CALL: Final = "agent.model_call-v1"
ACTIVITY_CALL_TOOL: Final = "agent.call_tool-v1"

# The `_meta` key of an MCP `tools/call` carrying the call's idempotency key (the ledger's
# key): a server that dedupes by it makes a retried side effect happen once.
MCP_IDEMPOTENCY_META_KEY: Final = "io.github.agent-conversations/idempotency-key"


class ErrorType(StrEnum):
    """`ApplicationError.type` values; the module docstring says where each appears."""

    MESSAGE_REJECTED = "MessageRejected"
    CONVERSATION_ENDING = "ConversationEnding"
    BACKLOG_FULL = "BacklogFull"
    CONVERSATION_CLOSED = "ConversationClosed"
    UNKNOWN_AGENT = "UnknownAgent"
    INVALID_CONVERSATION_ID = "InvalidConversationId"
    ENCRYPTION_REQUIRED = "EncryptionRequired"
    TOOL_INPUT = "ToolInputError"
    TOOL_BUSINESS = "ToolBusinessError"
    OUTCOME_UNKNOWN = "OutcomeUnknown"
    LEASE_HELD = "LeaseHeld"
    LEASE_LOST = "LeaseLost"
    LEDGER_KEY_CONFLICT = "LedgerKeyConflict"
    MODEL_UNAVAILABLE = "ModelUnavailable"
    CONTEXT_LENGTH_EXCEEDED = "ContextLengthExceeded"
    MODEL_RESPONSE_INVALID = "ModelResponseInvalid"
    TURN_INTERRUPTED = "TurnInterrupted"
    CONFIGURATION = "ConfigurationError"


CLIENT_ERROR_TYPES: Final = (
    ErrorType.MESSAGE_REJECTED,
    ErrorType.CONVERSATION_ENDING,
    ErrorType.BACKLOG_FULL,
    ErrorType.CONVERSATION_CLOSED,
    ErrorType.UNKNOWN_AGENT,
    ErrorType.INVALID_CONVERSATION_ID,
    ErrorType.ENCRYPTION_REQUIRED,
)
"""The types an `ask` can fail with; the README lists them for other-language clients."""
