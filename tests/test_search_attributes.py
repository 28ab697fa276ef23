"""Conversations keep AgentName, ConversationStatus and TurnCount current, so a person can
filter them in the Web UI or with `temporal workflow list --query`."""

from __future__ import annotations

import asyncio
import json

from temporalio.client import Client

from activities.db import Database
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.agent import claims_assistant
from demo.scripted_model import ScriptedChatCompletionClient
from interface import ToolDecision
from interface.search_attributes import AGENT_NAME, CONVERSATION_STATUS, TURN_COUNT
from tests.conftest import WorkerFactory, new_id
from tests.test_plain_json import temporal

WAITING = 'AgentName="claims-assistant" AND ConversationStatus="waiting_approval"'


async def listed(client: Client, query: str, cid: str) -> bool:
    """Visibility is eventually consistent: poll for a few seconds."""
    for _ in range(50):
        if [e async for e in client.list_workflows(f'{query} AND WorkflowId="{cid}"')]:
            return True
        await asyncio.sleep(0.1)
    return False


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
