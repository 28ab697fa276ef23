"""Users' own framework clients, built with their SDK defaults, against a local fake endpoint:
AutoGen's OpenAI, Azure OpenAI and Anthropic clients. The registry turns the clients' own
retries off (agents/retries.py), so a failed call is retried by Temporal, in the history."""

from __future__ import annotations

from autogen_ext.models.anthropic import AnthropicChatCompletionClient
from autogen_ext.models.openai import AzureOpenAIChatCompletionClient, OpenAIChatCompletionClient
from llama_index.llms.openai import OpenAI
from temporalio.client import Client

from activities.db import Database
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.agent import claims_assistant
from support.attempts import model_attempts
from support.fake_openai import API_KEY, FakeOpenAI, error, text, tool_call
from support.ids import new_id
from support.workers import WorkerFactory


def registry(db: Database, model_client: object) -> AgentRegistry:
    return AgentRegistry([claims_assistant(model_client, db.sessions)])


def test_registering_turns_the_clients_own_retries_off(db: Database) -> None:
    openai_client = OpenAIChatCompletionClient(model="gpt-4o-mini", api_key=API_KEY)
    llm = OpenAI(model="gpt-4o-mini", api_key=API_KEY)
    assert openai_client._client.max_retries == 2 and llm.max_retries == 3  # SDK defaults
    registry(db, openai_client)
    registry(db, llm)
    assert openai_client._client.max_retries == 0
    assert llm.max_retries == 0 and llm._get_aclient().max_retries == 0


async def test_a_500_is_retried_by_temporal_not_by_the_client(
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    fake_openai: FakeOpenAI,
    client: Client,
) -> None:
    fake_openai.script = [error(500), tool_call(), text("Claim 123 is in review.")]
    model_client = OpenAIChatCompletionClient(
        model="gpt-4o-mini", api_key=API_KEY, base_url=fake_openai.url
    )  # the SDK's default: 2 retries of its own
    cid = new_id()
    async with run_worker(db, registry(db, model_client)):
        result = await conversations.ask(cid, "How is claim 123?", "m-1")
    assert result.status == "completed" and result.reply == "Claim 123 is in review."
    assert len(fake_openai.requests) == 3
    # the 500 failed attempt 1 of the first model activity; Temporal ran attempt 2
    assert await model_attempts(client, cid) == [2, 1]


async def test_azure_openai_client(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script = [tool_call(), text("Claim 123 is in review.")]
    model_client = AzureOpenAIChatCompletionClient(
        model="gpt-4o-mini",
        azure_deployment="claims-gpt",
        api_version="2024-06-01",
        azure_endpoint=fake_openai.url.removesuffix("/v1"),
        api_key=API_KEY,
    )
    cid = new_id()
    async with run_worker(db, registry(db, model_client)):
        result = await conversations.ask(cid, "How is claim 123?", "m-1")
    assert result.status == "completed" and result.reply == "Claim 123 is in review."
    assert [c.name for c in result.tool_calls] == ["get_claim_status"]
    assert result.usage.prompt_tokens == 22
    (_, first), (_, second) = fake_openai.requests
    assert first["path"] == "/openai/deployments/claims-gpt/chat/completions?api-version=2024-06-01"
    assert first["api-key"] == API_KEY
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]


def anthropic_message(content: list[dict], stop: str) -> tuple[int, dict[str, str], dict]:
    body = {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-sonnet-20241022",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 13, "output_tokens": 5},
    }
    return 200, {}, body


async def test_anthropic_client(
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    fake_openai: FakeOpenAI,
    client: Client,
) -> None:
    use = {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "get_claim_status",
        "input": {"claim_id": 123},
    }
    fake_openai.script = [
        error(529),  # Anthropic's "overloaded": a 5xx, retried by Temporal
        anthropic_message([use], "tool_use"),
        anthropic_message([{"type": "text", "text": "Claim 123 is in review."}], "end_turn"),
    ]
    model_client = AnthropicChatCompletionClient(
        model="claude-3-5-sonnet-20241022",
        api_key=API_KEY,
        base_url=fake_openai.url.removesuffix("/v1"),
    )
    cid = new_id()
    async with run_worker(db, registry(db, model_client)):
        result = await conversations.ask(cid, "How is claim 123?", "m-1")
    assert result.status == "completed" and result.reply == "Claim 123 is in review."
    assert [(c.name, c.arguments, c.status) for c in result.tool_calls] == [
        ("get_claim_status", '{"claim_id": 123}', "ok")
    ]
    assert result.usage.prompt_tokens == 26 and result.usage.completion_tokens == 10
    assert [r["path"] for _, r in fake_openai.requests] == ["/v1/messages"] * 3
    last = fake_openai.requests[-1][1]
    assert last["system"]  # the agent's system message travels as Anthropic's `system`
    tool_result = last["messages"][-1]["content"][0]
    assert tool_result["type"] == "tool_result" and tool_result["tool_use_id"] == "toolu_1"
    assert "123" in str(tool_result["content"])
    assert await model_attempts(client, cid) == [2, 1]
