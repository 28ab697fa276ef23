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

from interface import Message, SeqMessage, ToolCall

MISSING_RESULT = '{"error": "no_result", "message": "no result was recorded for this call"}'


def to_autogen(system_message: str, history: list[SeqMessage], agent: str) -> list[LLMMessage]:
    """The model's context: the system message, then the transcript window, repaired so
    that every tool call has a result and the window starts at a user message."""
    messages: list[LLMMessage] = [SystemMessage(content=system_message)] if system_message else []
    window = _from_first_user_message([item.message for item in history])
    for index, message in enumerate(window):
        if message.role == "tool":
            continue  # folded into the assistant message's result group below
        messages.append(_to_autogen_one(message, agent))
        if message.tool_calls:
            messages.append(_results_for(message, _following_tool_messages(window, index)))
    return messages


def from_create_result(result: CreateResult, agent: str) -> Message:
    if isinstance(result.content, str):
        return Message(role="assistant", content=result.content, source=agent)
    calls = [
        ToolCall(id=c.id or f"call_{i}", name=c.name, arguments=_text(c.arguments))
        for i, c in enumerate(result.content)
    ]
    return Message(role="assistant", content=result.thought or "", tool_calls=calls, source=agent)


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


def _results_for(
    assistant: Message, tool_messages: list[Message]
) -> FunctionExecutionResultMessage:
    by_id = {m.tool_call_id: m for m in tool_messages}
    results = []
    for call in assistant.tool_calls:
        found = by_id.get(call.id)
        results.append(
            FunctionExecutionResult(
                content=found.content if found else MISSING_RESULT,
                name=call.name,
                call_id=call.id,
                is_error=found.is_error if found else True,
            )
        )
    return FunctionExecutionResultMessage(content=results)


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
