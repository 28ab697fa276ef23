"""The append-only transcript, written idempotently by `(chain_id, seq)`.

A chain is one line of the conversation: the first run's ID, which continue-as-new keeps.
`temporal workflow reset` keeps it too, so a reset conversation finds the abandoned branch's
rows at the seqs it writes next. A row is only taken as written when it holds the message
asked for; when another message holds its seq, the conversation forks onto a chain of its
own (the reset run's ID): the rows before the fork are copied, the rest is new.
"""

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
    chain_id: str = ""
    """The chain written to: the one asked for, or the branch it forked onto."""
    head: list[SeqMessage] = field(default_factory=list)
    """The conversation's first messages (the agent's `context_head`), kept in every window."""


class TranscriptConflict(Exception):
    """A seq holds another message even on the branch: a bug, never retried."""


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
        branch_id: str,
        head: int = 0,
    ) -> Prepared:
        """One transaction before a model call: write the new messages (forking onto
        `branch_id` if their seqs hold other messages), check for a duplicate turn, and
        read the recorded answer at `output_seq` (a retry after the answer was written) or
        else the window of the last `limit` messages before it, and the first `head`
        messages of the chain."""
        session_factory = self._db.session if new_messages else self._db.read_session
        async with session_factory() as session, session.begin():
            chain = chain_id
            if new_messages:
                chain = await self._write(
                    session, conversation_id, chain_id, new_messages, branch_id
                )
                duplicate = await self._duplicate(session, chain, new_messages)
                if duplicate:
                    return Prepared(duplicate=duplicate, chain_id=chain)
            found = (await session.execute(_window(chain, output_seq, limit))).all()
            if found and found[0][0] == output_seq:
                recorded = Message.model_validate_json(found[0][1])
                return Prepared(recorded=recorded, chain_id=chain)
            first = (await session.execute(_first(chain, head, output_seq))).all() if head else []
        window = _messages(reversed(found[:limit]))
        return Prepared(window=window, chain_id=chain, head=_messages(first))

    async def has_other_chains(self, conversation_id: str, chain_id: str) -> bool:
        """The conversation has rows, none on `chain_id` (its first run's chain, which
        a reset keeps): an earlier conversation under this ID was closed for good."""
        async with self._db.read_session() as session:
            chains = set(
                await session.scalars(
                    select(TranscriptMessage.chain_id)
                    .where(TranscriptMessage.conversation_id == conversation_id)
                    .distinct()
                )
            )
        return bool(chains) and chain_id not in chains

    async def _write(  # type: ignore[no-untyped-def]
        self,
        session,
        conversation_id: str,
        chain_id: str,
        messages: list[SeqMessage],
        branch_id: str,
    ) -> str:
        """Writes the messages at their seqs; returns the chain that holds them."""
        if await self._insert_matching(session, conversation_id, chain_id, messages):
            return chain_id
        if branch_id == chain_id:
            raise TranscriptConflict(f"chain {chain_id!r} holds other messages at these seqs")
        fork = min(m.seq for m in messages)
        prefix = await session.execute(
            select(TranscriptMessage).where(
                TranscriptMessage.chain_id == chain_id, TranscriptMessage.seq < fork
            )
        )
        copied = [_copy(row, branch_id) for row in prefix.scalars()]
        if copied:
            await session.execute(
                self._insert(TranscriptMessage).values(copied).on_conflict_do_nothing()
            )
        if not await self._insert_matching(session, conversation_id, branch_id, messages):
            raise TranscriptConflict(f"branch {branch_id!r} holds other messages")
        return branch_id

    async def _insert_matching(  # type: ignore[no-untyped-def]
        self, session, conversation_id: str, chain_id: str, messages: list[SeqMessage]
    ) -> bool:
        """Inserts what is not there yet; True if every seq then holds its message."""
        rows = [_row(conversation_id, chain_id, m) for m in messages]
        await session.execute(self._insert(TranscriptMessage).values(rows).on_conflict_do_nothing())
        stored = await session.execute(
            select(TranscriptMessage.seq, TranscriptMessage.body).where(
                TranscriptMessage.chain_id == chain_id,
                TranscriptMessage.seq.in_([r["seq"] for r in rows]),
            )
        )
        wanted = {r["seq"]: r["body"] for r in rows}
        return all(wanted[seq] == body for seq, body in stored)

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


def _window(chain_id: str, output_seq: int, limit: int):  # type: ignore[no-untyped-def]
    return (
        select(TranscriptMessage.seq, TranscriptMessage.body)
        .where(TranscriptMessage.chain_id == chain_id, TranscriptMessage.seq <= output_seq)
        .order_by(TranscriptMessage.seq.desc())
        .limit(limit + 1)
    )


def _first(chain_id: str, head: int, output_seq: int):  # type: ignore[no-untyped-def]
    return (
        select(TranscriptMessage.seq, TranscriptMessage.body)
        .where(TranscriptMessage.chain_id == chain_id, TranscriptMessage.seq < output_seq)
        .order_by(TranscriptMessage.seq)
        .limit(head)
    )


def _messages(rows: Iterable[Any]) -> list[SeqMessage]:
    return [SeqMessage(seq=s, message=Message.model_validate_json(b)) for s, b in rows]


def _copy(row: TranscriptMessage, chain_id: str) -> dict[str, object]:
    """A prefix row of the chain a branch forks from, on the branch."""
    return {
        "conversation_id": row.conversation_id,
        "chain_id": chain_id,
        "seq": row.seq,
        "role": row.role,
        "message_id": row.message_id,
        "body": row.body,
        "created_at": row.created_at,
    }


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
