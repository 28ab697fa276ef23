"""Configured secrets are scrubbed by value, whatever they look like (issue 15, finding 9):
a key no pattern knows, echoed by the endpoint in a 400, reaches no history event and no
log line."""

from __future__ import annotations

import io
import logging
import uuid

import pytest
from temporalio.client import Client

from activities.bounds import scrub
from activities.db import Database
from conversation_client import Conversations
from observability import log_handler
from settings import WorkerSettings
from support.fake_openai import FakeOpenAI
from support.ids import new_id
from support.workers import WorkerFactory
from worker import default_agents


def unpatterned_key() -> str:
    return f"gsk_live_{uuid.uuid4().hex}"


def echo_400(key: str) -> tuple[int, dict[str, str], dict]:
    """What some providers answer a bad key with: the key itself, in the message."""
    message = f"Invalid API Key: {key} is not valid for this organisation"
    return 400, {}, {"error": {"message": message, "type": "invalid_request_error"}}


async def test_an_echoed_model_key_reaches_no_history_event_and_no_log_line(
    db: Database,
    client: Client,
    run_worker: WorkerFactory,
    conversations: Conversations,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = unpatterned_key()
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.url)
    settings = WorkerSettings.from_env()
    fake_openai.script = [echo_400(key)]
    caplog.set_level(logging.INFO)
    cid = new_id("echo")
    async with run_worker(db, default_agents(settings, db)):
        result = await conversations.ask(cid, "How is claim 123?", "m-1")
    assert result.status == "failed"
    history = await client.get_workflow_handle(cid).fetch_history()
    text = history.to_json()
    assert "is not valid for this organisation" in text  # the echo is there, scrubbed
    assert key not in text
    assert key not in caplog.text


SECRETS = [
    ("TEMPORAL_API_KEY", "tmprl_" + uuid.uuid4().hex),
    ("MCP_SERVER_TOKEN", "mcp-" + uuid.uuid4().hex),
    ("DATABASE_URL", f"postgresql://app:pw{uuid.uuid4().hex[:12]}@db:5432/agents"),
    ("AGENT_CODEC_KEYS", "k1:" + "QUJD" * 11),
]


@pytest.mark.parametrize(
    ("variable", "value"),
    SECRETS,
    ids=[variable for variable, _ in SECRETS],  # the variable: no secret in a test's ID
)
def test_every_configured_secret_is_scrubbed_by_value(variable: str, value: str) -> None:
    WorkerSettings.from_env({variable: value})
    secret = value.split(":")[2].split("@")[0] if variable == "DATABASE_URL" else value
    secret = secret.partition(":")[2] if variable == "AGENT_CODEC_KEYS" else secret
    assert secret not in scrub(f"upstream said: {secret}!")


def test_log_lines_and_tracebacks_lose_the_configured_secrets() -> None:
    key = unpatterned_key()
    WorkerSettings.from_env({"OPENAI_API_KEY": key})
    stream = io.StringIO()
    logger = logging.getLogger(f"test.secrets.{uuid.uuid4().hex}")
    logger.addHandler(log_handler(stream))
    logger.propagate = False
    logger.warning("endpoint answered %s", key)
    try:
        raise ValueError(f"rejected {key}")
    except ValueError:
        logger.exception("call failed")
    output = stream.getvalue()
    assert "endpoint answered [redacted]" in output and "rejected [redacted]" in output
    assert key not in output
