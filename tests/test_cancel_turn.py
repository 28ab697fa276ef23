"""`cancel_turn` interrupts the running turn: a tool that heartbeats and a model that
streams are cancelled through their heartbeats, the transcript and the ledger stay
consistent, committed effects are reported, and the queued and next turns run."""

from __future__ import annotations

import asyncio

from autogen_core.models import AssistantMessage
from temporalio.client import Client

from activities.db import Database
from conversation_client import Conversations
from demo.tables import ClaimNote
from interface import CancelTurnResult, ErrorType
from support.databases import count
from support.ids import new_id
from support.interrupts import (
    START,
    TOOLS,
    Deltas,
    StreamingModel,
    interruptible_worker,
    ledger_rows,
    ledger_shows,
    transcript,
    until,
    watching_client,
)


async def test_cancelled_tools_report_the_ledger_and_the_queued_turn_runs(
    client: Client, task_queue: str, any_db: Database, conversations: Conversations
) -> None:
    db, model, cid = any_db, StreamingModel(), new_id()
    async with interruptible_worker(client, task_queue, db, model):
        first = asyncio.create_task(conversations.ask(cid, TOOLS, "m-1", START))
        expected_running = {"create_claim_note": "succeeded", "slow_transfer": "claimed"}
        await until(lambda: ledger_shows(db, cid, expected_running))
        queued = asyncio.create_task(conversations.ask(cid, "!say still here", "m-2", START))
        await until(lambda: _queued(conversations, cid))

        other = await conversations.cancel_turn(cid, message_id="m-2")
        assert other == CancelTurnResult(cancelled=False, message_id="m-2")
        cancel = await conversations.cancel_turn(cid, message_id="m-1", reason="user pressed stop")
        assert cancel == CancelTurnResult(cancelled=True, message_id="m-1", turn=1)
        result = await asyncio.wait_for(first, 15)
        after = await asyncio.wait_for(queued, 15)
        idle = await conversations.cancel_turn(cid)
        state = await conversations.state(cid)

    assert result.status == "interrupted" and result.turn == 1
    assert result.error is not None and result.error.type == ErrorType.TURN_INTERRUPTED
    assert result.error.message == "user pressed stop"
    calls = {c.name: c for c in result.tool_calls}
    assert calls["create_claim_note"].status == "ok"  # committed: reported with its result
    assert '"note_id"' in calls["create_claim_note"].result
    assert calls["wait_for_payment"].status == "error"  # nothing was sent
    assert ErrorType.TURN_INTERRUPTED in calls["wait_for_payment"].result
    assert calls["slow_transfer"].status == "unknown"  # stopped midway: a person checks
    # the ledger: the note's row, no row for the call that sent nothing, none left claimed
    assert await ledger_rows(db, cid) == {
        "create_claim_note": "succeeded",
        "slow_transfer": "unknown",
    }
    assert await count(db, ClaimNote, conversation_id=cid) == 1
    # the queued turn ran; the transcript is whole: every tool call has its result
    assert after.status == "completed" and after.reply == "still here"
    roles = [(m.role, m.tool_call_id) for _, m in await transcript(db, cid)]
    call_ids = [c.id for c in (await transcript(db, cid))[1][1].tool_calls]
    assert roles == [
        ("user", None),
        ("assistant", None),
        *[("tool", call_id) for call_id in call_ids],
        ("user", None),
        ("assistant", None),
    ]
    assert idle == CancelTurnResult(cancelled=False)
    assert state.status == "idle" and state.turn_count == 2


async def _queued(conversations: Conversations, cid: str) -> bool:
    return (await conversations.state(cid)).queued_turns == 1


async def test_a_cancelled_stream_keeps_its_text_and_the_next_turn_sees_it(
    client: Client, task_queue: str, db: Database, conversations: Conversations
) -> None:
    model, deltas, cid = StreamingModel(), Deltas(), new_id()
    watched = watching_client(client, task_queue, db)
    async with interruptible_worker(client, task_queue, db, model):
        watcher = await deltas.watching(watched, cid)
        first = asyncio.create_task(conversations.ask(cid, "!stream 60", "m-1", START))

        async def streaming() -> bool:
            return len(deltas.received) >= 3

        await until(streaming)
        shown = "".join(deltas.received)
        cancel = await conversations.cancel_turn(cid)
        result = await asyncio.wait_for(first, 15)
        await asyncio.wait_for(watcher, 15)  # the watcher has all the turn's text
        following = await conversations.ask(cid, "!say fine", "m-2", START)

    assert cancel == CancelTurnResult(cancelled=True, message_id="m-1", turn=1)
    assert result.status == "interrupted"
    # the reply is what was streamed: what the user saw, and the few words sent before the
    # cancel reached the activity; far from the whole answer
    assert result.reply.startswith(shown) and result.reply == "".join(deltas.received)
    assert 3 * len("word0 ") <= len(result.reply) < len("".join(f"word{i} " for i in range(60)))
    rows = await transcript(db, cid)
    assert [(seq, m.role, m.interrupted) for seq, m in rows] == [
        (0, "user", False),
        (1, "assistant", True),
        (2, "user", False),
        (3, "assistant", False),
    ]
    assert rows[1][1].content == result.reply
    # the next turn works, and its model saw the partial answer
    assert following.status == "completed" and following.reply == "fine"
    seen = [m.content for m in model.prompts[-1] if isinstance(m, AssistantMessage)]
    assert seen == [result.reply]
