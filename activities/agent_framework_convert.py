"""Conversion between the neutral `interface.Message` and Agent Framework messages, and one
model call through an Agent Framework chat client."""

from __future__ import annotations

import json
from typing import Any

from agent_framework import ChatResponse, Content, FunctionTool, ResponseStream
from agent_framework import Message as AFMessage

from activities.convert import window_with_results
from activities.streaming import TextSink, text_sink
from agents.adapters.agent_framework import AgentFrameworkModel
from agents.definitions import AgentDefinition
from agents.tools import Tool
from interface import Message, SeqMessage, ToolCall, Usage

__all__ = [
    "complete_agent_framework",
    "message_from_agent_framework",
    "message_to_agent_framework",
    "to_agent_framework",
]


async def complete_agent_framework(
    agent: AgentDefinition, history: list[SeqMessage], tools_enabled: bool
) -> tuple[Message, Usage]:
    """One model round through the agent's own chat client (its tool loop is off)."""
    model = agent.model_client
    assert isinstance(model, AgentFrameworkModel)
    options: dict[str, Any] = {**model.options, "instructions": agent.system_message or None}
    if agent.tools:
        options["tools"] = [_declaration(t) for t in agent.tools]
        # agent_framework's last call after max_iterations: the tools shown, none chosen
        options["tool_choice"] = "auto" if tools_enabled else "none"
    messages, sink = to_agent_framework(history), text_sink()
    if sink is None:
        response = await model.client.get_response(messages, options=options)
    else:
        response = await _streamed(
            model.client.get_response(messages, stream=True, options=options), sink
        )
    return message_from_agent_framework(response, agent.name), usage_of(response)


async def _streamed(stream: ResponseStream[Any, ChatResponse], sink: TextSink) -> ChatResponse:
    """The client's streaming response: each update's text to `sink`, then the response MAF
    assembles from the updates (function calls from their deltas, usage from the last)."""
    async for update in stream:
        if update.text:
            await sink.text(update.text)
    return await stream.get_final_response()


def to_agent_framework(history: list[SeqMessage]) -> list[AFMessage]:
    """The repaired transcript window (every tool call has a result), as the client's
    messages; the instructions travel as the `instructions` option, as the Agent sends them."""
    return [message_to_agent_framework(m) for m in window_with_results(history)]


def message_to_agent_framework(message: Message) -> AFMessage:
    if message.role == "tool":
        result = Content.from_function_result(message.tool_call_id or "", result=message.content)
        return AFMessage("tool", [result])
    contents = [Content.from_text(message.content)] if message.content else []
    contents += [
        Content.from_function_call(call_id=c.id, name=c.name, arguments=c.arguments)
        for c in message.tool_calls
    ]
    return AFMessage(message.role, contents)


def message_from_agent_framework(response: ChatResponse, source: str) -> Message:
    """The response's text and function calls as one assistant message."""
    contents = [c for m in response.messages for c in m.contents]
    calls = [
        ToolCall(id=c.call_id or f"call_{i}", name=c.name or "", arguments=_text(c.arguments))
        for i, c in enumerate(c for c in contents if c.type == "function_call")
    ]
    text = "".join(c.text or "" for c in contents if c.type == "text")
    return Message(role="assistant", content=text, tool_calls=calls, source=source)


def usage_of(response: ChatResponse) -> Usage:
    details = response.usage_details or {}
    return Usage(
        prompt_tokens=int(details.get("input_token_count") or 0),
        completion_tokens=int(details.get("output_token_count") or 0),
    )


def _declaration(tool: Tool) -> FunctionTool:
    """A stand-in carrying only the tool's schema: tools run in the tool activity."""
    return FunctionTool(
        name=tool.name, description=tool.description, input_model=dict(tool.schema["parameters"])
    )


def _text(arguments: object) -> str:
    if arguments is None:
        return "{}"
    return arguments if isinstance(arguments, str) else json.dumps(arguments)
