"""Conversations keep AgentName, ConversationStatus and TurnCount current, so a person can
filter them in the Web UI or with `temporal workflow list --query`."""

from __future__ import annotations

import asyncio
import json

import pytest
from agent_workflows.conversation import AgentConversation, _tool_summary
from temporalio.client import Client, WorkflowFailureError
from temporalio.worker import Replayer

from activities.db import Database
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.agent import claims_assistant
from demo.scripted_model import ScriptedChatCompletionClient
from interface import StartConversation, ToolCall, ToolDecision
from interface.search_attributes import AGENT_NAME, CONVERSATION_STATUS, TURN_COUNT
from support.ids import new_id
from support.temporal_cli import temporal
from support.visibility import WAITING, listed
from support.workers import WorkerFactory


async def test_status_and_turns_are_searchable(
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    client: Client,
    temporal_address: str,
    indexed: bool,
) -> None:
    assert indexed, "the embedded dev server registers the search attributes"
    agents = AgentRegistry(
        [claims_assistant(ScriptedChatCompletionClient(), db.sessions, email_needs_approval=True)]
    )
    cid = new_id()
    async with run_worker(db, agents):
        turn = asyncio.create_task(
            conversations.ask(cid, "email the customer about claim 123", "m-1")
        )
        assert await listed(client, WAITING, cid)
        out = await temporal(
            temporal_address, "workflow", "list", "--query", f'{WAITING} AND WorkflowId="{cid}"'
        )
        assert [w["execution"]["workflowId"] for w in json.loads(out)] == [cid]
        call_id = (await conversations.state(cid)).pending_approvals[0].tool_call_id
        await conversations.decide(cid, ToolDecision(tool_call_id=call_id, approve=True))
        await turn
        assert await listed(client, 'ConversationStatus="idle" AND TurnCount=1', cid)
    attributes = (await client.get_workflow_handle(cid).describe()).typed_search_attributes
    assert attributes.get(AGENT_NAME) == "claims-assistant"
    assert attributes.get(CONVERSATION_STATUS) == "idle"
    assert attributes.get(TURN_COUNT) == 1


async def test_a_failed_conversation_is_searchable(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> None:
    cid = new_id()
    async with run_worker(db):
        handle = await conversations.start(cid, StartConversation(agent="nobody"))
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        assert await listed(client, 'AgentName="nobody" AND ConversationStatus="failed"', cid)
    attributes = (await client.get_workflow_handle(cid).describe()).typed_search_attributes
    assert attributes.get(CONVERSATION_STATUS) == "failed"
    assert attributes.get(TURN_COUNT) == 0
    # the new failure path replays (older histories, without its patch, in test_replay.py)
    replayer = Replayer(workflows=[AgentConversation], data_converter=client.data_converter)
    await replayer.replay_workflow(await handle.fetch_history())


async def activity_summaries(client: Client, cid: str) -> list[str]:
    """The summaries the Web UI shows beside each activity, decoded as it decodes them."""
    converter = client.data_converter
    history = await client.get_workflow_handle(cid).fetch_history()
    summaries = []
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            [payload] = await converter._decode_payload_sequence([event.user_metadata.summary])
            summaries.append(converter.payload_converter.from_payload(payload, str))
    return summaries


async def test_tool_activity_summaries_name_the_tool_and_its_arguments(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> None:
    cid = new_id()
    async with run_worker(db):
        await conversations.ask(cid, "Check policy status for claim 123", "m-1")
        await conversations.ask(cid, "add a note that the customer called", "m-2")
    summaries = await activity_summaries(client, cid)
    assert 'call tool: create_claim_note(claim_id=123, text="The customer called.")' in summaries
    assert "call tool: get_claim_status(claim_id=123)" in summaries
    assert "model: claims-assistant (turn 2, step 1)" in summaries


def test_tool_summaries_are_short_and_hide_secrets() -> None:
    arguments = json.dumps(
        {
            "to": "ada@example.com",
            "api_key": "abc123",
            "Authorization": "Basic xyz",
            "headers": {"X-Token": "t0k3n", "accept": "json"},
            "body": "Bearer eyJhbGciOi and sk-live-4242424242 " + "x" * 200,
        }
    )
    summary = _tool_summary(ToolCall(id="c-1", name="send_email", arguments=arguments))
    assert summary.startswith('call tool: send_email(to="ada@example.com", api_key=***, ')
    assert "Authorization=***" in summary and len(summary) <= 100
    for secret in ["abc123", "xyz", "t0k3n", "eyJhbGciOi", "4242"]:
        assert secret not in summary
    assert _tool_summary(ToolCall(id="c-2", name="ping")) == "call tool: ping()"
    assert _tool_summary(ToolCall(id="c-3", name="ping", arguments="{")) == "call tool: ping(…)"
