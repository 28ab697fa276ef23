"""AutoGen classic (AG2, the `autogen` package), written as the seed articles write it and
run durably against the local fake OpenAI endpoint."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import pytest
from agent_workflows.teams import random_speaker
from autogen import (
    AssistantAgent,
    ConversableAgent,
    GroupChat,
    GroupChatManager,
    UserProxyAgent,
    register_function,
)
from autogen.agentchat.contrib.capabilities.transform_messages import TransformMessages
from autogen.agentchat.contrib.capabilities.transforms import (
    MessageHistoryLimiter,
    MessageTokenLimiter,
)
from pydantic import BaseModel
from sqlalchemy import select

from activities.db import Database
from activities.tables import LedgerEntry
from agents.adapters import from_ag2, from_ag2_groupchat
from agents.adapters.ag2 import AG2Client
from agents.errors import ConfigurationError, UnsupportedOption
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.tables import ClaimNote
from examples.ag2_claims import claims_agents
from examples.claims_functions import TOOL_OPTIONS, claims_functions
from interface import StartConversation
from support.databases import count
from support.fake_openai import API_KEY, FakeOpenAI, completion, error, text, tool_call
from support.ids import new_id
from support.paths import ROOT
from support.processes import worker_process
from support.workers import WorkerFactory


def llm_config(fake: FakeOpenAI, **extra: Any) -> dict[str, Any]:
    entry = {"model": "gpt-4o-mini", "api_key": API_KEY, "base_url": fake.url}
    return {"config_list": [entry], **extra}


def support_bot(fake: FakeOpenAI) -> tuple[AssistantAgent, UserProxyAgent]:
    """The seed article's pair, as written there."""
    assistant = AssistantAgent(name="support_bot", llm_config=llm_config(fake))
    user_proxy = UserProxyAgent(name="user", human_input_mode="NEVER", code_execution_config=False)

    def get_claim_status(claim_id: Annotated[int, "The claim's number"]) -> str:
        return json.dumps({"claim_id": claim_id, "status": "in review"})

    register_function(
        get_claim_status,
        caller=assistant,
        executor=user_proxy,
        name="get_claim_status",
        description="Get a claim's status.",
    )
    return assistant, user_proxy


