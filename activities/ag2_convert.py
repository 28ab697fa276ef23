"""AG2 (AutoGen classic) model calls: the neutral transcript as OpenAI-style message dicts,
one call through the agent's own `OpenAIWrapper`, and its termination rule."""

from __future__ import annotations

import asyncio
from typing import Any

import openai

from activities.convert import window_with_results
from agents.adapters.ag2 import AG2Client
from agents.definitions import AgentDefinition
from interface import Message, SeqMessage, ToolCall, Usage

__all__ = ["complete_ag2", "terminates", "to_ag2"]


def to_ag2(system_message: str, history: list[SeqMessage]) -> list[dict[str, Any]]:
    """The model's context as AG2 sends it: the system message, then the repaired window."""
    messages = [{"role": "system", "content": system_message}] if system_message else []
    return messages + [_to_dict(m) for m in window_with_results(history)]


async def complete_ag2(
    agent: AgentDefinition, history: list[SeqMessage], tools_enabled: bool
) -> tuple[Message, Usage]:
    """One model call through AG2's client (sync: it runs in a thread)."""
    client = agent.model_client
    assert isinstance(client, AG2Client)
    params: dict[str, Any] = {"messages": to_ag2(agent.system_message, history), "cache": None}
    if tools_enabled and agent.tools:
        params["tools"] = [_tool(t.schema) for t in agent.tools]
    response = await asyncio.to_thread(_create, client, params)
    extracted = client.wrapper.extract_text_or_completion_object(response)[0]
    usage = getattr(response, "usage", None)
    return _from_extracted(extracted, agent.name), Usage(
        prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
    )


def terminates(agent: AgentDefinition, message: Message) -> bool:
    """The executor's `is_termination_msg` on the answer, as AG2 hands it the message."""
    client = agent.model_client
    if not isinstance(client, AG2Client) or client.is_termination_msg is None:
        return False
    received: dict[str, Any] = {
        "content": message.content if message.content or not message.tool_calls else None,
        "role": "user",  # how the receiving agent stores another agent's message
        "name": client.agent_name,
    }
    if message.tool_calls:
        received["tool_calls"] = [_call(c) for c in message.tool_calls]
    return bool(client.is_termination_msg(received))


def _create(client: AG2Client, params: dict[str, Any]) -> Any:
    try:
        return client.wrapper.create(**params)
    except ValueError as exc:
        # AG2 replaces a 400 about the agent's name with a ValueError; keep the HTTP error
        if isinstance(exc.__context__, openai.APIStatusError):
            raise exc.__context__ from None
        raise


def _from_extracted(extracted: Any, source: str) -> Message:
    if extracted is None or isinstance(extracted, str):
        return Message(role="assistant", content=extracted or "", source=source)
    found = extracted.model_dump() if hasattr(extracted, "model_dump") else dict(extracted)
    calls = [
        ToolCall(
            id=c.get("id") or f"call_{i}",
            name=c["function"]["name"],
            arguments=c["function"].get("arguments") or "{}",
        )
        for i, c in enumerate(found.get("tool_calls") or [])
    ]
    content = found.get("content") or ""
    return Message(role="assistant", content=content, tool_calls=calls, source=source)


def _to_dict(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [_call(c) for c in message.tool_calls],
        }
    return {"role": message.role, "content": message.content}


def _call(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def _tool(schema: Any) -> dict[str, Any]:
    return {"type": "function", "function": dict(schema)}
