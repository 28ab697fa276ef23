"""Conversion between the neutral `interface.Message` and LlamaIndex chat messages."""

from __future__ import annotations

import json
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)

from activities.convert import window_with_results
from interface import Message, SeqMessage, ToolCall, Usage

ROLES = {
    "system": MessageRole.SYSTEM,
    "user": MessageRole.USER,
    "assistant": MessageRole.ASSISTANT,
    "tool": MessageRole.TOOL,
}


def to_llamaindex(system_message: str, history: list[SeqMessage]) -> list[ChatMessage]:
    """The model's context, repaired like AutoGen's: every tool call has a result."""
    messages = (
        [ChatMessage(role=MessageRole.SYSTEM, content=system_message)] if system_message else []
    )
    return messages + [message_to_llamaindex(m) for m in window_with_results(history)]


def message_to_llamaindex(message: Message) -> ChatMessage:
    extra: dict[str, Any] = {}
    if message.role == "tool":
        extra = {
            "tool_call_id": message.tool_call_id,
            "name": message.name,
            "is_error": message.is_error,
        }
    blocks: list[Any] = [TextBlock(text=message.content)] if message.content else []
    blocks += [
        ToolCallBlock(tool_call_id=c.id, tool_name=c.name, tool_kwargs=c.arguments)
        for c in message.tool_calls
    ]
    if message.message_id:
        extra["message_id"] = message.message_id
    return ChatMessage(role=ROLES[message.role], blocks=blocks, additional_kwargs=extra)


def message_from_llamaindex(message: ChatMessage, source: str | None = None) -> Message:
    extra = message.additional_kwargs
    calls = [
        ToolCall(id=b.tool_call_id or f"call_{i}", name=b.tool_name, arguments=_text(b.tool_kwargs))
        for i, b in enumerate(b for b in message.blocks if isinstance(b, ToolCallBlock))
    ]
    text = "".join(b.text for b in message.blocks if isinstance(b, TextBlock))
    role = {v: k for k, v in ROLES.items()}.get(message.role, "assistant")
    return Message(
        role=role,  # type: ignore[arg-type]
        content=text,
        tool_calls=calls,
        tool_call_id=extra.get("tool_call_id"),
        name=extra.get("name"),
        is_error=bool(extra.get("is_error", False)),
        message_id=extra.get("message_id"),
        source=source,
    )


def usage_of(response: ChatResponse) -> Usage:
    """Token counts wherever the LLM integration put them (raw usage or additional_kwargs)."""
    raw = getattr(response.raw, "usage", None) or (
        response.raw.get("usage") if isinstance(response.raw, dict) else None
    )
    source = raw if raw is not None else response.additional_kwargs
    read = (
        source.get
        if isinstance(source, dict)
        else lambda key, default=0: getattr(source, key, default)
    )
    return Usage(
        prompt_tokens=int(read("prompt_tokens", 0) or 0),
        completion_tokens=int(read("completion_tokens", 0) or 0),
    )


def _text(arguments: object) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)
