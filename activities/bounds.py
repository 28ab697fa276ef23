"""Bounds on what the activities put into workflow history: replies, tool calls, results,
failure messages.

A hostile or runaway model, or a tool with a huge answer, must not produce a payload over
Temporal's 2 MB limit: that would fail the call on every retry, or, as the next call's
input, fail the workflow task on every attempt. Text that enters history is cut here, with
a `... [truncated N characters]` marker; the SQL transcript keeps the full text.
"""

from __future__ import annotations

import json
import re

from temporalio import activity

from interface import Message, ToolCall
from interface.secrets import redact_known

__all__ = [
    "MAX_ARGUMENT_BYTES",
    "MAX_ERROR_CHARS",
    "MAX_NAME_CHARS",
    "MAX_REPLY_BYTES",
    "MAX_RESULT_BYTES",
    "MAX_TOOL_CALLS",
    "bounded",
    "clip",
    "error_text",
    "scrub",
    "storable",
]

MAX_REPLY_BYTES = 32_000
"""The model's text as it enters workflow history and the turn result, as UTF-8 JSON (32,000
ASCII characters); longer text is cut with a `... [truncated N characters]` marker. The SQL
transcript, and so the model's later context, keeps the full text."""
MAX_TOOL_CALLS = 50
"""Tool calls run per model response; the model's later context shows an error result
(`no_result`) for each call beyond it. With `MAX_RESULT_BYTES` per result, one model call's
input stays under Temporal's 2 MB payload limit."""
MAX_ARGUMENT_BYTES = 16_000
"""Longer tool-call arguments are cut, so they no longer parse and the tool activity
answers `invalid_json`."""
MAX_NAME_CHARS = 200
"""Tool names and call IDs, which the model chooses, are cut to this."""
MAX_RESULT_BYTES = 32_000
"""A tool result's bound as UTF-8 JSON text (32,000 ASCII characters; fewer when they need
escaping or several bytes). A model call's input carries up to `MAX_TOOL_CALLS` (50)
results, which must fit Temporal's 2 MB payload limit together. Longer results are cut with
a `... [truncated N characters]` marker; the ledger records the cut result, the one the
model saw, so a retry returns exactly that."""
MAX_ERROR_CHARS = 1_000
"""An activity failure's message, as history and the Web UI show it."""

_SURROGATE = re.compile("[\ud800-\udfff]")
_SECRET = re.compile(
    r"(sk-[A-Za-z0-9_\-*]{4,}|Bearer\s+\S+|(?<=[?&])(?:api[-_]?key|key|token)=[^&\s'\"]+)",
    re.IGNORECASE,
)


def bounded(message: Message) -> Message:
    """The model's message as it may enter workflow history (see the module docstring)."""
    if len(message.tool_calls) > MAX_TOOL_CALLS:
        activity.logger.warning(
            "model asked for %d tool calls; running the first %d",
            len(message.tool_calls),
            MAX_TOOL_CALLS,
        )
    calls = [
        ToolCall(
            id=clip(call.id, MAX_NAME_CHARS),
            name=call.name[:MAX_NAME_CHARS],
            arguments=clip(call.arguments, MAX_ARGUMENT_BYTES),
        )
        for call in message.tool_calls[:MAX_TOOL_CALLS]
    ]
    content = clip(message.content, MAX_REPLY_BYTES)
    thought = clip(message.thought, MAX_REPLY_BYTES) if message.thought else message.thought
    return message.model_copy(update={"content": content, "tool_calls": calls, "thought": thought})


def clip(text: str, max_bytes: int) -> str:
    """`text` if its JSON encoding fits in `max_bytes`, else its longest prefix that fits
    with a `... [truncated N characters]` marker. Unpaired surrogates, which no payload can
    carry, become U+FFFD."""
    head = _SURROGATE.sub("\ufffd", text[:max_bytes])  # a character takes a byte or more
    if len(text) <= max_bytes and (len(head) * 6 + 2 <= max_bytes or _json_size(head) <= max_bytes):
        return head
    budget = max_bytes - 40  # room for the marker
    low, high = 0, min(len(head), budget)
    while low < high:  # the longest prefix within the budget
        middle = (low + high + 1) // 2
        if _json_size(head[:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    return head[:low] + f"... [truncated {len(text) - low} characters]"


def storable(text: str) -> str:
    """`text` for a SQL text column: PostgreSQL text cannot hold NUL, and Temporal accepts a
    workflow ID (our conversation ID) or a message ID with one."""
    return text.replace("\x00", "\ufffd")


def scrub(text: str) -> str:
    """`text` without the configured secrets (interface.secrets) or anything key-like: API
    keys, bearer tokens, `?key=` query values."""
    return _SECRET.sub("[redacted]", redact_known(text))


def error_text(text: str) -> str:
    """A failure message for history: scrubbed, then cut to `MAX_ERROR_CHARS`."""
    text = _SURROGATE.sub("\ufffd", scrub(text))
    if len(text) <= MAX_ERROR_CHARS:
        return text
    keep = MAX_ERROR_CHARS - 40  # room for the marker
    return text[:keep] + f"... [truncated {len(text) - keep} characters]"


def _json_size(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode())
