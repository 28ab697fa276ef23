"""A terminated or cancelled conversation is closed: its ID does not start an empty chain
that would lose the context and repeat a retried message's side effect."""

from __future__ import annotations

import httpx
import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities.db import Database
from activities.tables import LedgerEntry
from conversation_client import Conversations
from demo.tables import ClaimNote
from gateway import ApiKey, GatewayAuth, GatewaySettings, create_app
from interface import ErrorType
from support.databases import count
from support.ids import new_id
from support.workers import WorkerFactory

NOTE = "add a note to claim 123 that the customer called"
KEY = "closed-test-key-0123456789"


def closed_type(raised: pytest.ExceptionInfo[WorkflowUpdateFailedError]) -> str | None:
    cause = raised.value.cause
    return cause.type if isinstance(cause, ApplicationError) else None


@pytest.mark.parametrize("close", ["terminate", "cancel"])
async def test_a_closed_conversation_refuses_new_messages_and_repeats_no_effect(
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    client: Client,
    close: str,
) -> None:
    """The repro through the client: k1 makes a note; the conversation is closed; k2 and
    k1 again are refused with ConversationClosed, and no second note is made."""
    cid = new_id()
    async with run_worker(db):
        first = await conversations.ask(cid, NOTE, "k1")
        handle = conversations.handle(cid)
        if close == "terminate":
            await handle.terminate("test: close the conversation")
        else:
            await handle.cancel()
            with pytest.raises(Exception):  # noqa: B017 (cancelled: WorkflowFailureError)
                await handle.result()
        with pytest.raises(WorkflowUpdateFailedError) as new_message:
            await conversations.ask(cid, "!say hello again", "k2")
        with pytest.raises(WorkflowUpdateFailedError) as retried:
            await conversations.ask(cid, NOTE, "k1")
    assert first.tool_calls[0].status == "ok"
    assert closed_type(new_message) == ErrorType.CONVERSATION_CLOSED
    assert closed_type(retried) == ErrorType.CONVERSATION_CLOSED
    assert await count(db, ClaimNote, conversation_id=cid) == 1
    assert await count(db, LedgerEntry, conversation_id=cid, status="succeeded") == 1


async def test_the_gateway_answers_409_for_a_terminated_conversation(
    any_db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    """The issue's gateway repro: k1 creates a note, terminate, k1, k2, k1 again: one note."""
    settings = GatewaySettings(auth=GatewayAuth(keys=[ApiKey(name="tests", key=KEY)]))
    transport = httpx.ASGITransport(app=create_app(conversations, settings))
    headers = {"Authorization": f"Bearer {KEY}"}
    cid = new_id()

    async def post(text: str, idempotency_key: str) -> httpx.Response:
        return await http.post(
            f"/conversations/{cid}/messages",
            json={"text": text},
            headers={"Idempotency-Key": idempotency_key},
        )

    async with (
        run_worker(any_db),
        httpx.AsyncClient(transport=transport, base_url="http://gw", headers=headers) as http,
    ):
        created = await post(NOTE, "k1")
        await conversations.handle(cid).terminate("test: close the conversation")
        again = await post(NOTE, "k1")
        other = await post("!say hello", "k2")
        retried = await post(NOTE, "k1")
        asynchronous = await http.post(
            f"/conversations/{cid}/messages",
            json={"text": NOTE},
            headers={"Idempotency-Key": "k3"},
            params={"mode": "async"},
        )
    assert created.status_code == 200, created.text
    # the terminated run may still answer k1 from its update record; never a new turn
    assert (
        again.status_code == 200
        and again.json() == created.json()
        or (again.status_code == 409 and again.json()["error"] == "conversation_closed")
    ), again.text
    for response in (other, retried):
        assert response.status_code == 409, response.text
        assert response.json()["error"] == "conversation_closed"
    assert asynchronous.status_code in (202, 409), asynchronous.text
    assert await count(any_db, ClaimNote, conversation_id=cid) == 1
    assert await count(any_db, LedgerEntry, conversation_id=cid, status="succeeded") == 1
