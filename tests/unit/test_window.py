"""The token-budget window (activities/window.py), without a server."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest
from autogen_ext.models.openai import OpenAIChatCompletionClient
from llama_index.core.llms import MockLLM

from activities.provider_errors import context_overflow, provider_failure
from activities.window import TooLarge, budget_for, context_window_of, count, cut
from interface import Message, SeqMessage, ToolCall


def seq(n: int, role: str, content: str = "x", **extra: object) -> SeqMessage:
    return SeqMessage(seq=n, message=Message(role=role, content=content, **extra))  # type: ignore[arg-type]


def call(n: int, call_id: str) -> SeqMessage:
    return seq(n, "assistant", "", tool_calls=[ToolCall(id=call_id, name="f")])


def result(n: int, call_id: str, size: int = 400) -> SeqMessage:
    return seq(n, "tool", "word " * size, tool_call_id=call_id, name="f")


def transcript(turns: int) -> list[SeqMessage]:
    items: list[SeqMessage] = []
    for t in range(turns):
        base = len(items)
        items += [seq(base, "user", f"q{t}"), call(base + 1, f"c{t}"), result(base + 2, f"c{t}")]
        items.append(seq(base + 3, "assistant", f"a{t}"))
    return items


def test_the_window_keeps_calls_with_their_results_and_fits() -> None:
    window = cut([], transcript(30), budget=2000)
    tokens = sum(count(m.message) for m in window)
    assert tokens <= 2000 and len(window) < 120
    assert window[0].message.role != "tool", "the window starts with an orphan result"
    ids = {c.id for m in window for c in m.message.tool_calls}
    assert {m.message.tool_call_id for m in window if m.message.role == "tool"} <= ids
    assert ids <= {m.message.tool_call_id for m in window if m.message.role == "tool"}
    assert window[-1].seq == 119  # the newest message is in


def test_the_head_and_the_question_are_kept() -> None:
    items = transcript(10)
    items += [seq(40, "user", "the question"), call(41, "cx"), result(42, "cx", 300)]
    items += [call(43, "cy"), result(44, "cy", 300)]
    window = cut(items[:2], items, budget=900)
    assert [m.seq for m in window][:2] == [0, 1]
    assert 40 in [m.seq for m in window] and window[-1].seq == 44


def test_a_message_over_any_window_is_too_large() -> None:
    with pytest.raises(TooLarge):
        cut([], [seq(0, "user", "word " * 5000)], budget=1000)


def test_the_budget_comes_from_the_client() -> None:
    gpt4 = OpenAIChatCompletionClient(model="gpt-4", api_key="sk-test")
    assert context_window_of(gpt4) == 8192
    assert context_window_of(MockLLM()) == MockLLM().metadata.context_window
    assert context_window_of(object(), default=5000) == 5000
    budget = budget_for(gpt4, "system " * 100, [{"name": "f", "parameters": {}}], None)
    assert budget.tokens == 8192 - budget.reply_room - budget.fixed and budget.fixed > 100
    assert budget_for(gpt4, "", [], context_tokens=3000).tokens == 3000


def status_error(kind: type, status: int, body: dict) -> Exception:
    request = httpx.Request("POST", "http://model/v1/chat/completions")
    response = httpx.Response(status, json=body, request=request)
    inner = body.get("error", body) if kind is openai.BadRequestError else body
    return kind("refused", response=response, body=inner)  # type: ignore[no-any-return]


OPENAI_OVERFLOW = {
    "error": {"message": "maximum context length", "code": "context_length_exceeded"}
}
ANTHROPIC_OVERFLOW = {
    "type": "error",
    "error": {"type": "invalid_request_error", "message": "prompt is too long: 9000 > 8192"},
}


def test_context_overflow_is_told_by_the_providers_code_or_anthropics_words() -> None:
    openai_error = status_error(openai.BadRequestError, 400, OPENAI_OVERFLOW)
    anthropic_error = status_error(anthropic.BadRequestError, 400, ANTHROPIC_OVERFLOW)
    other = status_error(openai.BadRequestError, 400, {"error": {"message": "bad", "code": "x"}})
    coded = {"error": {"message": "prompt is too long", "code": "invalid_value"}}
    assert context_overflow(openai_error) and context_overflow(anthropic_error)
    assert not context_overflow(other)
    assert not context_overflow(status_error(openai.BadRequestError, 400, coded))  # code wins
    try:
        raise RuntimeError("a framework's wrapper") from openai_error
    except RuntimeError as wrapped:
        assert context_overflow(wrapped)
        failure = provider_failure(wrapped)
    assert failure is not None and failure.type == "ContextLengthExceeded"
    assert failure.non_retryable


def test_the_newest_results_are_cut_to_fit_rather_than_fail() -> None:
    window = cut([], [seq(0, "user", "go"), call(1, "c1"), result(2, "c1", 3000)], budget=1000)
    assert [m.seq for m in window] == [0, 1, 2]
    assert sum(count(m.message) for m in window) <= 1000
    assert window[-1].message.content.endswith("context window]")
