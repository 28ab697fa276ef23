"""The append-only transcript, written idempotently by `(chain_id, seq)`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from activities.db import Database
from activities.tables import TranscriptMessage, utcnow
from interface import Message, SeqMessage


@dataclass
class Prepared:
    """What a model call finds before calling the model: one of the three."""

    duplicate: str | None = None
    recorded: Message | None = None
    window: list[SeqMessage] = field(default_factory=list)
    head: list[SeqMessage] = field(default_factory=list)
    """The conversation's first messages (the agent's `context_head`), kept in every window."""


class Transcript:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert = sqlite_insert if db.is_sqlite else pg_insert

    async def record(
        self, conversation_id: str, chain_id: str, answer: SeqMessage
    ) -> Message | None:
        """Write a model's answer at its position. Returns None if it was written, or the
        answer already there: another attempt of the same model call recorded it first."""
        statement = (
            self._insert(TranscriptMessage)
            .values([_row(conversation_id, chain_id, answer)])
            .on_conflict_do_nothing()
        )
        async with self._db.session() as session, session.begin():
            written = await session.execute(statement)
            if written.rowcount:  # type: ignore[attr-defined]
                return None
            body = await session.scalar(
                select(TranscriptMessage.body).where(
                    TranscriptMessage.chain_id == chain_id, TranscriptMessage.seq == answer.seq
                )
            )
        return Message.model_validate_json(body) if body else None

    async def prepare(
        self,
        conversation_id: str,
        chain_id: str,
        new_messages: list[SeqMessage],
        output_seq: int,
        limit: int,
        head: int = 0,
    ) -> Prepared:
        """One transaction before a model call: write the new messages, check for a
        duplicate turn, and read the recorded answer at `output_seq` (a retry after the
        answer was written) or else the window of the last `limit` messages before it, and
        the first `head` messages of the chain."""
        rows = [_row(conversation_id, chain_id, m) for m in new_messages]
        query = (
            select(TranscriptMessage.seq, TranscriptMessage.body)
            .where(TranscriptMessage.chain_id == chain_id, TranscriptMessage.seq <= output_seq)
            .order_by(TranscriptMessage.seq.desc())
            .limit(limit + 1)
        )
        session_factory = self._db.session if rows else self._db.read_session
        async with session_factory() as session, session.begin():
            if rows:
                await session.execute(
                    self._insert(TranscriptMessage).values(rows).on_conflict_do_nothing()
                )
                duplicate = await self._duplicate(session, chain_id, new_messages)
                if duplicate:
                    return Prepared(duplicate=duplicate)
            found = (await session.execute(query)).all()
            if found and found[0][0] == output_seq:
                return Prepared(recorded=Message.model_validate_json(found[0][1]))
            first = (
                (await session.execute(_first(chain_id, head, output_seq))).all() if head else []
            )
        return Prepared(window=_messages(reversed(found[:limit])), head=_messages(first))

    async def _duplicate(self, session, chain_id: str, messages: list[SeqMessage]) -> str | None:  # type: ignore[no-untyped-def]
        wanted = {m.message.message_id: m.seq for m in messages if m.message.message_id}
        if not wanted:
            return None
        stored = await session.execute(
            select(TranscriptMessage.message_id, TranscriptMessage.seq).where(
                TranscriptMessage.chain_id == chain_id,
                TranscriptMessage.message_id.in_(list(wanted)),
            )
        )
        for message_id, seq in stored:
            if wanted[message_id] != seq:
                return str(message_id)
        return None


def _first(chain_id: str, head: int, output_seq: int):  # type: ignore[no-untyped-def]
    return (
        select(TranscriptMessage.seq, TranscriptMessage.body)
        .where(TranscriptMessage.chain_id == chain_id, TranscriptMessage.seq < output_seq)
        .order_by(TranscriptMessage.seq)
        .limit(head)
    )


def _messages(rows: Iterable[Any]) -> list[SeqMessage]:
    return [SeqMessage(seq=s, message=Message.model_validate_json(b)) for s, b in rows]


def _row(conversation_id: str, chain_id: str, item: SeqMessage) -> dict[str, object]:
    return {
        "conversation_id": conversation_id,
        "chain_id": chain_id,
        "seq": item.seq,
        "role": item.message.role,
        "message_id": item.message.message_id,
        "body": item.message.model_dump_json(exclude_defaults=True),
        "created_at": utcnow(),
    }
