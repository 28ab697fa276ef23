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
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Protocol

from sqlalchemy import delete, func, insert, or_, select, update

from activities.db import Database
from activities.streaming import TextSink
from activities.tables import TextDelta, TextListener
from interface.events import ConversationEvent

__all__ = ["DeltaSinks", "DeltaWriter", "TextDeltas"]

log = logging.getLogger(__name__)

BATCH_INTERVAL = 0.05
"""Seconds: after the first delta, a model call writes at most one row per interval."""
READ_POLL = 0.02
"""Seconds between a waiting reader's checks for new rows."""
KEEP = timedelta(hours=1)
"""Rows older than this are deleted (a conversation's earlier turns' rows sooner)."""
READ_LIMIT = 500
LISTENED_CACHE = 1.0
"""Seconds a worker keeps the set of conversations someone listens to."""
LISTEN_TTL = timedelta(seconds=15)
"""A reader marks its conversation listened to for this long, and renews it while it reads:
model calls of conversations nobody listens to do not stream (no rows, no extra CPU)."""


class DeltaSinks(Protocol):
    """What the model activity streams through: a sink per model-call attempt."""

    def writer(
        self, conversation_id: str, turn: int, step: int, attempt: int
    ) -> AbstractAsyncContextManager[TextSink | None]:
        """None: nobody listens, and the model call need not stream."""


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
        self._renewed: dict[str, float] = {}
        self._listening: set[str] = set()
        self._refreshed = -1e9
        self._refreshing = asyncio.Lock()

    @asynccontextmanager
    async def writer(
        self, conversation_id: str, turn: int, step: int, attempt: int
    ) -> AsyncIterator[DeltaWriter | None]:
        """The sink of one model-call attempt (the rest is written when the block ends), or
        None when nobody listens to the conversation: then the call does not stream at all,
        and costs one indexed read."""
        if not await self.listened(conversation_id):
            yield None
            return
        async with DeltaWriter(self, conversation_id, turn, step, attempt) as writer:
            yield writer

    async def listened(self, conversation_id: str) -> bool:
        """Whether a reader marks the conversation. The worker reads the set of marked
        conversations at most once per `LISTENED_CACHE` seconds, whatever the number of
        model calls: on a busy worker the check costs next to nothing per call."""
        now = asyncio.get_running_loop().time()
        if now - self._refreshed >= LISTENED_CACHE:
            async with self._refreshing:
                if now - self._refreshed >= LISTENED_CACHE:
                    self._listening = await self._marked()
                    self._refreshed = asyncio.get_running_loop().time()
        return conversation_id in self._listening

    async def _marked(self) -> set[str]:
        """On the blocking driver (`Database.run`): one hop, where the async session made
        several; the check model calls make when streaming is on and nobody listens."""
        query = select(TextListener.conversation_id).where(TextListener.until > datetime.now(UTC))
        return await self._db.run(lambda conn: set(conn.scalars(query)), read_only=True)

    async def listen(self, conversation_id: str) -> None:
        """Mark the conversation listened to for `LISTEN_TTL` (readers renew it)."""
        until = datetime.now(UTC) + LISTEN_TTL
        async with self._db.session() as session, session.begin():
            done = await session.execute(
                update(TextListener)
                .where(TextListener.conversation_id == conversation_id)
                .values(until=until)
            )
            if not getattr(done, "rowcount", 0):
                await session.execute(
                    insert(TextListener).values(conversation_id=conversation_id, until=until)
                )

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
        await self._renew(conversation_id)
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

    async def _renew(self, conversation_id: str) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._renewed.get(conversation_id, -1e9) < LISTEN_TTL.total_seconds() / 3:
            return
        try:
            await self.listen(conversation_id)
            self._renewed[conversation_id] = now
        except Exception as exc:  # two readers inserting at once: the other one's row stands
            log.info("text_listeners not renewed (%s)", type(exc).__name__)

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
        if self._kick():
            await asyncio.sleep(0)  # the task takes this delta now: the first goes at once

    def _kick(self) -> bool:
        """Start the writing task if it is not running; True if it was started."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
            return True
        return False

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
