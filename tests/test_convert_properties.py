"""Message conversion is lossless both ways, for every message type (hypothesis)."""

from __future__ import annotations

import json

from autogen_core.models import CreateResult, RequestUsage
from hypothesis import given, settings
from hypothesis import strategies as st
from llama_index.core.base.llms.types import ChatMessage, ChatResponse

from activities.convert import from_create_result, messages_from_autogen, messages_to_autogen
from activities.llamaindex_convert import message_from_llamaindex, message_to_llamaindex, usage_of
from interface import Message, ToolCall

names = st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True)
ids = st.from_regex(r"call_[A-Za-z0-9]{1,12}", fullmatch=True)
texts = st.text(max_size=200)
json_args = st.dictionaries(names, st.one_of(st.integers(), texts, st.booleans()), max_size=4).map(
    json.dumps
)
arguments = st.one_of(json_args, texts)  # raw model text, valid JSON or not


@st.composite
def exchanges(draw: st.DrawFn) -> list[Message]:
    """A user message, then either a text answer or tool calls with one result each."""
    user = Message(role="user", content=draw(texts), source="user")
    if draw(st.booleans()):
        return [user, Message(role="assistant", content=draw(texts), source="agent")]
    calls = draw(
        st.lists(
            st.builds(ToolCall, id=ids, name=names, arguments=arguments),
            min_size=1,
            max_size=4,
            unique_by=lambda c: c.id,
        )
    )
    assistant = Message(role="assistant", content=draw(texts), tool_calls=calls, source="agent")
    results = [
        Message(
            role="tool",
            content=draw(texts),
            tool_call_id=c.id,
            name=c.name,
            is_error=draw(st.booleans()),
        )
        for c in calls
    ]
    return [user, assistant, *results]


conversations = st.lists(exchanges(), min_size=1, max_size=5).map(
    lambda xs: [m for x in xs for m in x]
)


@settings(max_examples=150, deadline=None)
@given(conversations)
def test_autogen_round_trip(messages: list[Message]) -> None:
    system = [Message(role="system", content="be brief")]
    assert (
        messages_from_autogen(messages_to_autogen(system + messages, "agent")) == system + messages
    )


@settings(max_examples=150, deadline=None)
@given(conversations)
def test_llamaindex_round_trip(messages: list[Message]) -> None:
    back = [message_from_llamaindex(message_to_llamaindex(m), m.source) for m in messages]
    assert back == messages


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(
        texts,
        st.lists(
            st.builds(ToolCall, id=ids, name=names, arguments=arguments), min_size=1, max_size=3
        ),
    ),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)
def test_autogen_model_results_keep_calls_and_text(
    content: object, prompt: int, completion: int
) -> None:
    from autogen_core import FunctionCall

    raw = (
        content
        if isinstance(content, str)
        else [
            FunctionCall(id=c.id, name=c.name, arguments=c.arguments)
            for c in content  # type: ignore[attr-defined]
        ]
    )
    result = CreateResult(
        finish_reason="stop", content=raw, usage=RequestUsage(prompt, completion), cached=False
    )
    message = from_create_result(result, "agent")
    if isinstance(content, str):
        assert message.content == content and not message.tool_calls
    else:
        assert message.tool_calls == content


@given(
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.sampled_from(["raw-object", "raw-dict", "kwargs"]),
)
def test_llamaindex_usage_is_read_wherever_it_is(prompt: int, completion: int, where: str) -> None:
    counts = {"prompt_tokens": prompt, "completion_tokens": completion}

    class Raw:
        usage = type("Usage", (), counts)()

    response = ChatResponse(
        message=ChatMessage(role="assistant", content="x"),
        raw={"raw-object": Raw(), "raw-dict": {"usage": counts}}.get(where),
        additional_kwargs=counts if where == "kwargs" else {},
    )
    usage = usage_of(response)
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt, completion)
