"""No customer text in the worker's logs by default (AGENT_LOG_PROMPTS=1 lets the frameworks'
prompt loggers speak): in-process at DEBUG, and in a worker subprocess's log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from autogen_ext.models.openai import OpenAIChatCompletionClient

from activities.db import Database
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.agent import claims_assistant
from support.fake_openai import API_KEY, FakeOpenAI, text, tool_call
from support.ids import new_id
from support.processes import worker_process
from support.workers import WorkerFactory

QUESTION = "My neighbour Zebediah Quarrington flooded claim 123"
ANSWER = "Claim 123 is in review, Mr Quarrington-Answer."


def script(fake: FakeOpenAI) -> None:
    fake.script = [tool_call(), text(ANSWER)]


async def test_the_worker_logs_no_message_text_in_process(
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    fake_openai: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    script(fake_openai)
    model = OpenAIChatCompletionClient(
        model="gpt-4o-mini", api_key=API_KEY, base_url=fake_openai.url
    )
    caplog.set_level(logging.DEBUG)
    async with run_worker(db, AgentRegistry([claims_assistant(model, db.sessions)])):
        result = await conversations.ask(new_id(), QUESTION, "m-1")
    assert result.reply == ANSWER
    logs = "\n".join([caplog.text, *(repr(r.__dict__) for r in caplog.records)])
    assert "model_call" in logs, "the activities' logs were not captured"
    assert "Quarrington" not in logs


async def ask_through_worker(
    tmp_path: Path, conversations: Conversations, address: str, fake: FakeOpenAI, **env: str
) -> str:
    tmp_path.mkdir()
    log = tmp_path / "worker.log"
    options = dict(
        database_url=f"sqlite:///{tmp_path}/agents.db",
        temporal_address=address,
        task_queue=conversations.task_queue,
        log=log,
        extra_env={"OPENAI_BASE_URL": fake.url, "OPENAI_API_KEY": API_KEY, **env},
    )
    async with worker_process(**options):  # type: ignore[arg-type]
        result = await conversations.ask(new_id(), QUESTION, "m-1")
    assert result.reply == ANSWER
    return log.read_text()


@pytest.mark.e2e
async def test_a_worker_process_logs_no_message_text(
    tmp_path: Path, temporal_address: str, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    script(fake_openai)
    quiet = await ask_through_worker(
        tmp_path / "quiet", conversations, temporal_address, fake_openai
    )
    assert "worker polling" in quiet and "Quarrington" not in quiet
    script(fake_openai)
    loud = await ask_through_worker(
        tmp_path / "loud", conversations, temporal_address, fake_openai, AGENT_LOG_PROMPTS="1"
    )
    assert "Quarrington" in loud, "the switch did not let the prompt loggers speak"
