"""The real OpenAI-compatible client path (autogen-ext), against a local fake endpoint.

Temporal owns retries: a 429 waits for `retry-after`, a 400 is not retried.
"""

from __future__ import annotations

from temporalio.client import Client

from activities.db import Database
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.agent import claims_assistant
from settings import WorkerSettings
from support.fake_openai import API_KEY, FakeOpenAI, error, text, tool_call
from support.ids import new_id
from support.workers import WorkerFactory


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
