"""The append-only transcript, written idempotently by `(chain_id, seq)`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from activities.db import Database
from activities.tables import TranscriptMessage, utcnow
from interface import Message, SeqMessage


class Transcript:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert = sqlite_insert if db.is_sqlite else pg_insert

    async def append(
        self, conversation_id: str, chain_id: str, messages: list[SeqMessage]
    ) -> str | None:
        """Write messages not yet written. Returns the message_id of a user message that
        already stands at another position (a duplicate turn), else None."""
        if not messages:
            return None
        rows = [_row(conversation_id, chain_id, m) for m in messages]
        statement = self._insert(TranscriptMessage).values(rows).on_conflict_do_nothing()
        async with self._db.session() as session, session.begin():
            await session.execute(statement)
            return await self._duplicate(session, chain_id, messages)

    async def get(self, chain_id: str, seq: int) -> Message | None:
        async with self._db.session() as session:
            body = await session.scalar(
                select(TranscriptMessage.body).where(
                    TranscriptMessage.chain_id == chain_id, TranscriptMessage.seq == seq
                )
            )
        return Message.model_validate_json(body) if body else None

    async def recent(self, chain_id: str, before_seq: int, limit: int) -> list[SeqMessage]:
        """The last `limit` messages before `before_seq`, oldest first."""
        query = (
            select(TranscriptMessage.seq, TranscriptMessage.body)
            .where(TranscriptMessage.chain_id == chain_id, TranscriptMessage.seq < before_seq)
            .order_by(TranscriptMessage.seq.desc())
            .limit(limit)
        )
        async with self._db.session() as session:
            rows = (await session.execute(query)).all()
        return [
            SeqMessage(seq=s, message=Message.model_validate_json(b)) for s, b in reversed(rows)
        ]

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
