"""The append-only transcript, written idempotently by `(chain_id, seq)`.

A chain is one line of the conversation: the first run's ID, which continue-as-new keeps.
`temporal workflow reset` keeps it too, so a reset conversation finds the abandoned branch's
rows at the seqs it writes next. A row is only taken as written when it holds the message
asked for; when another message holds its seq, the conversation forks onto a chain of its
own (the reset run's ID): the rows before the fork are copied, the rest is new.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

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


PARSED_CACHED = 4096
"""Parsed messages a worker keeps for the windows of its next model calls."""


class TranscriptConflict(Exception):
    """A seq holds another message even on the branch: a bug, never retried."""


class Transcript:
    """Core statements built once, so SQLAlchemy compiles each once per worker; a model
    call's transaction writes its new messages, reads the window, and checks the written
    rows against the window it read: the common case costs one INSERT and one SELECT.
    Its transactions run on the blocking driver, in the database's threads
    (`Database.run`); `write_on` writes in the caller's async transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db
        insert = sqlite_insert if db.is_sqlite else pg_insert
        # preserve_rowcount: psycopg's async cursor reports -1 for an INSERT otherwise, and
        # `record` would take an answer another attempt wrote first for its own
        self._insert = (
            insert(_TABLE).on_conflict_do_nothing().execution_options(preserve_rowcount=True)
        )
        self._parsed: OrderedDict[tuple[str, int], tuple[str, SeqMessage]] = OrderedDict()
        """Messages parsed for earlier windows, by chain and seq, with the body they were
        parsed from: a row read again with the same body is not parsed again."""

    async def record(
        self, conversation_id: str, chain_id: str, answer: SeqMessage
    ) -> Message | None:
        """Write a model's answer at its position. Returns None if it was written, or the
        answer already there: another attempt of the same model call recorded it first."""
        row = _row(conversation_id, chain_id, answer)

        def write(conn: Connection) -> str | None:
            if conn.execute(self._insert, row).rowcount:
                return None
            return conn.scalar(_BODY_AT, {"chain": chain_id, "seq": answer.seq})

        body = await self._db.run(write)
        return Message.model_validate_json(body) if body else None

    async def write_on(
        self,
        conn: AsyncConnection | AsyncSession,
        conversation_id: str,
        chain_id: str,
        items: list[SeqMessage],
    ) -> bool:
        """Write `items` in the caller's transaction (the tool ledger's, with the effect):
        True if every row was new. False leaves the rows to the next model call, which
        checks each seq against what it holds (a reset's abandoned branch forks there)."""
        written = await conn.execute(
            self._insert, [_row(conversation_id, chain_id, m) for m in items]
        )
        return bool(written.rowcount == len(items))  # type: ignore[attr-defined]

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
        rows = [_row(conversation_id, chain_id, m) for m in new_messages]

        def read(conn: Connection) -> _Read:
            chain = chain_id
            found: list[Any] = []
            if rows:
                conn.execute(self._insert, rows)
                found = _read_window(conn, chain, output_seq, limit)
                stored = _covered(found, rows, output_seq, limit)
                if stored is None:  # the window does not reach back to every new seq
                    stored = _stored(conn, chain, rows)
                wanted = {r["seq"]: r["body"] for r in rows}
                if any(wanted[seq] != body for seq, body in stored.items()):
                    chain = self._fork(conn, conversation_id, chain_id, rows, branch_id)
                    found = []
                if chain != chain_id or len(stored) < len(rows):
                    # a seq left empty: its message ID may be held at another seq
                    duplicate = _duplicate(conn, chain, new_messages)
                    if duplicate:
                        return _Read(chain, duplicate=duplicate)
            if not found:
                found = _read_window(conn, chain, output_seq, limit)
            if found and found[0][0] == output_seq:
                return _Read(chain, recorded=found[0][1])
            first: list[Any] = []
            if head:
                params = {"chain": chain, "upto": output_seq, "n": head}
                first = list(conn.execute(_FIRST, params).all())
            return _Read(chain, window=found[:limit], head=first)

        done = await self._db.run(read, read_only=not rows)
        chain = done.chain_id
        if done.duplicate:
            return Prepared(duplicate=done.duplicate, chain_id=chain)
        if done.recorded is not None:
            return Prepared(recorded=Message.model_validate_json(done.recorded), chain_id=chain)
        window = self._messages(chain, reversed(done.window))
        return Prepared(window=window, chain_id=chain, head=self._messages(chain, done.head))

    def _messages(self, chain_id: str, rows: Iterable[Any]) -> list[SeqMessage]:
        parsed, window = self._parsed, []
        for seq, body in rows:
            key = (chain_id, seq)
            known = parsed.get(key)
            if known is not None and known[0] == body:
                parsed.move_to_end(key)
                item = known[1]
            else:
                message = Message.model_validate_json(body)
                item = SeqMessage.model_construct(seq=seq, message=message)
                parsed[key] = (body, item)
                if len(parsed) > PARSED_CACHED:
                    parsed.popitem(last=False)
            window.append(item)
        return window

    async def has_other_chains(self, conversation_id: str, chain_id: str) -> bool:
        """The conversation has rows, none on `chain_id` (its first run's chain, which
        a reset keeps): an earlier conversation under this ID was closed for good."""
        query = (
            select(_TABLE.c.chain_id).where(_TABLE.c.conversation_id == conversation_id).distinct()
        )
        chains = await self._db.run(lambda conn: set(conn.scalars(query)), read_only=True)
        return bool(chains) and chain_id not in chains

    def _fork(
        self,
        conn: Connection,
        conversation_id: str,
        chain_id: str,
        rows: list[dict[str, Any]],
        branch_id: str,
    ) -> str:
        """The chain's seqs hold other messages: copy the rows before the fork onto
        `branch_id`, write the new messages there, and return it."""
        if branch_id == chain_id:
            raise TranscriptConflict(f"chain {chain_id!r} holds other messages at these seqs")
        fork = min(r["seq"] for r in rows)
        prefix = conn.execute(
            select(_TABLE).where(_TABLE.c.chain_id == chain_id, _TABLE.c.seq < fork)
        )
        copied = [_copy(row, branch_id) for row in prefix.mappings()]
        if copied:
            conn.execute(self._insert, copied)
        branch_rows = [r | {"chain_id": branch_id} for r in rows]
        conn.execute(self._insert, branch_rows)
        stored = _stored(conn, branch_id, branch_rows)
        if any(r["body"] != stored.get(r["seq"], r["body"]) for r in branch_rows):
            raise TranscriptConflict(f"branch {branch_id!r} holds other messages")
        return branch_id


