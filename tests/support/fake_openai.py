"""A local OpenAI-compatible endpoint that answers from a script (conftest's `fake_openai`).

It refuses what the real API refuses, with the real API's status and error body:
- a prompt over `context_window` tokens (counted with tiktoken, offline): 400
  `context_length_exceeded` (Anthropic's path: 400 "prompt is too long");
- a `tool` message that does not answer a call of the assistant message before it, or an
  assistant's call left unanswered: 400 `invalid_request_error`;
- a message `name` or tool name outside the API's patterns: 400 `invalid_value`.
A refused request does not use up a scripted reply. `rate_limited` (429 with `retry-after`),
`error(5xx)` and `garbage` (a 200 the client cannot parse) script the endpoint's failures.

A Chat Completions request with `stream: true` gets its scripted completion as the real API
streams it: server-sent `chat.completion.chunk` events, the content and each tool call's
arguments split into tokens, one token every `token_interval` seconds, then the
`finish_reason`, a usage chunk if `stream_options.include_usage`, and `data: [DONE]`. A
refusal or a scripted error is answered before the stream starts, as the API does.
`token_times` holds, per streamed request, the wall-clock time each token was sent. With a
`token_interval`, a reply that is not streamed comes when its last token would have.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import tiktoken

__all__ = [
    "API_KEY",
    "FakeOpenAI",
    "Reply",
    "completion",
    "count_tokens",
    "error",
    "garbage",
    "rate_limited",
    "serving",
    "stream_chunks",
    "text",
    "tool_call",
]

API_KEY = "sk-test-not-a-real-key-0123456789"
DEFAULT_CONTEXT_WINDOW = 128_000  # gpt-4o-mini's

Reply = tuple[int, dict[str, str], dict | bytes]  # status, headers, JSON body (or raw bytes)
Responder = Callable[[dict[str, Any]], Reply]

MESSAGE_NAME = re.compile(r"^[^\s<|\\/>]+$")  # what the API enforces for `messages[].name`
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # and for `tools[].function.name`
_ENCODING: list[tiktoken.Encoding] = []


def completion(message: dict[str, object], finish: str) -> Reply:
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini-2024-07-18",  # what autogen-ext resolves gpt-4o-mini to
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }
    return 200, {}, body


def tool_call(
    name: str = "get_claim_status", arguments: str = '{"claim_id": 123}', call_id: str = "call_1"
) -> Reply:
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    return completion({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls")


def text(content: str) -> Reply:
    return completion({"role": "assistant", "content": content}, "stop")


def error(status: int, headers: dict[str, str] | None = None) -> Reply:
    return status, headers or {}, {"error": {"message": f"fake {status}", "type": "test"}}


def rate_limited(retry_after: float = 1) -> Reply:
    """OpenAI's 429, asking for a retry after `retry_after` seconds."""
    body = {
        "error": {
            "message": "Rate limit reached for requests",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    return 429, {"retry-after": f"{retry_after:g}"}, body


def garbage(body: bytes = b"<html>upstream proxy error</html>") -> Reply:
    """A 200 whose body is not the JSON the client expects."""
    return 200, {}, body


def count_tokens(body: dict[str, Any]) -> int:
    """The prompt's tokens as the API counts them: each message's fields plus a few tokens
    of framing, and the tool schemas (o200k_base, gpt-4o's encoding)."""
    if not _ENCODING:
        _ENCODING.append(tiktoken.get_encoding("o200k_base"))
    encode = _ENCODING[0].encode
    total = 3
    for message in body.get("messages", []):
        total += 3 + sum(len(encode(s)) for s in _strings(message))
    if body.get("system"):  # Anthropic's system prompt is a field of its own
        total += sum(len(encode(s)) for s in _strings(body["system"]))
    if body.get("tools"):
        total += len(encode(json.dumps(body["tools"])))
    return total


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _invalid(message: str, param: str | None, code: str | None) -> Reply:
    body = {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": code,
        }
    }
    return 400, {}, body


def _too_long(path: str, tokens: int, window: int) -> Reply:
    if path.endswith("/messages"):  # Anthropic's words; it has no code for it
        message = f"prompt is too long: {tokens} tokens > {window} maximum"
        return (
            400,
            {},
            {"type": "error", "error": {"type": "invalid_request_error", "message": message}},
        )
    return _invalid(
        f"This model's maximum context length is {window} tokens. However, your messages "
        f"resulted in {tokens} tokens. Please reduce the length of the messages.",
        "messages",
        "context_length_exceeded",
    )


def refusal(path: str, body: dict[str, Any], window: int) -> Reply | None:
    """The 400 the real API answers `body` with, or None if it accepts it."""
    if not path.endswith("/messages"):
        problem = _pairing_problem(body.get("messages", [])) or _name_problem(body)
        if problem is not None:
            return problem
    tokens = count_tokens(body)
    return _too_long(path, tokens, window) if tokens > window else None


def _pairing_problem(messages: list[dict[str, Any]]) -> Reply | None:
    open_calls: list[str] = []
    answerable: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            if message.get("tool_call_id") not in answerable:
                return _invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{index}].role",
                    None,
                )
            open_calls.remove(message["tool_call_id"])
            answerable.discard(message["tool_call_id"])
            continue
        if open_calls:
            return _unanswered(index - 1, open_calls)
        calls = [c["id"] for c in message.get("tool_calls") or []] if role == "assistant" else []
        open_calls, answerable = list(calls), set(calls)
    return _unanswered(len(messages) - 1, open_calls) if open_calls else None


def _unanswered(index: int, calls: list[str]) -> Reply:
    return _invalid(
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        f"to each 'tool_call_id'. The following tool_call_ids did not have response "
        f"messages: {', '.join(calls)}",
        f"messages.[{index}].role",
        None,
    )


