"""A local OpenAI-compatible endpoint that answers from a script (conftest's `fake_openai`)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["API_KEY", "FakeOpenAI", "Reply", "completion", "error", "serving", "text", "tool_call"]

API_KEY = "sk-test-not-a-real-key-0123456789"

Reply = tuple[int, dict[str, str], dict]  # status, headers, JSON body


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


def tool_call() -> Reply:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_claim_status", "arguments": '{"claim_id": 123}'},
    }
    return completion({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls")


def text(content: str) -> Reply:
    return completion({"role": "assistant", "content": content}, "stop")


def error(status: int, headers: dict[str, str] | None = None) -> Reply:
    return status, headers or {}, {"error": {"message": f"fake {status}", "type": "test"}}


class FakeOpenAI:
    """Answers every POST (OpenAI's /v1/chat/completions, Azure's deployment path, Anthropic's
    /v1/messages) from a script; records each request's body, path and key headers."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[tuple[float, dict]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                seen = {
                    "auth": self.headers["authorization"],
                    "api-key": self.headers["api-key"],
                    "path": self.path,
                }
                fake.requests.append((time.monotonic(), {**seen, **body}))
                status, headers, payload = fake.script.pop(0)
                data = json.dumps(payload).encode()
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


@contextmanager
def serving() -> Iterator[FakeOpenAI]:
    """A FakeOpenAI answering on a thread until the block ends."""
    fake = FakeOpenAI()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