@dataclass
class _Read:
    """What `prepare`'s transaction found, as stored: parsed back on the event loop."""

    chain_id: str
    duplicate: str | None = None
    recorded: str | None = None
    window: list[Any] = field(default_factory=list)
    head: list[Any] = field(default_factory=list)


_TABLE = cast(Table, TranscriptMessage.__table__)
_BODY_AT = select(_TABLE.c.body).where(
    _TABLE.c.chain_id == bindparam("chain"), _TABLE.c.seq == bindparam("seq")
)
_WINDOW = (
    select(_TABLE.c.seq, _TABLE.c.body)
    .where(_TABLE.c.chain_id == bindparam("chain"), _TABLE.c.seq <= bindparam("upto"))
    .order_by(_TABLE.c.seq.desc())
    .limit(bindparam("n"))
)
"""The newest rows up to a model call's output seq: its window, newest first."""
_FIRST = (
    select(_TABLE.c.seq, _TABLE.c.body)
    .where(_TABLE.c.chain_id == bindparam("chain"), _TABLE.c.seq < bindparam("upto"))
    .order_by(_TABLE.c.seq)
    .limit(bindparam("n"))
)
_AT_SEQS = select(_TABLE.c.seq, _TABLE.c.body).where(
    _TABLE.c.chain_id == bindparam("chain"), _TABLE.c.seq.in_(bindparam("seqs", expanding=True))
)
_WITH_IDS = select(_TABLE.c.message_id, _TABLE.c.seq).where(
    _TABLE.c.chain_id == bindparam("chain"),
    _TABLE.c.message_id.in_(bindparam("ids", expanding=True)),
)


def _read_window(conn: Connection, chain_id: str, output_seq: int, limit: int) -> list[Any]:
    params = {"chain": chain_id, "upto": output_seq, "n": limit + 1}
    return list(conn.execute(_WINDOW, params).all())


def _covered(
    found: list[Any], rows: list[dict[str, Any]], output_seq: int, limit: int
) -> dict[int, str] | None:
    """The stored bodies at the new rows' seqs, from the window just read; None if the
    window does not show every one of those seqs (written or not)."""
    seqs = [r["seq"] for r in rows]
    if max(seqs) > output_seq:
        return None
    if len(found) > limit and min(seqs) < found[-1][0]:
        return None  # the window is full and starts after the oldest new seq
    wanted = set(seqs)
    return {seq: body for seq, body in found if seq in wanted}


def _stored(conn: Connection, chain_id: str, rows: list[dict[str, Any]]) -> dict[int, str]:
    params = {"chain": chain_id, "seqs": [r["seq"] for r in rows]}
    return {seq: body for seq, body in conn.execute(_AT_SEQS, params)}


def _duplicate(conn: Connection, chain_id: str, messages: list[SeqMessage]) -> str | None:
    """A new message whose ID the chain holds at another seq: a turn sent twice."""
    wanted = {m.message.message_id: m.seq for m in messages if m.message.message_id}
    if not wanted:
        return None
    stored = conn.execute(_WITH_IDS, {"chain": chain_id, "ids": list(wanted)})
    for message_id, seq in stored:
        if wanted[message_id] != seq:
            return str(message_id)
    return None


def _copy(row: Any, chain_id: str) -> dict[str, object]:
    """A prefix row of the chain a branch forks from, on the branch."""
    return {
        "conversation_id": row["conversation_id"],
        "chain_id": chain_id,
        "seq": row["seq"],
        "role": row["role"],
        "message_id": row["message_id"],
        "body": row["body"],
        "created_at": row["created_at"],
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
