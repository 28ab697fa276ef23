"""The transcript's writes on SQLite and PostgreSQL, with real rows: the first answer recorded
wins, a retried write finds its rows, a message sent twice is a duplicate, and a seq that
holds another message forks the conversation onto its branch."""

from __future__ import annotations

from sqlalchemy import func, select

from activities.db import Database
from activities.tables import TranscriptMessage
from activities.transcript import Transcript
from interface import Message, SeqMessage


def user(seq: int, text: str, message_id: str) -> SeqMessage:
    return SeqMessage(seq=seq, message=Message(role="user", content=text, message_id=message_id))


def answer(seq: int, text: str) -> SeqMessage:
    return SeqMessage(seq=seq, message=Message(role="assistant", content=text))


async def rows(db: Database, chain: str) -> list[tuple[int, str]]:
    async with db.session() as session:
        found = await session.execute(
            select(TranscriptMessage.seq, TranscriptMessage.body)
            .where(TranscriptMessage.chain_id == chain)
            .order_by(TranscriptMessage.seq)
        )
    return [(seq, Message.model_validate_json(body).content) for seq, body in found]


async def test_first_recorded_answer_wins(any_db: Database) -> None:
    transcript = Transcript(any_db)
    assert await transcript.record("c1", "chain-1", answer(2, "first")) is None
    again = await transcript.record("c1", "chain-1", answer(2, "second"))
    assert again is not None and again.content == "first"  # the other attempt's answer
    assert await rows(any_db, "chain-1") == [(2, "first")]


async def test_window_retry_duplicate_and_fork(any_db: Database) -> None:
    transcript = Transcript(any_db)
    found = await transcript.prepare("c2", "chain-2", [user(1, "hi", "m1")], 2, 10, "run-2")
    assert [m.message.content for m in found.window] == ["hi"] and found.chain_id == "chain-2"
    await transcript.record("c2", "chain-2", answer(2, "hello"))
    # a retry of the same call: its rows are there, the recorded answer comes back
    retried = await transcript.prepare("c2", "chain-2", [user(1, "hi", "m1")], 2, 10, "run-2")
    assert retried.recorded is not None and retried.recorded.content == "hello"
    # the same message ID at a later seq: a turn sent twice
    twice = await transcript.prepare("c2", "chain-2", [user(3, "hi", "m1")], 4, 10, "run-2")
    assert twice.duplicate == "m1"
    # another message at seq 1 (a reset run): the branch gets the rows before it, and it
    next_turn = await transcript.prepare("c2", "chain-2", [user(3, "more", "m3")], 4, 1, "run-2")
    assert [m.seq for m in next_turn.window] == [3]  # a window of one: the newest message
    forked = await transcript.prepare("c2", "chain-2", [user(3, "other", "m4")], 4, 10, "run-3")
    assert forked.chain_id == "run-3"
    assert [m.message.content for m in forked.window] == ["hi", "hello", "other"]
    assert await rows(any_db, "run-3") == [(1, "hi"), (2, "hello"), (3, "other")]
    async with any_db.session() as session:
        total = await session.scalar(select(func.count()).select_from(TranscriptMessage))
    assert total == 3 + 3  # chain-2 (1, 2, 3) and the branch: nothing written twice
