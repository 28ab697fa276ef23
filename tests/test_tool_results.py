"""A tool with effects writes its result message in the transaction that records its ledger
row; the next model call then carries only what is not in the transcript yet."""

from __future__ import annotations

import json

from pydantic import BaseModel
from sqlalchemy import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.db import Database
from activities.ledger import Ledger
from activities.tables import LedgerEntry, TranscriptMessage
from activities.tools import ToolActivities
from activities.transcript import Transcript
from agents.definitions import AgentDefinition
from agents.errors import ToolError
from agents.registry import AgentRegistry
from agents.tools import ToolContext, tool
from conversation_client import Conversations
from demo.agent import claims_assistant
from demo.scripted_model import ScriptedChatCompletionClient
from demo.tables import ClaimNote, OutboxEmail
from interface import Message, ToolCallInput
from support.databases import count
from support.ids import new_id
from support.workers import WorkerFactory


def _payload(payloads) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(payloads.payloads[0].data)


async def _activities(client: Client, cid: str) -> list[tuple[str, dict, dict]]:
    """(activity type, input, result) of each completed activity, in schedule order."""
    history = await client.get_workflow_handle(cid).fetch_history()
    scheduled: dict[int, tuple[str, dict]] = {}
    done = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = (attrs.activity_type.name, _payload(attrs.input))
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attrs = event.activity_task_completed_event_attributes
            name, given = scheduled[attrs.scheduled_event_id]
            done.append((name, given, _payload(attrs.result)))
    return done


async def _transcript(db: Database, cid: str) -> list[tuple[int, Message]]:
    query = (
        select(TranscriptMessage.seq, TranscriptMessage.body)
        .where(TranscriptMessage.conversation_id == cid)
        .order_by(TranscriptMessage.seq)
    )
    async with db.read_session() as session:
        rows = (await session.execute(query)).all()
    return [(seq, Message.model_validate_json(body)) for seq, body in rows]


async def test_effects_write_their_results_and_reads_leave_them_to_the_model_call(
    any_db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> None:
    cid = new_id()
    async with run_worker(any_db):
        status = await conversations.ask(cid, "Check policy status for claim 123", "m-1")
        note = await conversations.ask(cid, "add a note that the customer called", "m-2")
        email = await conversations.ask(cid, "email the customer an update", "m-3")
    assert "Claim 123 is in_review" in status.reply
    assert note.tool_calls[0].status == "ok" and "ada@example.com" in email.reply
    assert await count(any_db, ClaimNote, conversation_id=cid) == 1
    assert await count(any_db, OutboxEmail, conversation_id=cid) == 1

    activities = await _activities(client, cid)
    tools = [(given, result) for name, given, result in activities if name == "agent.call_tool-v1"]
    assert [given["name"] for given, _ in tools] == [
        "get_claim_status",
        "create_claim_note",
        "send_customer_email",
    ]
    written = {given["name"]: result.get("written", False) for given, result in tools}
    assert written == {
        "get_claim_status": False,  # a read tool has no transaction: the model call writes it
        "create_claim_note": True,  # with the note and its ledger row
        "send_customer_email": True,  # with the ledger row that records the sent email
    }

    # each tool's result message is at the seq it was given, once, and the model call
    # after a tool carries the result only when the tool did not write it
    transcript = dict(await _transcript(any_db, cid))
    assert sorted(transcript) == list(range(len(transcript))), "no seq skipped"
    models = [given for name, given, _ in activities if name == "agent.model_call-v1"]
    for given, result in tools:
        [seq] = given["result_seqs"]
        message = transcript[seq]
        assert (message.role, message.tool_call_id) == ("tool", given["call_ids"][0])
        assert message.content == result["content"] and message.name == given["name"]
        carried = [m["seq"] for call in models for m in call["new_messages"]]
        assert (seq in carried) is not result.get("written", False)


async def test_a_retried_tool_returns_the_ledgers_result_and_writes_nothing(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> None:
    """A tool attempt that committed, then failed to report (its worker died): the next
    attempt returns the ledger's result, not `written` (the workflow then carries the
    message to the model call, which finds it written), and adds no note."""
    cid = new_id()
    note = '!call create_claim_note {"claim_id": 123, "text": "the customer called"}'
    async with run_worker(db):
        first = await conversations.ask(cid, note, "m-1")
        activities = await _activities(client, cid)
    [(given, result)] = [(g, r) for n, g, r in activities if n == "agent.call_tool-v1"]
    assert result["written"] is True and first.tool_calls[0].status == "ok"
    agents = AgentRegistry([claims_assistant(ScriptedChatCompletionClient(), db.sessions)])
    tools = ToolActivities(agents, Ledger(db), Transcript(db))
    # the same call again, as its retry would make it: the ledger row is final
    retried = await ActivityEnvironment().run(tools.call_tool, ToolCallInput(**given))
    assert retried.content == result["content"] and not retried.written
    assert await count(db, ClaimNote, conversation_id=cid) == 1


class NoteArgs(BaseModel):
    text: str


async def test_a_failed_database_tool_records_its_failure_without_its_writes(
    any_db: Database,
) -> None:
    """A database tool that wrote a row, then raised its own error: the model hears of the
    failure (recorded in the ledger, its result message written), the row is gone, and a
    retry of the call returns the recorded failure without running the tool again."""
    runs: list[str] = []

    @tool(kind="database")
    async def note_then_fail(ctx: ToolContext, args: NoteArgs) -> dict[str, int]:
        """Add a note, then refuse."""
        runs.append(args.text)
        ctx.db.add(ClaimNote(claim_id=123, text=args.text, conversation_id=cid, ledger_key="k"))
        await ctx.db.flush()
        raise ToolError("the claim is closed")

    model = ScriptedChatCompletionClient()
    agents = AgentRegistry([AgentDefinition("failing", "fails", model, tools=[note_then_fail])])
    tools = ToolActivities(agents, Ledger(any_db), Transcript(any_db))
    cid = new_id()
    request = ToolCallInput(
        conversation_id=cid,
        chain_id=cid,
        agent="failing",
        turn=0,
        key=f"{cid}/{cid}/0/c0",
        name="note_then_fail",
        arguments='{"text": "kept?"}',
        call_ids=["call-1"],
        result_seqs=[2],
    )
    failed = await ActivityEnvironment().run(tools.call_tool, request)
    assert failed.status == "error" and failed.error_type == "ToolError" and failed.written
    assert "the claim is closed" in json.loads(failed.content)["message"]
    assert await count(any_db, ClaimNote, conversation_id=cid) == 0
    async with any_db.read_session() as session:
        entry = await session.get(LedgerEntry, request.key)
    assert entry is not None and entry.status == "failed"
    [(seq, message)] = await _transcript(any_db, cid)
    assert (seq, message.role, message.is_error) == (2, "tool", True)
    assert message.content == failed.content

    retried = await ActivityEnvironment().run(tools.call_tool, request)
    assert retried.content == failed.content and not retried.written
    assert runs == ["kept?"]
