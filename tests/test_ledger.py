"""The ledger's failure windows W1-W4, on SQLite and PostgreSQL, with real rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from activities.db import Database
from activities.ledger import Claim, LeaseHeld, LeaseLost, Ledger, LedgerKeyConflict, args_hash
from activities.tables import LedgerEntry
from demo.tables import ClaimNote
from interface import ToolCallOutput


def claim(key: str, *, attempt: int = 1, owner: str = "run-1/act-1", args: object = None) -> Claim:
    return Claim(
        key=key,
        conversation_id="conv-ledger",
        tool="create_claim_note",
        args_hash=args_hash("create_claim_note", args or {"claim_id": 123}),
        owner=owner,
        attempt=attempt,
        lease=timedelta(seconds=30),
    )


class Effects:
    """Counts how often an effect ran; the database effect inserts a claim note."""

    def __init__(self) -> None:
        self.runs = 0

    async def note(self, session: AsyncSession | None) -> ToolCallOutput:
        assert session is not None
        self.runs += 1
        session.add(ClaimNote(claim_id=123, text="n", conversation_id="c", ledger_key="k"))
        await session.flush()
        return ToolCallOutput(status="ok", content=f"run {self.runs}")

    async def external(self, _: AsyncSession | None) -> ToolCallOutput:
        self.runs += 1
        return ToolCallOutput(status="ok", content=f"sent {self.runs}")


async def notes(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(ClaimNote)) or 0)


async def entry(db: Database, key: str) -> LedgerEntry:
    async with db.session() as session:
        found = await session.get(LedgerEntry, key)
    assert found is not None
    return found


async def test_database_effect_runs_once_across_retries(any_db: Database) -> None:
    ledger, effects = Ledger(any_db), Effects()
    first = await ledger.run_database(claim("k1"), effects.note)
    retried = await ledger.run_database(claim("k1", attempt=2), effects.note)  # W3
    assert (first.content, retried.content) == ("run 1", "run 1")
    assert effects.runs == 1
    assert await notes(any_db) == 1
    assert (await entry(any_db, "k1")).status == "succeeded"


async def test_failed_database_effect_leaves_no_rows(any_db: Database) -> None:
    async def broken(session: AsyncSession | None) -> ToolCallOutput:
        assert session is not None
        session.add(ClaimNote(claim_id=123, text="n", conversation_id="c", ledger_key="k"))
        await session.flush()
        raise ConnectionError("lost the database mid-effect")

    with pytest.raises(ConnectionError):
        await Ledger(any_db).run_database(claim("k2"), broken)
    assert await notes(any_db) == 0
    async with any_db.session() as session:
        assert await session.get(LedgerEntry, "k2") is None  # the claim rolled back too


async def test_key_reused_with_other_arguments_is_refused(any_db: Database) -> None:
    ledger, effects = Ledger(any_db), Effects()
    await ledger.run_database(claim("k3", args={"claim_id": 123}), effects.note)
    with pytest.raises(LedgerKeyConflict, match="other arguments"):
        await ledger.run_database(claim("k3", args={"claim_id": 124}), effects.note)
    assert effects.runs == 1


async def test_concurrent_attempts_pick_one_winner(any_db: Database) -> None:  # W4
    ledger, effects = Ledger(any_db), Effects()
    attempts = [ledger.run_database(claim("k4", attempt=n), effects.note) for n in (1, 2, 3)]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    outputs = [r for r in results if isinstance(r, ToolCallOutput)]
    assert outputs and {o.content for o in outputs} == {"run 1"}
    assert all(isinstance(r, ToolCallOutput | LeaseHeld) for r in results)
    assert effects.runs == 1
    assert await notes(any_db) == 1


async def test_expired_claim_is_taken_over(any_db: Database) -> None:  # W1
    ledger, effects = Ledger(any_db), Effects()
    stale = claim("k5", owner="other-run/act", attempt=1)
    async with any_db.session() as session, session.begin():
        session.add(_claimed_row(stale, expires=datetime.now(UTC) - timedelta(seconds=1)))
    output = await ledger.run_external(claim("k5"), effects.external, dedupes_downstream=True)
    assert output.content == "sent 1"
    row = await entry(any_db, "k5")
    assert (row.status, row.owner) == ("succeeded", "run-1/act-1")


async def test_live_claim_of_another_run_is_not_taken_over(any_db: Database) -> None:
    ledger, effects = Ledger(any_db), Effects()
    other = claim("k6", owner="other-run/act", attempt=1)
    async with any_db.session() as session, session.begin():
        session.add(_claimed_row(other, expires=datetime.now(UTC) + timedelta(seconds=60)))
    with pytest.raises(LeaseHeld) as raised:
        await ledger.run_external(claim("k6"), effects.external, dedupes_downstream=True)
    assert raised.value.retry_after > timedelta(seconds=50)
    assert effects.runs == 0


async def test_newer_attempt_takes_over_and_stale_attempt_cannot_record(any_db: Database) -> None:
    ledger, effects = Ledger(any_db), Effects()
    takeover: list[ToolCallOutput] = []

    async def slow_first_attempt(_: AsyncSession | None) -> ToolCallOutput:
        # while attempt 1 is still running, Temporal starts attempt 2 (attempt 1 timed out)
        takeover.append(
            await ledger.run_external(
                claim("k7", attempt=2), effects.external, dedupes_downstream=True
            )
        )
        return ToolCallOutput(status="ok", content="zombie")

    with pytest.raises(LeaseLost):
        await ledger.run_external(
            claim("k7", attempt=1), slow_first_attempt, dedupes_downstream=True
        )
    assert takeover[0].content == "sent 1"
    row = await entry(any_db, "k7")
    assert (row.status, row.attempt) == ("succeeded", 2)
    assert ToolCallOutput.model_validate_json(row.result or "").content == "sent 1"


async def test_external_tool_that_cannot_dedupe_is_marked_unknown(any_db: Database) -> None:  # W2
    ledger, effects = Ledger(any_db), Effects()
    crashed = claim("k8", attempt=1)
    async with any_db.session() as session, session.begin():
        session.add(_claimed_row(crashed, expires=datetime.now(UTC) + timedelta(seconds=60)))
    output = await ledger.run_external(
        claim("k8", attempt=2), effects.external, dedupes_downstream=False
    )
    assert output.status == "unknown"
    assert effects.runs == 0
    assert (await entry(any_db, "k8")).status == "unknown"
    again = await ledger.run_external(
        claim("k8", attempt=3), effects.external, dedupes_downstream=False
    )
    assert again.status == "unknown" and effects.runs == 0


async def test_failed_external_attempt_releases_its_lease(any_db: Database) -> None:
    ledger, effects = Ledger(any_db), Effects()

    async def flaky(_: AsyncSession | None) -> ToolCallOutput:
        raise TimeoutError("provider timed out")

    with pytest.raises(TimeoutError):
        await ledger.run_external(claim("k9"), flaky, dedupes_downstream=True)
    row = await entry(any_db, "k9")
    expires = row.lease_expires_at.replace(tzinfo=row.lease_expires_at.tzinfo or UTC)
    assert row.status == "claimed" and expires <= datetime.now(UTC)
    other_run = claim("k9", owner="run-2/act-1")
    assert (
        await ledger.run_external(other_run, effects.external, dedupes_downstream=True)
    ).content == "sent 1"


def _claimed_row(c: Claim, *, expires: datetime) -> LedgerEntry:
    now = datetime.now(UTC)
    return LedgerEntry(
        key=c.key,
        conversation_id=c.conversation_id,
        tool=c.tool,
        args_hash=c.args_hash,
        status="claimed",
        owner=c.owner,
        attempt=c.attempt,
        lease_expires_at=expires,
        created_at=now,
        updated_at=now,
    )
