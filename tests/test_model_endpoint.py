"""The real OpenAI-compatible client path (autogen-ext), against a local fake endpoint.

Temporal owns retries: a 429 waits for `retry-after`, a 400 is not retried.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from temporalio.client import Client

from activities.db import Database
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.agent import claims_assistant
from settings import WorkerSettings
from tests.conftest import WorkerFactory, new_id

API_KEY = "sk-test-not-a-real-key-0123456789"


def completion(message: dict[str, object], finish: str) -> tuple[int, dict[str, str], dict]:
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini-2024-07-18",  # what autogen-ext resolves gpt-4o-mini to
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }
    return 200, {}, body


def tool_call() -> tuple[int, dict[str, str], dict]:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_claim_status", "arguments": '{"claim_id": 123}'},
    }
    return completion({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls")


def text(content: str) -> tuple[int, dict[str, str], dict]:
    return completion({"role": "assistant", "content": content}, "stop")


def error(status: int, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], dict]:
    return status, headers or {}, {"error": {"message": f"fake {status}", "type": "test"}}


class FakeOpenAI:
    """Answers every POST (OpenAI's /v1/chat/completions, Azure's deployment path, Anthropic's
    /v1/messages) from a script; records each request's body, path and key headers."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str], dict]] = []
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


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def openai_agents(db: Database, url: str) -> AgentRegistry:
    settings = WorkerSettings(openai_api_key=API_KEY, openai_base_url=url)
    return AgentRegistry([claims_assistant(settings.model_client(), db.sessions)])


async def test_429_is_retried_after_retry_after(
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    fake_openai: FakeOpenAI,
    client: Client,
) -> None:
    fake_openai.script = [
        error(429, {"retry-after": "3"}),
        tool_call(),
        text("Claim 123 is in review."),
    ]
    cid = new_id()
    async with run_worker(db, openai_agents(db, fake_openai.url)):
        result = await conversations.ask(cid, "How is claim 123?", "m-1")
    assert result.status == "completed" and result.reply == "Claim 123 is in review."
    assert [c.name for c in result.tool_calls] == ["get_claim_status"]
    assert result.usage.prompt_tokens == 22
    (t429, _), (t_retry, retried), (_, second) = fake_openai.requests
    assert t_retry - t429 >= 2.5, "retry-after was not honoured"
    assert retried["auth"] == f"Bearer {API_KEY}"
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    assert second["messages"][3]["tool_call_id"] == "call_1"
    history = (await client.get_workflow_handle(cid).fetch_history()).to_json()
    assert API_KEY not in history


async def test_400_is_not_retried_and_the_conversation_goes_on(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script = [error(400), text("Back again.")]
    cid = new_id()
    async with run_worker(db, openai_agents(db, fake_openai.url)):
        failed = await conversations.ask(cid, "first", "m-1")
        after = await conversations.ask(cid, "second", "m-2")
    assert failed.status == "failed"
    assert after.status == "completed" and after.reply == "Back again."
    assert len(fake_openai.requests) == 2
    users = [m["content"] for m in fake_openai.requests[1][1]["messages"] if m["role"] == "user"]
    assert users == ["first", "second"]
