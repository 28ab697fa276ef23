"""The fake endpoint refuses what the real API refuses, with the real API's errors."""

from __future__ import annotations

import time

import openai
import pytest

from support.fake_openai import API_KEY, FakeOpenAI, error, rate_limited, serving, text, tool_call

CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def client(fake: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(api_key=API_KEY, base_url=fake.url, max_retries=0)


def ask(fake: FakeOpenAI, messages: list[dict], **extra: object) -> str | None:
    response = client(fake).chat.completions.create(model="gpt-4o-mini", messages=messages, **extra)
    return response.choices[0].message.content


def test_a_prompt_over_the_window_is_context_length_exceeded() -> None:
    with serving(context_window=200) as fake:
        fake.script = [text("fits")]
        assert ask(fake, [{"role": "user", "content": "short"}]) == "fits"
        with pytest.raises(openai.BadRequestError) as raised:
            ask(fake, [{"role": "user", "content": "claim " * 300}])
    assert raised.value.code == "context_length_exceeded"
    assert "maximum context length is 200 tokens" in raised.value.message
    assert fake.prompt_tokens[1] > 300


def test_a_tool_message_must_answer_the_call_before_it() -> None:
    orphan = [
        {"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "x", "content": "r"},
    ]
    unanswered = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "user", "content": "and?"},
    ]
    answered = [*unanswered[:2], {"role": "tool", "tool_call_id": "call_1", "content": "r"}]
    with serving() as fake:
        fake.script = [text("ok")]
        for messages, words in ((orphan, "must be a response"), (unanswered, "call_1")):
            with pytest.raises(openai.BadRequestError) as raised:
                ask(fake, messages)
            assert words in raised.value.message and raised.value.code is None
        assert ask(fake, answered) == "ok"  # the refusals did not use up the script


def test_names_must_match_the_pattern() -> None:
    tool = {"type": "function", "function": {"name": "bad name", "parameters": {}}}
    with serving() as fake:
        with pytest.raises(openai.BadRequestError) as named:
            ask(fake, [{"role": "user", "content": "hi", "name": "a b"}])
        with pytest.raises(openai.BadRequestError) as tooled:
            ask(fake, [{"role": "user", "content": "hi"}], tools=[tool])
    assert named.value.code == tooled.value.code == "invalid_value"


def test_rate_limit_asks_for_a_retry_after() -> None:
    with serving() as fake:
        fake.script = [rate_limited(3), tool_call()]
        with pytest.raises(openai.RateLimitError) as raised:
            ask(fake, [{"role": "user", "content": "hi"}])
    assert raised.value.response.headers["retry-after"] == "3"


def stream(fake: FakeOpenAI, messages: list[dict], **extra: object) -> list:
    chunks = client(fake).chat.completions.create(
        model="gpt-4o-mini", messages=messages, stream=True, **extra
    )
    return list(chunks)


def test_a_streamed_reply_comes_token_by_token_with_usage_last() -> None:
    words = "Your claim 123 is approved; the payment goes out on Friday."
    with serving(token_interval=0.02) as fake:
        fake.script = [text(words), text(words)]
        chunks = stream(
            fake, [{"role": "user", "content": "hi"}], stream_options={"include_usage": True}
        )
        started = time.monotonic()
        assert ask(fake, [{"role": "user", "content": "hi"}]) == words
        waited = time.monotonic() - started  # a plain reply comes when its last token would
    deltas = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(deltas) > 10 and "".join(deltas) == words
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 18
    times = fake.token_times[0]
    assert len(times) == len(deltas)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.018 and times[-1] - times[0] < 0.02 * len(gaps) + 0.5
    assert waited >= 0.02 * len(gaps)


def test_streamed_tool_calls_arrive_as_fragments_by_index() -> None:
    first = tool_call(arguments='{"claim_id": 123, "note": "water damage"}')
    second = {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "{}"}}
    first[2]["choices"][0]["message"]["tool_calls"].append(second)
    with serving() as fake:
        fake.script = [first]
        chunks = stream(fake, [{"role": "user", "content": "hi"}])
    calls: dict[int, dict] = {}
    for chunk in chunks:
        assert chunk.usage is None  # not asked for
        for call in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(
                call.index, {"id": call.id, "name": call.function.name, "args": []}
            )
            entry["args"].append(call.function.arguments)
    assert calls[0]["id"] == "call_1" and calls[0]["name"] == "get_claim_status"
    assert len(calls[0]["args"]) > 5
    assert "".join(calls[0]["args"]) == '{"claim_id": 123, "note": "water damage"}'
    assert calls[1]["id"] == "call_2" and "".join(calls[1]["args"]) == "{}"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_a_streamed_request_is_refused_before_the_stream_starts() -> None:
    with serving(context_window=200) as fake:
        fake.script = [rate_limited(2), text("fits")]
        with pytest.raises(openai.RateLimitError) as limited:
            stream(fake, [{"role": "user", "content": "hi"}])
        with pytest.raises(openai.BadRequestError) as long:
            stream(fake, [{"role": "user", "content": "claim " * 300}])
        orphan = [
            {"role": "user", "content": "hi"},
            {"role": "tool", "tool_call_id": "x", "content": "r"},
        ]
        with pytest.raises(openai.BadRequestError):
            stream(fake, orphan)
        fake.script.insert(0, error(503))
        with pytest.raises(openai.InternalServerError):
            stream(fake, [{"role": "user", "content": "hi"}])
        assert (
            "".join(
                c.choices[0].delta.content or ""
                for c in stream(fake, [{"role": "user", "content": "hi"}])
            )
            == "fits"
        )
    assert limited.value.response.headers["retry-after"] == "2"
    assert long.value.code == "context_length_exceeded"
    assert len(fake.token_times) == 1  # only the accepted request streamed
