"""`temporal workflow reset`: the reset conversation goes on on a branch of its own."""

from __future__ import annotations

from sqlalchemy import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.db import Database
from activities.tables import LedgerEntry
from conversation_client import Conversations
from demo.tables import ClaimNote
from support.databases import count
from support.ids import new_id
from support.temporal_cli import temporal
from support.workers import WorkerFactory

_COMPLETED = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
_ACCEPTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED


async def task_before(client: Client, conversation_id: str, update_id: str) -> int:
    """The event ID of the workflow task completed before the one that took `update_id`."""
    completed: list[int] = []
    async for event in client.get_workflow_handle(conversation_id).fetch_history_events():
        if event.event_type == _COMPLETED:
            completed.append(event.event_id)
        attributes = event.workflow_execution_update_accepted_event_attributes
        if event.event_type == _ACCEPTED and attributes.protocol_instance_id == update_id:
            return completed[-2]
    raise AssertionError(f"update {update_id} not in history")


async def reset(address: str, conversation_id: str, event_id: int) -> None:
    await temporal(
        address,
        "workflow",
        "reset",
        "--workflow-id",
        conversation_id,
        "--event-id",
        str(event_id),
        "--reason",
        "test: undo a turn",
        "--reapply-exclude",
        "All",
        "--yes",
    )


async def test_after_a_reset_a_new_message_gets_its_own_reply_and_effects(
    any_db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    client: Client,
    temporal_address: str,
) -> None:
    """The issue's repro: m1, m2 (a note), reset to before m2, m3. m3 is answered as m3,
    not with m2's recorded reply; a later note is a new call with a note of its own."""
    cid = new_id()
    async with run_worker(any_db):
        one = await conversations.ask(cid, "!say one", "m-1")
        undone = await conversations.ask(cid, "add a note to claim 123 that it rained", "m-2")
        await reset(temporal_address, cid, await task_before(client, cid, "m-2"))
        three = await conversations.ask(cid, "!say three", "m-3")
        note = await conversations.ask(cid, "add a note to claim 123 that it snowed", "m-4")
        state = await conversations.state(cid)
    assert one.reply == "one" and "note" in undone.reply
    assert (three.reply, three.turn, three.tool_calls) == ("three", 2, [])
    assert note.turn == 3 and [c.status for c in note.tool_calls] == ["ok"]
    async with any_db.session() as session:
        texts = (
            await session.scalars(
                select(ClaimNote.text)
                .where(ClaimNote.conversation_id == cid)
                .order_by(ClaimNote.id)
            )
        ).all()
    assert texts == ["To claim 123 that it rained.", "To claim 123 that it snowed."]
    assert await count(any_db, ClaimNote, conversation_id=cid) == 2  # one per real call
    assert await count(any_db, LedgerEntry, conversation_id=cid, status="succeeded") == 2
    assert [m.content for m in state.messages if m.role == "user"] == [
        "!say one",
        "!say three",
        "add a note to claim 123 that it snowed",
    ]
