"""LlamaIndex's own OpenAI clients against a local fake endpoint: Temporal retries a 429
after `retry-after`, a 400 is not retried, and usage is counted."""

from __future__ import annotations

from llama_index.llms.openai import OpenAI
from llama_index.llms.openai_like import OpenAILike
from temporalio.client import Client

from activities.db import Database
from agents.registry import AgentRegistry
from conversation_client import Conversations
from examples import llamaindex_claims
from examples.claims_functions import TOOL_OPTIONS
from interface import StartConversation
from support.fake_openai import API_KEY, FakeOpenAI, error, text, tool_call
from support.ids import new_id
from support.workers import WorkerFactory


def registry(db: Database, llm: object) -> AgentRegistry:
    agents = AgentRegistry()
    agents.add(
        "claims-llamaindex",
        lambda: llamaindex_claims.claims_assistant(llm, db.sessions),
        tools=TOOL_OPTIONS,
    )  # type: ignore[arg-type]
    return agents


async def test_openai_llm_429_waits_for_retry_after(
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
    llm = OpenAI(model="gpt-4o-mini", api_key=API_KEY, api_base=fake_openai.url, max_retries=0)
    cid = new_id()
    async with run_worker(db, registry(db, llm)):
        result = await conversations.ask(
            cid, "How is claim 123?", "m-1", StartConversation(agent="claims-llamaindex")
        )
    assert result.status == "completed" and result.reply == "Claim 123 is in review."
    assert [c.name for c in result.tool_calls] == ["get_claim_status"]
    assert result.usage.prompt_tokens == 22 and result.usage.completion_tokens == 14
    (t429, _), (t_retry, first), (_, second) = fake_openai.requests
    assert t_retry - t429 >= 2.5, "retry-after was not honoured"
    assert {t["function"]["name"] for t in first["tools"]} >= {
        "get_claim_status",
        "create_claim_note",
    }
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    assert second["messages"][2]["tool_calls"][0]["id"] == "call_1"
    assert second["messages"][3]["tool_call_id"] == "call_1"
    assert API_KEY not in (await client.get_workflow_handle(cid).fetch_history()).to_json()


async def test_openai_like_400_is_not_retried(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script = [error(400), text("Back again.")]
    llm = OpenAILike(
        model="local-model",
        api_key=API_KEY,
        api_base=fake_openai.url,
        max_retries=0,
        is_chat_model=True,
        is_function_calling_model=True,
    )
    cid, start = new_id(), StartConversation(agent="claims-llamaindex")
    async with run_worker(db, registry(db, llm)):
        failed = await conversations.ask(cid, "first", "m-1", start)
        after = await conversations.ask(cid, "second", "m-2", start)
    assert failed.status == "failed"
    assert after.status == "completed" and after.reply == "Back again."
    assert len(fake_openai.requests) == 2
