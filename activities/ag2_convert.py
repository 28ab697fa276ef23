"""AG2 (AutoGen classic) model calls: the neutral transcript as OpenAI-style message dicts,
one call through the agent's own `OpenAIWrapper`, its termination rule, and a GroupChat's
`auto` speaker selection."""

from __future__ import annotations

import asyncio
from typing import Any

import openai

from activities.convert import window_with_results
from activities.provider_errors import provider_failures
from activities.streaming import TextSink, text_sink
from activities.teams import mentioned
from agents.adapters.ag2_client import AG2Client
from agents.definitions import AgentDefinition, TeamDefinition
from interface import Message, ModelCallOutput, SeqMessage, SpeakerSelection, ToolCall, Usage

__all__ = ["complete_ag2", "select_speaker_ag2", "terminates", "to_ag2"]


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
    sink = text_sink()
    if sink is None:
        response = await asyncio.to_thread(_create, client, params)
    else:
        response = await _streamed(client, params, sink)
    extracted = client.wrapper.extract_text_or_completion_object(response)[0]
    return _from_extracted(extracted, agent.name), _usage(response)


def terminates(agent: AgentDefinition, message: Message) -> bool:
    """The executor's `is_termination_msg` on the answer, as AG2 hands it the message."""
    client = agent.model_client
    if not isinstance(client, AG2Client) or client.is_termination_msg is None:
        return False
    return bool(client.is_termination_msg(_received(message, client.agent_name)))


def _received(message: Message, sender: str) -> dict[str, Any]:
    """The answer as the receiving agent stores it (AG2's `normilize_message_to_oai`): a
    call's content may be None and its role is assistant; a text is the sender's 'user'."""
    if message.tool_calls:
        return {
            "content": message.content or None,
            "tool_calls": [_call(c) for c in message.tool_calls],
            "role": "assistant",
        }
    return {"content": message.content, "role": "user", "name": sender}


def _create(client: AG2Client, params: dict[str, Any], stream: bool = False) -> Any:
    try:
        return (client.streaming_wrapper if stream else client.wrapper).create(**params)
    except ValueError as exc:
        # AG2 replaces a 400 about the agent's name with a ValueError; keep the HTTP error
        if isinstance(exc.__context__, openai.APIStatusError):
            raise exc.__context__ from None
        raise


async def _streamed(client: AG2Client, params: dict[str, Any], sink: TextSink) -> Any:
    """`OpenAIWrapper.create` with `stream=True` in its config: AG2 assembles the chunks
    into one ChatCompletion (tool calls from their deltas, usage from the last chunk) and
    sends each text delta to its IOStream as a `StreamEvent`; ours hands them to `sink`, in
    order. AG2 does not stream a structured output (`response_format`): no deltas then."""
    from autogen.events.client_events import StreamEvent
    from autogen.io import IOStream

    loop = asyncio.get_running_loop()
    deltas: asyncio.Queue[str | None] = asyncio.Queue()

    class Deltas:  # AG2's OutputStream/InputStream protocols
        def print(
            self, *objects: Any, sep: str = " ", end: str = "\n", flush: bool = False
        ) -> None:
            pass  # AG2's console output is not the reply

        def send(self, message: Any) -> None:
            if isinstance(message, StreamEvent) and message.content.content:  # type: ignore[attr-defined]
                loop.call_soon_threadsafe(deltas.put_nowait, message.content.content)  # type: ignore[attr-defined]

        def input(self, prompt: str = "", *, password: bool = False) -> str:
            raise RuntimeError("a model call does not ask for input")

    def create() -> Any:
        try:
            with IOStream.set_default(Deltas()):
                return _create(client, params, stream=True)
        finally:
            loop.call_soon_threadsafe(deltas.put_nowait, None)

    call = asyncio.ensure_future(asyncio.to_thread(create))
    try:
        while (delta := await deltas.get()) is not None:
            await sink.text(delta)
    except BaseException:
        # a cancelled call (or a failed sink) returns now; the thread cannot be interrupted,
        # so it ends on its own, its result or error dropped
        call.add_done_callback(lambda done: done.cancelled() or done.exception())
        raise
    return await call


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


async def select_speaker_ag2(
    agent: AgentDefinition, history: list[SeqMessage], selection: SpeakerSelection
) -> ModelCallOutput:
    """GroupChat's `auto` selection: AG2's prompts around the chat, one name expected;
    AG2's feedback on none or several, up to its attempts; then the next member in order."""
    client = agent.model_client
    assert isinstance(agent, TeamDefinition) and isinstance(client, AG2Client)
    assert client.selector is not None
    prompts, candidates, usage = client.selector, selection.candidates, Usage()
    names = str(candidates)
    messages: list[dict[str, Any]] = [
        {
            "role": "system",
            "content": prompts.message_template.format(
                roles=agent.roles(candidates), agentlist=names
            ),
        },
        *_chat_messages(history),
    ]
    if prompts.prompt_template is not None:
        prompt = prompts.prompt_template.replace("{agentlist}", names)
        messages.append({"role": prompts.role, "content": prompt})
    for _ in range(prompts.attempts):
        with provider_failures():
            response = await asyncio.to_thread(
                _create, client, {"messages": messages, "cache": None}
            )
        usage = usage.plus(_usage(response))
        answer = client.wrapper.extract_text_or_completion_object(response)[0]
        content = answer if isinstance(answer, str) else ""
        found = mentioned(content, candidates)
        if len(found) == 1:
            return _chosen(next(iter(found)), usage)
        feedback = (
            prompts.multiple_template
            if len(found) > 1
            else prompts.none_template.replace("{agentlist}", names)
        )
        messages += [
            {"role": "assistant", "content": content},
            {"role": "user", "content": feedback},
        ]
    return _chosen(_next_in_order(agent, selection), usage)


def _chat_messages(history: list[SeqMessage]) -> list[dict[str, Any]]:
    """The group's messages the selector reads: the person's and each member's text."""
    found = []
    for item in history:
        m = item.message
        if m.role == "user" or (m.role == "assistant" and m.content and not m.tool_calls):
            found.append({"role": "user", "content": m.content, "name": m.source or "user"})
    return found


def _next_in_order(agent: TeamDefinition, selection: SpeakerSelection) -> str:
    """AG2's fallback: the first candidate after the previous speaker in the members' order."""
    order = [m.name for m in agent.members]
    start = order.index(selection.previous) + 1 if selection.previous in order else 0
    for offset in range(len(order)):
        name = order[(start + offset) % len(order)]
        if name in selection.candidates:
            return name
    return selection.candidates[0]


def _chosen(name: str, usage: Usage) -> ModelCallOutput:
    return ModelCallOutput(message=Message(role="assistant", content=name), usage=usage)


def _usage(response: Any) -> Usage:
    usage = getattr(response, "usage", None)
    return Usage(
        prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
    )