def _name_problem(body: dict[str, Any]) -> Reply | None:
    for index, message in enumerate(body.get("messages", [])):
        name = message.get("name")
        if name is not None and not MESSAGE_NAME.match(name):
            return _pattern(f"messages[{index}].name", MESSAGE_NAME.pattern)
    for index, tool in enumerate(body.get("tools") or []):
        if not TOOL_NAME.match(tool.get("function", {}).get("name", "")):
            return _pattern(f"tools[{index}].function.name", TOOL_NAME.pattern)
    return None


def _pattern(param: str, pattern: str) -> Reply:
    return _invalid(
        f"Invalid '{param}': string does not match pattern. Expected a string that matches "
        f"the pattern '{pattern}'.",
        param,
        "invalid_value",
    )


def _tokens(value: str) -> list[str]:
    """`value` cut where o200k_base cuts it, as the API streams text."""
    if not _ENCODING:
        _ENCODING.append(tiktoken.get_encoding("o200k_base"))
    encoding = _ENCODING[0]
    return [encoding.decode([token]) for token in encoding.encode(value)] or [value]


def _token_count(body: dict[str, Any]) -> int:
    """The tokens `stream_chunks` would stream for the completion `body`."""
    return sum(is_token for _, is_token in stream_chunks(body, include_usage=False))


def stream_chunks(body: dict[str, Any], include_usage: bool) -> Iterator[tuple[dict, bool]]:
    """The `chat.completion.chunk`s the API streams for the completion `body`, each with
    whether it carries a token (a piece of content or of a tool call's arguments)."""
    choice = body["choices"][0]
    message = choice["message"]
    head = {k: body[k] for k in ("id", "created", "model")}
    head["object"] = "chat.completion.chunk"
    head["system_fingerprint"] = "fp_test"

    def chunk(delta: dict, finish: str | None = None) -> dict:
        choices = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        return {**head, "choices": choices, **({"usage": None} if include_usage else {})}

    content, calls = message.get("content"), message.get("tool_calls") or []
    opening: dict[str, Any] = {"role": "assistant", "content": "" if content else None}
    yield chunk({**opening, "refusal": None}), False
    for piece in _tokens(content) if content else []:
        yield chunk({"content": piece}), True
    for index, call in enumerate(calls):
        function = {"name": call["function"]["name"], "arguments": ""}
        start = {"index": index, "id": call["id"], "type": "function", "function": function}
        yield chunk({"tool_calls": [start]}), False
        for piece in _tokens(call["function"]["arguments"]):
            fragment = {"index": index, "function": {"arguments": piece}}
            yield chunk({"tool_calls": [fragment]}), True
    yield chunk({}, choice["finish_reason"]), False
    if include_usage:
        yield {**head, "choices": [], "usage": body["usage"]}, False


class FakeOpenAI:
    """Answers every POST (OpenAI's /v1/chat/completions, Azure's deployment path, Anthropic's
    /v1/messages) from a script, then from `responder` if one is set; records each
    request's body, path and key headers, and refuses what the real API refuses."""

    def __init__(
        self, context_window: int = DEFAULT_CONTEXT_WINDOW, token_interval: float = 0.0
    ) -> None:
        self.script: list[Reply] = []
        self.token_interval = token_interval
        """Seconds between two streamed tokens."""
        self.token_times: list[list[float]] = []
        """Per streamed request, the wall-clock time (`time.time()`) each token was sent."""
        self.responder: Responder | None = None
        self.context_window = context_window
        self.requests: list[tuple[float, dict]] = []
        self.refused: list[Reply] = []
        self.prompt_tokens: list[int] = []
        """The counted prompt of each request, accepted or not."""
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                seen = {
                    "auth": self.headers["authorization"],
                    "api-key": self.headers["api-key"],
                    "path": self.path,
                }
                reply = fake.answer(self.path, {**seen, **body}, body)
                status, _, payload = reply
                streams = body.get("stream") and not self.path.endswith("/messages")
                if streams and status == 200 and isinstance(payload, dict):
                    self._stream(
                        payload, bool((body.get("stream_options") or {}).get("include_usage"))
                    )
                else:
                    if status == 200 and isinstance(payload, dict) and "choices" in payload:
                        time.sleep(fake.token_interval * max(_token_count(payload) - 1, 0))
                    self._send(*reply)

            def _stream(self, payload: dict, include_usage: bool) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream; charset=utf-8")
                self.end_headers()  # no length: HTTP/1.0, the stream ends when the server closes
                times: list[float] = []
                with fake._lock:
                    fake.token_times.append(times)
                for chunk, is_token in stream_chunks(payload, include_usage):
                    if is_token and times and fake.token_interval:
                        time.sleep(fake.token_interval)
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    if is_token:
                        times.append(time.time())
                self.wfile.write(b"data: [DONE]\n\n")

            def _send(self, status: int, headers: dict[str, str], payload: dict | bytes) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"content-type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"

    def answer(self, path: str, seen: dict[str, Any], body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append((time.monotonic(), seen))
            self.prompt_tokens.append(count_tokens(body))
            refused = refusal(path, body, self.context_window)
            if refused is not None:
                self.refused.append(refused)
                return refused
            if self.script:
                return self.script.pop(0)
            if self.responder is not None:
                return self.responder(body)
            raise AssertionError("the fake endpoint's script is used up")


@contextmanager
def serving(
    context_window: int = DEFAULT_CONTEXT_WINDOW, token_interval: float = 0.0
) -> Iterator[FakeOpenAI]:
    """A FakeOpenAI answering on a thread until the block ends."""
    fake = FakeOpenAI(context_window, token_interval)
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
