"""With encryption on, the worker refuses what a client without the keys sends (issue 15,
finding 8): an `ask` is rejected before it enters history, a signal is dropped, and our
clients say to set AGENT_CODEC_KEYS instead of crashing on the encrypted reply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.db import Database
from activities.tables import TranscriptMessage
from agent_conversations import AgentConversationsPlugin
from codec import KeyRing, generate_key_entry
from conversation_client import Conversations, EncryptedConversation, connect
from gateway import ApiKey, GatewayAuth, GatewaySettings, create_app
from interface import ErrorType, UserMessage
from settings import WorkerSettings
from support.databases import count
from support.ids import new_id
from support.starter import run_starter
from worker import default_agents

PLAINTEXT = "plaintext-pineapple for claim 123"


@pytest.fixture
async def secure(
    temporal_address: str, task_queue: str, db: Database
) -> AsyncIterator[Conversations]:
    """A keyed client, and an encrypted worker on its connection, until the test ends."""
    ring = KeyRing.parse(generate_key_entry("k1"))
    agents = default_agents(WorkerSettings(), db)
    plugin = AgentConversationsPlugin(agents, db, keys=ring, search_attributes=False)
    client = await Client.connect(temporal_address, plugins=[plugin])
    async with Worker(client, task_queue=task_queue):
        yield Conversations(client, task_queue)


async def stored(client: Client, cid: str) -> bytes:
    history = await client.get_workflow_handle(cid).fetch_history()
    return b"".join(event.SerializeToString() for event in history.events)


async def test_a_keyless_ask_is_rejected_before_it_enters_history(
    secure: Conversations, temporal_address: str, task_queue: str, client: Client, db: Database
) -> None:
    cid = new_id("strict")
    await secure.ask(cid, "!say encrypted hello", "m-1")
    keyless = Conversations(await connect(temporal_address), task_queue)
    with pytest.raises(WorkflowUpdateFailedError) as rejected:
        await asyncio.wait_for(keyless.ask(cid, PLAINTEXT, "m-2"), 30)
    cause = rejected.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == ErrorType.ENCRYPTION_REQUIRED
    state = await secure.state(cid)
    assert state.turn_count == 1
    assert PLAINTEXT.encode() not in await stored(client, cid)
    assert await count(db, TranscriptMessage, conversation_id=cid) == 2


async def test_a_keyless_signal_is_dropped(
    secure: Conversations, temporal_address: str, task_queue: str, db: Database
) -> None:
    cid = new_id("strict")
    await secure.ask(cid, "!say encrypted hello", "m-1")
    keyless = await connect(temporal_address)
    await keyless.get_workflow_handle(cid).signal(
        "user_message", UserMessage(message_id="m-2", text=PLAINTEXT)
    )
    await secure.ask(cid, "!say after", "m-3")
    state = await secure.state(cid)
    assert state.turn_count == 2  # m-1 and m-3: the plaintext m-2 never became a turn
    assert all(PLAINTEXT not in m.content for m in state.messages)
    assert await count(db, TranscriptMessage, conversation_id=cid) == 4


async def test_a_keyless_client_reading_state_gets_the_hint(
    secure: Conversations, temporal_address: str, task_queue: str
) -> None:
    cid = new_id("strict")
    await secure.ask(cid, "!say encrypted hello", "m-1")
    keyless = Conversations(await connect(temporal_address), task_queue)
    with pytest.raises(EncryptedConversation, match="set AGENT_CODEC_KEYS"):
        await keyless.state(cid)


@pytest.mark.e2e
async def test_the_keyless_cli_says_set_the_keys(
    secure: Conversations, temporal_address: str, task_queue: str, client: Client
) -> None:
    cid = new_id("strict")
    await secure.ask(cid, "!say encrypted hello", "m-1")
    target = ("--address", temporal_address, "--task-queue", task_queue)
    for command in (("state", cid), ("ask", cid, PLAINTEXT)):
        run = await run_starter(*target, *command)
        assert run.code in (1, 2), run
        assert "Traceback" not in run.err, run.err
        assert "this conversation is encrypted: set AGENT_CODEC_KEYS" in run.err, run.err
    assert PLAINTEXT.encode() not in await stored(client, cid)


async def test_a_keyless_gateway_answers_502_encrypted_conversation(
    secure: Conversations, temporal_address: str, task_queue: str, client: Client
) -> None:
    cid = new_id("strict")
    await secure.ask(cid, "!say encrypted hello", "m-1")
    keyless = Conversations(await connect(temporal_address), task_queue)
    key = "strict-gateway-key-0123456789"
    settings = GatewaySettings(auth=GatewayAuth(keys=[ApiKey(name="t", key=key)]))
    transport = httpx.ASGITransport(app=create_app(keyless, settings))
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway", headers=headers
    ) as http:
        state = await http.get(f"/conversations/{cid}")
        sent = await http.post(
            f"/conversations/{cid}/messages",
            json={"text": PLAINTEXT},
            headers={"Idempotency-Key": "k-1"},
        )
    for response in (state, sent):
        assert response.status_code == 502, response.text
        assert response.json()["error"] == "encrypted_conversation"
        assert "set AGENT_CODEC_KEYS" in response.json()["message"]
    assert PLAINTEXT.encode() not in await stored(client, cid)
