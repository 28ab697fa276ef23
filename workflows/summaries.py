"""What a tool call looks like outside the model: its Web UI summary, its record, its message.

Pure functions; no Temporal import. Summaries mask secret-looking arguments, because the
Web UI and `temporal workflow show` display them to anyone who can read the namespace.
"""

from __future__ import annotations

import json
import re

from interface import ErrorType, Message, ToolCall, ToolCallOutput, ToolCallRecord

__all__ = [
    "RECORD_TEXT_LIMIT",
    "STATE_TEXT_LIMIT",
    "SUMMARY_LIMIT",
    "canonical",
    "json_object",
    "record",
    "shorten",
    "tool_failure",
    "tool_interrupted",
    "tool_message",
    "tool_summary",
]

SUMMARY_LIMIT = 100
SUMMARY_VALUE_LIMIT = 30
_SECRET_NAME = re.compile(r"key|token|passw|secret|auth|credential", re.I)
_SECRET_VALUE = re.compile(r"sk-[A-Za-z0-9_\-]{4,}|Bearer\s+\S+", re.I)
STATE_TEXT_LIMIT = 2_000
RECORD_TEXT_LIMIT = STATE_TEXT_LIMIT
"""Tool arguments and results in turn results, `state` and carried state are cut to this;
the tool messages sent to the model and the SQL transcript keep the activity's output."""


def tool_summary(call: ToolCall) -> str:
    """The tool activity's summary in the Web UI, `call tool: name(arg=value, ...)`: values
    shortened, arguments with secret-looking names masked, at most SUMMARY_LIMIT characters."""
    try:
        arguments = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError:
        arguments = None
    if isinstance(arguments, dict):
        shown = ", ".join(f"{name}={_summary_value(name, v)}" for name, v in arguments.items())
    else:
        shown = "…"  # not a JSON object: the tool activity rejects it
    return shorten(f"call tool: {call.name}({shown})", SUMMARY_LIMIT)


def _summary_value(name: str, value: object) -> str:
    if _SECRET_NAME.search(str(name)):
        return "***"
    if isinstance(value, dict):
        value = {k: "***" if _SECRET_NAME.search(str(k)) else v for k, v in value.items()}
    if isinstance(value, str):
        shortened = shorten(_SECRET_VALUE.sub("***", value), SUMMARY_VALUE_LIMIT)
        return json.dumps(shortened, ensure_ascii=False)
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return shorten(_SECRET_VALUE.sub("***", text), SUMMARY_VALUE_LIMIT)


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def canonical(arguments: str) -> str:
    """The arguments' JSON with sorted keys, so identical calls compare equal."""
    try:
        return json.dumps(json.loads(arguments), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return arguments


def json_object(arguments: str) -> dict[str, object]:
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def record(
    turn: int, call: ToolCall, out: ToolCallOutput, speaker: str | None = None
) -> ToolCallRecord:
    return ToolCallRecord(
        id=call.id,
        name=call.name,
        arguments=shorten(call.arguments, RECORD_TEXT_LIMIT),
        status=out.status,
        result=shorten(out.content, RECORD_TEXT_LIMIT),
        turn=turn,
        speaker=speaker,
    )


def tool_message(call: ToolCall, out: ToolCallOutput) -> Message:
    return Message(
        role="tool",
        content=out.content,
        tool_call_id=call.id,
        name=call.name,
        is_error=out.status != "ok",
    )


def tool_failure(error_type: str, message: str) -> ToolCallOutput:
    """A tool activity that failed for good: the model sees the error's type and message."""
    content = json.dumps({"error": error_type, "message": message})
    return ToolCallOutput(status="error", content=content, error_type=error_type)


def tool_interrupted(unknown: bool = False) -> ToolCallOutput:
    """A call that `cancel_turn` stopped: it had no effect, or (`unknown`: an external
    effect stopped midway) nobody knows whether it happened; it is never run again."""
    if unknown:
        error_type = ErrorType.OUTCOME_UNKNOWN.value
        message = (
            "The turn was interrupted while this call ran; whether its effect happened is "
            "not known. It is not run again; a person must check."
        )
        status = "unknown"
    else:
        error_type = ErrorType.TURN_INTERRUPTED.value
        message = "The turn was interrupted before this call finished; it had no effect."
        status = "error"
    content = json.dumps({"error": error_type, "message": message})
    return ToolCallOutput.model_validate(
        {"status": status, "content": content, "error_type": error_type}
    )
