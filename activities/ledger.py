"""The tool ledger: claim, effect, record; a side effect happens once per key.

Failure windows (DESIGN.md):
- W1, crash after the claim and before the effect: the claim has a lease; once it expires,
  or once Temporal has moved on to a newer attempt of the same activity, a retry takes over.
- W2, crash after an external effect and before it is recorded: the retry repeats the call
  with the same idempotency key, which the provider dedupes. A tool that cannot dedupe
  downstream is marked `unknown` instead of being run again.
- W3, crash after the record and before Temporal hears of it: the retry finds the record
  and returns the stored result.
- W4, two attempts at once: the primary key picks one winner; a stale attempt's record is
  refused because it no longer owns the claim.
- Database tools: claim, effect and record are one transaction, so no window exists.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from agent_workflows.summaries import tool_interrupted
from sqlalchemy import Row, Table, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from activities.db import Database
from activities.tables import LedgerEntry, utcnow
from agents.errors import ToolNotStarted
from interface import ToolCallOutput

FINAL = ("succeeded", "failed", "unknown")

Effect = Callable[[AsyncSession | None], Awaitable[ToolCallOutput]]
Then = Callable[[AsyncSession, ToolCallOutput], Awaitable[None]]
"""Written with the result, in the transaction that records it (the tool's transcript rows)."""


class LedgerError(Exception):
    """Base of the ledger's errors."""


class LedgerKeyConflict(LedgerError):
    """The key was recorded before with different arguments: a bug, never retried."""


class LeaseHeld(LedgerError):
    """Another live attempt holds the claim; retry once its lease may have ended."""

    def __init__(self, key: str, retry_after: timedelta) -> None:
        super().__init__(f"ledger key {key!r} is claimed by another attempt")
        self.retry_after = retry_after


class LeaseLost(LedgerError):
    """This attempt's claim was taken over by a newer attempt; its result is discarded."""


class LedgerHooks(Protocol):
    """Points where fault-injection tests and the demo stop a worker."""

    def after_claim(self, claim: Claim) -> None: ...
    def after_effect(self, claim: Claim) -> None: ...
    def after_commit(self, claim: Claim) -> None: ...


class NoHooks:
    def after_claim(self, claim: Claim) -> None:
        pass

    def after_effect(self, claim: Claim) -> None:
        pass

    def after_commit(self, claim: Claim) -> None:
        pass


@dataclass(frozen=True)
class Claim:
    """Who wants to run which effect, for how long."""

    key: str
    conversation_id: str
    tool: str
    args_hash: str
    owner: str  # workflow run + activity ID: the same for every attempt of one activity
    attempt: int
    lease: timedelta
    now: Callable[[], datetime] = field(default=utcnow, compare=False)


class _Failed(Exception):
    """A database effect's failure, carried out of its rolled-back transaction."""

    def __init__(self, output: ToolCallOutput) -> None:
        super().__init__(output.error_type)
        self.output = output

    async def result(self, _session: AsyncSession | None) -> ToolCallOutput:
        """The failure as an `Effect`, for the transaction that records it."""
        return self.output


@dataclass
class _Claimed:
    stored: ToolCallOutput | None = None  # the recorded result of an earlier attempt
    taken_over: bool = False  # an earlier attempt's claim was taken over


def args_hash(tool: str, arguments: object) -> str:
    canonical = json.dumps([tool, arguments], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Ledger:
    """Runs tool effects at most once per key, and records their results."""

    def __init__(self, db: Database, hooks: LedgerHooks | None = None) -> None:
        self._db = db
        self._hooks: LedgerHooks = hooks or NoHooks()
        insert = sqlite_insert if db.is_sqlite else pg_insert
        # preserve_rowcount: psycopg's async cursor reports -1 for an INSERT otherwise
        self._insert_new = (
            insert(_TABLE)
            .on_conflict_do_nothing(index_elements=["key"])
            .execution_options(preserve_rowcount=True)
        )

    async def run_database(
        self, claim: Claim, effect: Effect, then: Then | None = None
    ) -> ToolCallOutput:
        """Claim, effect and record in one transaction: the effect's writes and the ledger
        row commit together or not at all. `then` writes more in that transaction, once
        the effect has run (not when an earlier attempt's result is returned).

        An effect that fails (an output whose status is not "ok": the tool raised) has its
        transaction rolled back, its writes with it, and its failure is recorded in a
        transaction of its own. That costs a failure one more transaction and saves every
        success a savepoint and its release."""
        for _ in range(3):
            try:
                try:
                    output, ran = await self._once(claim, effect, then, keep_failure=False)
                except _Failed as failed:  # rolled back: the failure alone, recorded
                    output, ran = await self._once(claim, failed.result, then, keep_failure=True)
                if ran:
                    self._hooks.after_commit(claim)
                return output
            except IntegrityError:
                continue  # a concurrent attempt inserted the key first: read its record
        raise LeaseHeld(claim.key, timedelta(seconds=1))

    async def _once(
        self, claim: Claim, effect: Effect, then: Then | None, *, keep_failure: bool
    ) -> tuple[ToolCallOutput, bool]:
        """One transaction: claim, then an earlier attempt's recorded result (False), or the
        effect's result recorded with `then` (True). A failed effect raises `_Failed`,
        rolling the transaction back, unless `keep_failure`."""
        async with self._db.session() as session, session.begin():
            claimed = await self._claim(session, claim)
            if claimed.stored is not None:
                return claimed.stored, False
            output = await effect(session)
            if output.status != "ok" and not keep_failure:
                raise _Failed(output)  # rolls the effect's writes back
            await _finalize(session, claim, output)
            if then is not None:
                await then(session, output)
        return output, True

    async def run_external(
        self, claim: Claim, effect: Effect, *, dedupes_downstream: bool, then: Then | None = None
    ) -> ToolCallOutput:
        """Claim (committed), effect outside the database, then record if still the owner
        (and `then`, in the recording transaction)."""
        async with self._db.session() as session, session.begin():
            claimed = await self._claim(session, claim)
            if claimed.stored is not None:
                return claimed.stored
            if claimed.taken_over and not dedupes_downstream:
                return await _mark_unknown(session, claim)
        self._hooks.after_claim(claim)
        try:
            output = await effect(None)
        except ToolNotStarted:
            await self._forget(claim)  # nothing was sent: the retry is a first attempt
            raise
        except BaseException:
            await self._release(claim)
            raise
        self._hooks.after_effect(claim)
        await self._record(claim, output, then)
        self._hooks.after_commit(claim)
        return output

    async def interrupted(self, claim: Claim) -> ToolCallOutput | None:
        """After `cancel_turn` stopped the call: its recorded result if its effect committed,
        None if it left no row (a database tool's transaction rolled back, or a claim was
        forgotten: no effect). This activity's open claim is closed as unknown: the effect
        may have happened, and it is never run again (no claimed row stays behind)."""
        async with self._db.session() as session, session.begin():
            entry = (await session.execute(_LOCKED, {"key": claim.key})).one_or_none()
            if entry is None:
                return None
            if entry.status in FINAL:
                return ToolCallOutput.model_validate_json(entry.result or "{}")
            if entry.owner != claim.owner:  # another run's claim: not this call's to close
                return tool_interrupted(unknown=True)
            output = tool_interrupted(unknown=True)
            await _finalize(session, claim, output)
            await session.execute(
                update(LedgerEntry)
                .where(LedgerEntry.key == claim.key)
                .values(lease_expires_at=claim.now())
            )
            return output

    async def _claim(self, session: AsyncSession, claim: Claim) -> _Claimed:
        """Insert the claim; if the key is there already, lock its row and judge it. Core
        statements built once: a first attempt costs one INSERT."""
        inserted = await session.execute(self._insert_new, _new_row(claim))
        if inserted.rowcount == 1:  # type: ignore[attr-defined]
            return _Claimed()
        entry = (await session.execute(_LOCKED, {"key": claim.key})).one_or_none()
        if entry is None:  # deleted since (a forgotten claim): insert it again
            raise IntegrityError("ledger row vanished", None, Exception())
        if entry.args_hash != claim.args_hash:
            raise LedgerKeyConflict(
                f"ledger key {claim.key!r} was recorded for other arguments of {entry.tool!r}"
            )
        if entry.status in FINAL:
            return _Claimed(stored=ToolCallOutput.model_validate_json(entry.result or "{}"))
        await _take_over(session, entry, claim)
        return _Claimed(taken_over=True)

    async def _record(self, claim: Claim, output: ToolCallOutput, then: Then | None) -> None:
        async with self._db.session() as session, session.begin():
            result = await session.execute(
                update(LedgerEntry)
                .where(LedgerEntry.key == claim.key)
                .where(LedgerEntry.owner == claim.owner, LedgerEntry.attempt == claim.attempt)
                .where(LedgerEntry.status == "claimed")
                .values(status=_status_of(output), result=output.model_dump_json())
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise LeaseLost(f"ledger key {claim.key!r} was taken over by a newer attempt")
            if then is not None:
                await then(session, output)

    async def _forget(self, claim: Claim) -> None:
        """Delete this attempt's claim: its effect never started."""
        async with self._db.session() as session, session.begin():
            await session.execute(
                delete(LedgerEntry)
                .where(LedgerEntry.key == claim.key, LedgerEntry.status == "claimed")
                .where(LedgerEntry.owner == claim.owner, LedgerEntry.attempt == claim.attempt)
            )

    async def _release(self, claim: Claim) -> None:
        """End this attempt's lease now, so the next attempt takes over without waiting."""
        async with self._db.session() as session, session.begin():
            await session.execute(
                update(LedgerEntry)
                .where(LedgerEntry.key == claim.key, LedgerEntry.status == "claimed")
                .where(LedgerEntry.owner == claim.owner, LedgerEntry.attempt == claim.attempt)
                .values(lease_expires_at=claim.now())
            )


_TABLE = cast(Table, LedgerEntry.__table__)
_LOCKED = select(_TABLE).where(_TABLE.c.key == bindparam("key")).with_for_update()
_FINALIZE = (
    update(_TABLE)
    .where(_TABLE.c.key == bindparam("k"))
    .values(status=bindparam("s"), result=bindparam("r"), updated_at=bindparam("at"))
)
_TAKE_OVER = (
    update(_TABLE)
    .where(_TABLE.c.key == bindparam("k"))
    .values(
        owner=bindparam("o"),
        attempt=bindparam("a"),
        lease_expires_at=bindparam("until"),
        updated_at=bindparam("at"),
    )
)


def _new_row(claim: Claim) -> dict[str, object]:
    now = claim.now()
    return {
        "key": claim.key,
        "conversation_id": claim.conversation_id,
        "tool": claim.tool,
        "args_hash": claim.args_hash,
        "status": "claimed",
        "owner": claim.owner,
        "attempt": claim.attempt,
        "lease_expires_at": now + claim.lease,
        "created_at": now,
        "updated_at": now,
    }


async def _take_over(session: AsyncSession, entry: Row[Any], claim: Claim) -> None:
    now = claim.now()
    expired = _aware(entry.lease_expires_at) <= now
    superseded = entry.owner == claim.owner and entry.attempt < claim.attempt
    if not (expired or superseded):
        raise LeaseHeld(claim.key, _aware(entry.lease_expires_at) - now)
    params = {"k": claim.key, "o": claim.owner, "a": claim.attempt}
    await session.execute(_TAKE_OVER, params | {"until": now + claim.lease, "at": now})


async def _mark_unknown(session: AsyncSession, claim: Claim) -> ToolCallOutput:
    output = ToolCallOutput(
        status="unknown",
        content=json.dumps(
            {
                "error": "outcome_unknown",
                "message": "An earlier attempt stopped after claiming this call; the tool "
                "cannot dedupe downstream, so it was not run again. A person must check.",
            }
        ),
        error_type="OutcomeUnknown",
    )
    await _finalize(session, claim, output)
    return output


async def _finalize(session: AsyncSession, claim: Claim, output: ToolCallOutput) -> None:
    """Record the result in the claim's transaction (the claim's row is this attempt's)."""
    params = {"k": claim.key, "s": _status_of(output), "r": output.model_dump_json()}
    await session.execute(_FINALIZE, params | {"at": claim.now()})


def _status_of(output: ToolCallOutput) -> str:
    return {"ok": "succeeded", "unknown": "unknown"}.get(output.status, "failed")


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time is UTC
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
