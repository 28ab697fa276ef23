"""Conversion between the neutral `interface.Message` and AutoGen's LLM message types."""

from __future__ import annotations

from autogen_core import FunctionCall
from autogen_core.models import (
    AssistantMessage,
    CreateResult,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    SystemMessage,
    UserMessage,
)

from activities.memo import ByObject
from interface import Message, SeqMessage, ToolCall

MISSING_RESULT = '{"error": "no_result", "message": "no result was recorded for this call"}'


def window_with_results(history: list[SeqMessage]) -> list[Message]:
    """The transcript window from its first user message, with exactly one result after
    every tool call (a synthetic error where none was recorded), in call order."""
    window = _from_first_user_message([item.message for item in history])
    repaired: list[Message] = []
    for index, message in enumerate(window):
        if message.role == "tool":
            continue  # placed right after the call it answers, below
        repaired.append(message)
        results = {m.tool_call_id: m for m in _following_tool_messages(window, index)}
        repaired += [results.get(call.id) or _missing(call) for call in message.tool_calls]
    return repaired


def to_autogen(system_message: str, history: list[SeqMessage], agent: str) -> list[LLMMessage]:
    """The model's context: the system message, then the repaired transcript window."""
    messages: list[LLMMessage] = [SystemMessage(content=system_message)] if system_message else []
    return messages + messages_to_autogen(window_with_results(history), agent)


def messages_to_autogen(messages: list[Message], agent: str) -> list[LLMMessage]:
    """Neutral messages to AutoGen's; consecutive tool results become one result message."""
    converted: list[LLMMessage] = []
    for message in messages:
        if message.role != "tool":
            converted.append(_converted(message, agent))
            continue
        result = _converted_result(message)
        if converted and isinstance(converted[-1], FunctionExecutionResultMessage):
            converted[-1].content.append(result)
        else:
            converted.append(FunctionExecutionResultMessage(content=[result]))
    return converted


def messages_from_autogen(messages: list[LLMMessage]) -> list[Message]:
    """AutoGen's messages to neutral ones: the inverse of `messages_to_autogen`."""
    converted: list[Message] = []
    for message in messages:
        if isinstance(message, FunctionExecutionResultMessage):
            converted += [
                Message(
                    role="tool",
                    content=r.content,
                    tool_call_id=r.call_id,
                    name=r.name,
                    is_error=bool(r.is_error),
                )
                for r in message.content
            ]
        elif isinstance(message, SystemMessage):
            converted.append(Message(role="system", content=message.content))
        elif isinstance(message, UserMessage):
            content = message.content if isinstance(message.content, str) else ""
            converted.append(Message(role="user", content=content, source=message.source))
        else:
            converted.append(_assistant(message.content, message.thought, message.source))
    return converted


def from_create_result(result: CreateResult, agent: str) -> Message:
    return _assistant(result.content, result.thought, agent)


def _assistant(content: str | list[FunctionCall], thought: str | None, source: str) -> Message:
    if isinstance(content, str):
        return Message(role="assistant", content=content, source=source)
    calls = [
        ToolCall(id=c.id or f"call_{i}", name=c.name, arguments=_text(c.arguments))
        for i, c in enumerate(content)
    ]
    return Message(role="assistant", content=thought or "", tool_calls=calls, source=source)


def _to_autogen_one(message: Message, agent: str) -> LLMMessage:
    if message.role == "system":
        return SystemMessage(content=message.content)
    if message.role == "user":
        return UserMessage(content=message.content, source=message.source or "user")
    if message.tool_calls:
        calls = [
            FunctionCall(id=c.id, name=c.name, arguments=c.arguments) for c in message.tool_calls
        ]
        return AssistantMessage(
            content=calls, thought=message.content or None, source=message.source or agent
        )
    return AssistantMessage(content=message.content, source=message.source or agent)


def _result(message: Message) -> FunctionExecutionResult:
    return FunctionExecutionResult(
        content=message.content,
        name=message.name or "",
        call_id=message.tool_call_id or "",
        is_error=message.is_error,
    )


_converted = ByObject[Message, LLMMessage](_to_autogen_one)
"""Each window message validated into AutoGen's type once (activities.memo)."""
_converted_result = ByObject[Message, FunctionExecutionResult](_result)


def _missing(call: ToolCall) -> Message:
    return Message(
        role="tool", content=MISSING_RESULT, tool_call_id=call.id, name=call.name, is_error=True
    )


def _following_tool_messages(window: list[Message], index: int) -> list[Message]:
    found = []
    for message in window[index + 1 :]:
        if message.role != "tool":
            break
        found.append(message)
    return found


def _from_first_user_message(messages: list[Message]) -> list[Message]:
    for index, message in enumerate(messages):
        if message.role == "user":
            return messages[index:]
    return []


def _text(arguments: object) -> str:
    return arguments if isinstance(arguments, str) else str(arguments)
