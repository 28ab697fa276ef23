"""The fake endpoint refuses what the real API refuses, with the real API's errors."""

from __future__ import annotations

import openai
import pytest

from support.fake_openai import API_KEY, FakeOpenAI, rate_limited, serving, text, tool_call

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
