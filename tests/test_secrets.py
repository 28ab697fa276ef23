"""Secrets in the worker's environment never reach history, memo, search attributes or logs.

The model endpoint is the fake OpenAI server of test_model_endpoint.py, so the key is really
sent (the fake checks the `Authorization` header) and every call path runs.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest
from google.protobuf.message import Message as ProtoMessage
from temporalio.client import Client, WorkflowHandle

from activities.db import Database
from codec import EncryptionCodec, KeyRing, encrypted_data_converter, generate_key_entry
from conversation_client import Conversations, connect
from observability import quiet_prompt_loggers
from settings import WorkerSettings
from support.fake_openai import FakeOpenAI, error, text, tool_call
from support.ids import new_id
from support.payloads import payloads_in
from support.processes import worker_process
from support.workers import WorkerFactory
from worker import default_agents


def new_secret() -> str:
    return f"sk-proj-{uuid.uuid4().hex}{uuid.uuid4().hex}"


def fragments(secret: str) -> list[str]:
    """The secret and pieces of it long enough to matter, as a masked echo would show."""
    return [secret, secret[8:24], secret[-16:]]


def readable(message: ProtoMessage) -> str:
    """A proto's stored bytes as text: plain payload data shows as it is (JSON shows base64)."""
    return message.SerializeToString().decode(errors="replace")


async def stored_views(handle: WorkflowHandle, codec: EncryptionCodec | None = None) -> dict:
    """History, memo and search attributes as the server keeps them (decoded with `codec`)."""
    history = await handle.fetch_history()
    description = (await handle.describe()).raw_description.workflow_execution_info
    views = {
        "history": "\n".join(readable(event) for event in history.events),
        "memo": readable(description.memo),
        "search attributes": readable(description.search_attributes),
    }
    if codec:
        payloads = [p for event in history.events for p in payloads_in(event)]
        decoded = await codec.decode([*payloads, *description.memo.fields.values()])
        views["decoded payloads"] = "\n".join(readable(p) for p in decoded)
    return views


def assert_absent(secret: str, views: dict[str, str]) -> None:
    for place, content in views.items():
        for piece in fragments(secret):
            assert piece not in content, f"the secret is in the {place}"


async def test_model_key_in_the_environment_stays_out_of_history_and_logs(
    db: Database,
    client: Client,
    run_worker: WorkerFactory,
    conversations: Conversations,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = new_secret()
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.url)
    settings = WorkerSettings.from_env()
    fake_openai.script = [tool_call(), text("Claim 123 is in review."), error(400)]
    caplog.set_level(logging.DEBUG)
    cid = new_id("secret")
    async with run_worker(db, default_agents(settings, db)):
        quiet_prompt_loggers(enabled=True)  # AGENT_LOG_PROMPTS=1: the chattiest logs, headers too
        try:
            ok = await conversations.ask(cid, "How is claim 123?", "m-1")
            failed = await conversations.ask(cid, "And now?", "m-2")
        finally:
            quiet_prompt_loggers()
        state = await conversations.state(cid)
    assert ok.status == "completed" and failed.status == "failed"
    assert {r["auth"] for _, r in fake_openai.requests} == {f"Bearer {secret}"}, "key not used"
    assert len(caplog.records) > 20, "DEBUG logs were not captured"
    views = await stored_views(conversations.handle(cid))
    assert "Claim 123 is in review." in views["history"]  # plain history: the check bites
    logs = "\n".join([caplog.text, *(repr(r.__dict__) for r in caplog.records)])
    assert_absent(
        secret,
        {
            **views,
            "state query": state.model_dump_json(),
            "logs": logs,
            "settings repr": repr(settings),
        },
    )


@pytest.mark.e2e
async def test_worker_process_keeps_model_and_codec_keys_out_of_everything(
    tmp_path: Path, temporal_address: str, task_queue: str, fake_openai: FakeOpenAI
) -> None:
    model_key = new_secret()
    codec_entry = generate_key_entry("k1")
    codec_key = codec_entry.split(":", 1)[1]
    ring = KeyRing.parse(codec_entry)
    secure = await connect(temporal_address, data_converter=encrypted_data_converter(ring))
    conversations = Conversations(secure, task_queue)
    fake_openai.script = [tool_call(), text("Claim 123 is in review.")]
    log = tmp_path / "worker.log"
    cid = new_id("secret-proc")
    async with worker_process(
        database_url=f"sqlite:///{tmp_path / 'worker.db'}",
        temporal_address=temporal_address,
        task_queue=task_queue,
        log=log,
        extra_env={
            "OPENAI_API_KEY": model_key,
            "OPENAI_BASE_URL": fake_openai.url,
            "AGENT_CODEC_KEYS": codec_entry,
        },
    ):
        result = await conversations.ask(cid, "How is claim 123?", "m-1")
    assert result.reply == "Claim 123 is in review."
    assert fake_openai.requests[0][1]["auth"] == f"Bearer {model_key}"
    views = await stored_views(conversations.handle(cid), EncryptionCodec(ring))
    assert "Claim 123 is in review." in views["decoded payloads"]
    views["worker log"] = log.read_text()
    assert "payloads encrypted with key 'k1'" in views["worker log"]
    assert_absent(model_key, views)
    assert_absent(codec_key, views)
