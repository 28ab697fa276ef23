"""Text deltas of running model calls, through the conversation database (docs/streaming.md).

The side channel of the conversation's event stream: the workflow's durable events cost a
history event only per subscriber poll, but deltas would cost one per batch, so they go to
the `text_deltas` table instead. The model activity writes them in batches (the first delta
at once, then at most one row per `interval`), each tagged with its turn, step and attempt;
a retried attempt first writes a `text_reset` row so that a reader drops the step's partial
text. Readers (`Conversations.events`) follow the rows' IDs; SQLite and PostgreSQL readers
poll an index, which costs a query per `poll` interval per subscriber and nothing when
nobody listens. Rows of a conversation's earlier turns, and all rows older than `keep`, are
deleted when a model call starts writing: the durable `turn_finished` event carries the
whole reply.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from types import TracebackType

from sqlalchemy import delete, func, insert, or_, select

from activities.db import Database
from activities.tables import TextDelta
from interface.events import ConversationEvent

__all__ = ["DeltaWriter", "TextDeltas"]

log = logging.getLogger(__name__)

BATCH_INTERVAL = 0.05
"""Seconds: after the first delta, a model call writes at most one row per interval."""
READ_POLL = 0.02
"""Seconds between a waiting reader's checks for new rows."""
KEEP = timedelta(hours=1)
"""Rows older than this are deleted (a conversation's earlier turns' rows sooner)."""
READ_LIMIT = 500


class TextDeltas:
    """Writes model calls' deltas (`writer`) and reads them (`read`, `wait`, `position`,
    the `conversation_client.TextDeltaSource` protocol)."""

    def __init__(
        self,
        database: Database,
        *,
        interval: float = BATCH_INTERVAL,
        poll: float = READ_POLL,
        keep: timedelta = KEEP,
    ) -> None:
        self._db = database
        self._interval = interval
        self._poll = poll
        self._keep = keep

    def writer(self, conversation_id: str, turn: int, step: int, attempt: int) -> DeltaWriter:
        """The sink of one model-call attempt; use it as `async with`, which writes the rest."""
        return DeltaWriter(self, conversation_id, turn, step, attempt)

    async def read(self, conversation_id: str, after: int) -> list[tuple[int, ConversationEvent]]:
        query = (
            select(TextDelta)
            .where(TextDelta.conversation_id == conversation_id, TextDelta.id > after)
            .order_by(TextDelta.id)
            .limit(READ_LIMIT)
        )
        async with self._db.read_session() as session:
            rows = (await session.scalars(query)).all()
        return [(row.id, _event(row)) for row in rows]

    async def wait(self, conversation_id: str, after: int, timeout: float = 1.0) -> None:
        query = (
            select(TextDelta.id)
            .where(TextDelta.conversation_id == conversation_id, TextDelta.id > after)
            .limit(1)
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            async with self._db.read_session() as session:
                if await session.scalar(query) is not None:
                    return
            await asyncio.sleep(self._poll)

    async def position(self) -> int:
        async with self._db.read_session() as session:
            return int(await session.scalar(select(func.max(TextDelta.id))) or 0)

    async def _write(self, writer: DeltaWriter, rows: list[tuple[str, str]], prune: bool) -> None:
        now = datetime.now(UTC)
        values = [
            dict(
                conversation_id=writer.conversation_id,
                turn=writer.turn,
                step=writer.step,
                attempt=writer.attempt,
                kind=kind,
                text=text,
                created_at=now,
            )
            for kind, text in rows
        ]
        async with self._db.session() as session, session.begin():
            if prune:
                await session.execute(
                    delete(TextDelta).where(
                        or_(
                            (TextDelta.conversation_id == writer.conversation_id)
                            & (TextDelta.turn < writer.turn),
                            TextDelta.created_at < now - self._keep,
                        )
                    )
                )
            await session.execute(insert(TextDelta), values)


class DeltaWriter:
    """A `TextSink` for one model-call attempt: the first delta is written at once, later
    ones in batches from a background task, so the framework's stream never waits on the
    database. Write failures are logged and the deltas dropped: the reply itself is recorded
    by the activity and reaches clients in `turn_finished` regardless."""

    def __init__(
        self, deltas: TextDeltas, conversation_id: str, turn: int, step: int, attempt: int
    ) -> None:
        self._deltas = deltas
        self.conversation_id, self.turn, self.step, self.attempt = (
            conversation_id,
            turn,
            step,
            attempt,
        )
        self._pending: list[tuple[str, str]] = []
        self._first = True
        self._task: asyncio.Task[None] | None = None
        self.rows = 0
        """Rows written (tests, bench)."""

    async def __aenter__(self) -> DeltaWriter:
        if self.attempt > 1:  # a retry: readers replace what an earlier attempt streamed
            self._pending.append(("text_reset", ""))
            self._kick()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)
        if self._pending:
            await self._flush()

    async def text(self, delta: str) -> None:
        if not delta:
            return
        if self._pending and self._pending[-1][0] == "text":
            self._pending[-1] = ("text", self._pending[-1][1] + delta)
        else:
            self._pending.append(("text", delta))
        self._kick()

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while self._pending:
            started = asyncio.get_running_loop().time()
            await self._flush()
            elapsed = asyncio.get_running_loop().time() - started
            await asyncio.sleep(max(self._deltas._interval - elapsed, 0))

    async def _flush(self) -> None:
        rows, self._pending = self._pending, []
        prune, self._first = self._first, False
        try:
            await self._deltas._write(self, rows, prune)
            self.rows += len(rows)
        except Exception as exc:  # streaming is best effort; the recorded reply is not
            log.warning("text deltas not written (%s): %s", type(exc).__name__, exc)


def _event(row: TextDelta) -> ConversationEvent:
    if row.kind == "text_reset":
        return ConversationEvent(
            type="text_reset", turn=row.turn, step=row.step, attempt=row.attempt
        )
    return ConversationEvent(
        type="text", turn=row.turn, step=row.step, attempt=row.attempt, text=row.text
    )