def note_call(text: str = "customer called") -> tuple[int, dict[str, str], dict]:
    call = {
        "id": "call_note",
        "type": "function",
        "function": {
            "name": "create_claim_note",
            "arguments": json.dumps({"claim_id": 123, "text": text}),
        },
    }
    return completion({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls")


async def ledger(db: Database, cid: str) -> list[tuple[str, str]]:
    async with db.session() as session:
        query = select(LedgerEntry.tool, LedgerEntry.status).where(
            LedgerEntry.conversation_id == cid
        )
        return [tuple(row) for row in (await session.execute(query)).all()]  # type: ignore[misc]


# --- the seed's support_bot --------------------------------------------------------------


async def test_support_bot_runs_its_registered_function_durably(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script = [tool_call(), text("Claim 123 is in review.")]
    registry = AgentRegistry()
    registry.add("support-bot", lambda: support_bot(fake_openai))
    cid = new_id()
    async with run_worker(db, registry):
        result = await conversations.ask(
            cid, "Check policy status for claim 123", "m-1", StartConversation(agent="support-bot")
        )
    assert result.status == "completed" and result.reply == "Claim 123 is in review."
    [call] = result.tool_calls
    assert (call.name, call.status) == ("get_claim_status", "ok")
    assert json.loads(call.result) == {"claim_id": 123, "status": "in review"}
    first, second = (body for _, body in fake_openai.requests)
    assert first["messages"][0] == {
        "role": "system",
        "content": AssistantAgent.DEFAULT_SYSTEM_MESSAGE,
    }
    assert [t["function"]["name"] for t in first["tools"]] == ["get_claim_status"]
    assert second["messages"][-1]["role"] == "tool"
    assert second["messages"][-1]["tool_call_id"] == "call_1"


async def test_a_500_is_retried_by_temporal_not_by_ag2(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    """AG2's OpenAI client retries twice by default; registered, it does not retry at all."""
    fake_openai.script = [error(500), text("Hello.")]
    registry = AgentRegistry()
    registry.add("support-bot", lambda: support_bot(fake_openai))
    async with run_worker(db, registry):
        result = await conversations.ask(
            new_id(), "hi", "m-1", StartConversation(agent="support-bot")
        )
    assert result.status == "completed" and result.reply == "Hello."
    assert len(fake_openai.requests) == 2  # one failed attempt, one retry by Temporal
    client = registry.get("support-bot").model_client
    assert isinstance(client, AG2Client)
    assert client.wrapper._clients[0]._oai_client.max_retries == 0


def test_other_providers_sdk_clients_do_not_retry_either() -> None:
    """AG2's Anthropic client builds its SDK client with the SDK's default of 2 retries."""
    config = {
        "config_list": [{"api_type": "anthropic", "model": "claude-3-5-haiku", "api_key": API_KEY}]
    }
    assistant = AssistantAgent("support_bot", llm_config=config)
    client = from_ag2(assistant).model_client
    assert isinstance(client, AG2Client)
    assert client.wrapper._clients[0]._client.max_retries == 0


async def test_a_400_fails_the_turn_without_retries(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script = [error(400)]
    registry = AgentRegistry()
    registry.add("support-bot", lambda: support_bot(fake_openai))
    async with run_worker(db, registry):
        result = await conversations.ask(
            new_id(), "hi", "m-1", StartConversation(agent="support-bot")
        )
    assert result.status == "failed"
    assert len(fake_openai.requests) == 1


# --- the user proxy executes a function that writes a row ---------------------------------


async def test_user_proxy_writes_one_note_through_the_ledger(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script = [note_call(), text("I added the note. TERMINATE")]
    registry = AgentRegistry()
    registry.add(
        "claims-ag2",
        lambda: claims_agents(llm_config(fake_openai), db.sessions),
        tools=TOOL_OPTIONS,
    )
    cid = new_id()
    async with run_worker(db, registry):
        result = await conversations.ask(
            cid, "add a note that the customer called", "m-1", StartConversation(agent="claims-ag2")
        )
    assert result.status == "completed" and result.reply == "I added the note. TERMINATE"
    assert await count(db, ClaimNote, conversation_id=cid) == 1
    assert await ledger(db, cid) == [("create_claim_note", "succeeded")]


async def test_the_executors_termination_rule_ends_the_turn_before_its_calls_run(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    """`is_termination_msg` runs in the model activity; the loop honours its flag."""
    call = note_call()[2]["choices"][0]["message"]["tool_calls"]
    answer = {"role": "assistant", "content": "All done. TERMINATE", "tool_calls": call}
    fake_openai.script = [completion(answer, "tool_calls")]
    registry = AgentRegistry()
    registry.add(
        "claims-ag2",
        lambda: claims_agents(llm_config(fake_openai), db.sessions),
        tools=TOOL_OPTIONS,
    )
    cid = new_id()
    async with run_worker(db, registry):
        result = await conversations.ask(
            cid, "add a note", "m-1", StartConversation(agent="claims-ag2")
        )
    assert result.status == "completed" and result.reply == "All done. TERMINATE"
    assert result.tool_calls == [] and result.steps == 1
    assert await count(db, ClaimNote, conversation_id=cid) == 0


@pytest.mark.e2e
async def test_one_note_across_a_worker_sigkill(
    db: Database,
    conversations: Conversations,
    temporal_address: str,
    task_queue: str,
    tmp_path: Path,
    fake_openai: FakeOpenAI,
) -> None:
    """SIGKILL right after the note commits, before Temporal hears of it: the new worker's
    retry finds the ledger's record, and the turn ends with one note."""
    fake_openai.script = [note_call(), text("Noted.")]
    cid, marker = new_id("ag2"), tmp_path / "fired"
    options: dict[str, Any] = dict(
        database_url=db.url,
        temporal_address=temporal_address,
        task_queue=task_queue,
        log=tmp_path / "worker.log",
        fault="after_commit:create_claim_note",
        fault_once=marker,
        extra_env={
            "AGENT_MODULES": "tests.support.ag2_worker",
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": fake_openai.url,
        },
    )
    start = StartConversation(agent="claims-ag2")
    async with worker_process(**options) as doomed:
        turn = asyncio.create_task(conversations.ask(cid, "add a note", "m-1", start))
        assert await doomed.killed() == -9
    assert marker.read_text().startswith("after_commit ")  # the kill fired
    async with worker_process(**options):
        result = await asyncio.wait_for(turn, 60)
    assert result.status == "completed" and result.reply == "Noted."
    assert await count(db, ClaimNote, conversation_id=cid) == 1
    assert await ledger(db, cid) == [("create_claim_note", "succeeded")]
    assert len(fake_openai.requests) == 2  # the first answer was recorded, not asked again


# --- what registration takes and refuses ----------------------------------------------------


def test_options_reach_the_definition(fake_openai: FakeOpenAI) -> None:
    class Verdict(BaseModel):
        approved: bool
        reason: str

    assistant = ConversableAgent(
        "reviewer",
        system_message="Review claims.",
        llm_config=llm_config(fake_openai, response_format=Verdict, cache_seed=42),
        max_consecutive_auto_reply=4,
    )
    TransformMessages(
        transforms=[
            MessageHistoryLimiter(max_messages=10, keep_first_message=True),
            MessageTokenLimiter(max_tokens=3000),
        ]
    ).add_to_agent(assistant)
    executor = UserProxyAgent("user", human_input_mode="NEVER", code_execution_config=False)
    executor.update_max_consecutive_auto_reply(2)
    definition = from_ag2(executor, executor=assistant)  # either order: the model's is the caller
    assert definition.name == "reviewer" and definition.system_message == "Review claims."
    assert definition.max_steps == 3  # the executor's 2 rounds of results, then an answer
    assert (definition.context_messages, definition.context_head) == (10, 1)
    assert definition.context_tokens == 3000
    assert definition.output_schema == Verdict.model_json_schema()
    client = definition.model_client
    assert isinstance(client, AG2Client)
    assert [c.get("cache_seed") for c in client.wrapper._config_list] == [None]  # no disk cache


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        (lambda a, u: setattr(u, "_code_execution_config", {"work_dir": "x"}), "code_execution"),
        (lambda a, u: setattr(u, "human_input_mode", "ALWAYS"), "ALWAYS"),
        (lambda a, u: setattr(u, "human_input_mode", "TERMINATE"), "TERMINATE"),
        (lambda a, u: a.register_nested_chats([{"recipient": u}], trigger=u), "nested"),
        (lambda a, u: setattr(a, "_is_termination_msg", lambda m: True), "is_termination_msg"),
        (lambda a, u: u._function_map.clear(), "no agent executes"),
    ],
)
def test_what_cannot_be_honoured_is_refused_by_name(
    fake_openai: FakeOpenAI, change: Any, refused: str
) -> None:
    assistant, user_proxy = support_bot(fake_openai)
    change(assistant, user_proxy)
    registry = AgentRegistry()
    with pytest.raises(ConfigurationError, match=refused):
        registry.add("support-bot", lambda: (assistant, user_proxy))


def test_a_code_executing_proxy_is_unsupported_not_misread(fake_openai: FakeOpenAI) -> None:
    assistant = AssistantAgent("a", llm_config=llm_config(fake_openai))
    proxy = UserProxyAgent(
        "u", human_input_mode="NEVER", code_execution_config={"use_docker": False}
    )
    with pytest.raises(UnsupportedOption, match="code_execution_config"):
        from_ag2(assistant, proxy)


# --- GroupChat + GroupChatManager -------------------------------------------------------


def group(
    fake: FakeOpenAI, sessions: Any, method: str, **options: Any
) -> tuple[GroupChatManager, dict[str, ConversableAgent]]:
    """Claims agents in an AG2 group chat; the user proxy executes the note function."""
    user_proxy = UserProxyAgent("user", human_input_mode="NEVER", code_execution_config=False)
    agents = {
        name: AssistantAgent(name, llm_config=llm_config(fake), description=f"The {name}.")
        for name in ("intake", "reviewer", "auditor")
    }
    [create_claim_note] = [
        f for f in claims_functions(sessions) if f.__name__ == "create_claim_note"
    ]
    register_function(
        create_claim_note, caller=agents["intake"], executor=user_proxy, description="Add a note."
    )
    chat = GroupChat(
        agents=[user_proxy, *agents.values()], speaker_selection_method=method, **options
    )
    manager = GroupChatManager(
        chat,
        llm_config=llm_config(fake) if method == "auto" else False,
        is_termination_msg=lambda m: "TERMINATE" in (m.get("content") or ""),
    )
    return manager, {"user": user_proxy, **agents}


async def test_round_robin_group_chat_with_an_executing_user_proxy(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    """`max_round=4`: the person's message and three members, each once, in order."""
    fake_openai.script = [note_call(), text("Noted."), text("Looks right."), text("Agreed.")]
    registry = AgentRegistry()
    registry.add(
        "claims-group",
        lambda: group(fake_openai, db.sessions, "round_robin", max_round=4)[0],
        tools=TOOL_OPTIONS,
    )
    cid = new_id()
    async with run_worker(db, registry):
        result = await conversations.ask(
            cid, "note that the customer called", "m-1", StartConversation(agent="claims-group")
        )
    assert result.status == "completed" and result.reply == "Agreed."
    assert result.speakers == ["intake", "reviewer", "auditor"]
    assert await count(db, ClaimNote, conversation_id=cid) == 1
    assert await ledger(db, cid) == [("create_claim_note", "succeeded")]


async def test_auto_group_chat_picks_with_ag2_prompts_within_the_transitions(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    """After the person only intake may speak (no model call); after intake, the manager's
    model picks between reviewer and auditor; its TERMINATE ends the turn."""
    fake_openai.script = [
        text("Claim 123 looks fine."),
        text("reviewer"),
        text("Approved. TERMINATE"),
    ]

    def build() -> GroupChatManager:
        manager, a = group(fake_openai, db.sessions, "auto", max_round=10)
        chat = manager.groupchat
        graph = {
            a["user"]: [a["intake"]],
            a["intake"]: [a["reviewer"], a["auditor"]],
            a["reviewer"]: [a["intake"]],
            a["auditor"]: [a["intake"]],
        }
        return GroupChatManager(
            GroupChat(
                agents=chat.agents,
                speaker_selection_method="auto",
                allowed_or_disallowed_speaker_transitions=graph,
                speaker_transitions_type="allowed",
                max_round=10,
            ),
            llm_config=llm_config(fake_openai),
            is_termination_msg=manager._is_termination_msg,
        )

    registry = AgentRegistry()
    registry.add("claims-group", build, tools=TOOL_OPTIONS)
    async with run_worker(db, registry):
        result = await conversations.ask(
            new_id(), "How is claim 123?", "m-1", StartConversation(agent="claims-group")
        )
    assert result.status == "completed" and result.reply == "Approved. TERMINATE"
    assert result.speakers == ["intake", "reviewer"]
    selection = fake_openai.requests[1][1]["messages"]
    assert selection[0]["content"].startswith("You are in a role play game.")
    assert "['reviewer', 'auditor']" in selection[-1]["content"]
    assert "intake:" not in selection[0]["content"]  # only the candidates' roles
    assert len(fake_openai.requests) == 3


async def test_random_group_chat_picks_by_the_conversations_seed(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    """The pick is seeded by the conversation, the turn and the position, with no randomness
    in the workflow: a replay picks the same members, within the transitions."""
    fake_openai.script = [text("One."), text("Two.")]
    registry = AgentRegistry()
    registry.add(
        "claims-group",
        lambda: group(fake_openai, db.sessions, "random", max_round=3)[0],
        tools=TOOL_OPTIONS,
    )
    cid = new_id()
    async with run_worker(db, registry):
        result = await conversations.ask(
            cid, "hello", "m-1", StartConversation(agent="claims-group")
        )
        state = await conversations.state(cid)
    spec = registry.get("claims-group").spec()
    assert spec.team is not None and spec.team.mode == "random"
    first = random_speaker(spec.team, None, f"{cid}/t1/0")
    assert result.speakers[0] == first and len(result.speakers) == 2
    assert result.speakers[1] in spec.team.transitions[first]  # type: ignore[index]
    assert state.active_agent == result.speakers[1]


def test_group_chat_options_that_cannot_be_honoured_are_refused(
    fake_openai: FakeOpenAI, db: Database
) -> None:
    manager, agents = group(fake_openai, db.sessions, "round_robin")
    manual = GroupChat(agents=list(agents.values()), speaker_selection_method="manual")
    with pytest.raises(UnsupportedOption, match="manual"):
        from_ag2_groupchat(GroupChatManager(manual, llm_config=False))
    chosen = GroupChat(agents=list(agents.values()), speaker_selection_method=lambda *a: None)
    with pytest.raises(UnsupportedOption, match="speaker_selection_method"):
        from_ag2_groupchat(GroupChatManager(chosen, llm_config=False))
    auto = GroupChat(agents=list(agents.values()), speaker_selection_method="auto")
    with pytest.raises(ConfigurationError, match="llm_config"):
        from_ag2_groupchat(GroupChatManager(auto, llm_config=False))
    agents["user"].human_input_mode = "ALWAYS"
    with pytest.raises(UnsupportedOption, match="ALWAYS"):
        from_ag2_groupchat(manager)


# --- the decorator style, and structured output ---------------------------------------------


def test_tools_registered_with_the_decorators(fake_openai: FakeOpenAI) -> None:
    assistant = AssistantAgent("support_bot", llm_config=llm_config(fake_openai))
    user_proxy = UserProxyAgent("user", human_input_mode="NEVER", code_execution_config=False)

    @user_proxy.register_for_execution()
    @assistant.register_for_llm(description="Look up a policy.")
    async def lookup_policy(policy_id: Annotated[str, "The policy's ID"]) -> str:
        return policy_id

    definition = from_ag2(assistant, user_proxy)
    [tool] = definition.tools
    assert (tool.name, tool.description, tool.kind) == (
        "lookup_policy",
        "Look up a policy.",
        "external",
    )
    [offered] = assistant.llm_config["tools"]  # what AG2 built is what the model sees
    assert tool.schema["parameters"] == offered["function"]["parameters"]
    assert list(tool.schema["parameters"]["properties"]) == ["policy_id"]


async def test_response_format_asks_the_model_for_the_schema(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    class Verdict(BaseModel):
        approved: bool
        reason: str

    fake_openai.script = [text('{"approved": true, "reason": "covered"}')]
    registry = AgentRegistry()
    registry.add(
        "reviewer",
        lambda: AssistantAgent(
            "reviewer", llm_config=llm_config(fake_openai, response_format=Verdict)
        ),
    )
    async with run_worker(db, registry):
        result = await conversations.ask(
            new_id(), "Is claim 123 covered?", "m-1", StartConversation(agent="reviewer")
        )
    assert Verdict.model_validate_json(result.reply) == Verdict(approved=True, reason="covered")
    asked = fake_openai.requests[0][1]["response_format"]
    assert asked["type"] == "json_schema" and asked["json_schema"]["name"] == "Verdict"
    assert registry.get("reviewer").output_schema == Verdict.model_json_schema()


@pytest.mark.e2e  # a fresh interpreter imports the worker
def test_a_worker_without_ag2_agents_does_not_import_ag2() -> None:
    """AG2's import takes seconds: workers and activities load it only for its agents."""
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "import worker, activities.model, agents.adapters, agents.registry\n"
        "print('autogen' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"
