"""The SQLite async driver (activities.sqlite_driver): each statement one hop to aiosqlite's
thread, with what SQLAlchemy reads off a cursor intact: rows, rowcount, lastrowid, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiosqlite.core
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from activities.db import Database
from activities.sqlite_driver import DRIVER

NOTES = sa.Table(
    "driver_notes",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.Text, unique=True, nullable=False),
)


class _Base(DeclarativeBase):
    pass


class DriverNote(_Base):
    __tablename__ = "driver_orm_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/driver.db")
    async with database.engine.begin() as conn:
        await conn.run_sync(NOTES.metadata.create_all)
        await conn.run_sync(_Base.metadata.create_all)
    yield database
    await database.dispose()


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The calls made in aiosqlite's thread, by name."""
    seen: list[str] = []
    run = aiosqlite.core.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(fn, "__name__", repr(fn)))
        return await run(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)
    yield seen


async def test_sqlite_urls_get_the_one_hop_driver(db: Database) -> None:
    assert db.url.startswith(f"sqlite+{DRIVER}://")
    assert db.engine.dialect.driver == DRIVER
    assert Database("sqlite+aiosqlite:///x.db").url.startswith(f"sqlite+{DRIVER}://")


async def test_a_transaction_costs_a_hop_per_statement_and_its_commit(
    db: Database, hops: list[str]
) -> None:
    async with db.session() as session, session.begin():
        hops.clear()  # the pooled connection's checkout is not the statements'
        await session.execute(sa.insert(NOTES), {"key": "a"})
        await session.execute(sa.insert(NOTES), {"key": "b"})
        keys = (await session.execute(sa.select(NOTES.c.key).order_by(NOTES.c.key))).scalars()
        assert list(keys) == ["a", "b"]
    # BEGIN IMMEDIATE, two INSERTs, the SELECT: one hop each; then the COMMIT
    assert hops == ["_execute"] * 4 + ["commit"]


async def test_rowcount_lastrowid_and_rows_are_the_statements(db: Database) -> None:
    upsert = insert(NOTES).on_conflict_do_nothing(index_elements=["key"])
    upsert = upsert.execution_options(preserve_rowcount=True)
    async with db.session() as session, session.begin():
        assert (await session.execute(upsert, {"key": "a"})).rowcount == 1  # type: ignore[attr-defined]
        assert (await session.execute(upsert, {"key": "a"})).rowcount == 0  # type: ignore[attr-defined]
        note = DriverNote(text="orm")
        session.add(note)
        await session.flush()  # the ORM reads the new row's id off the cursor
        assert note.id == 1
        many = await session.execute(sa.insert(NOTES), [{"key": "b"}, {"key": "c"}])
        assert many.rowcount == 2  # type: ignore[attr-defined]
        rows = (await session.execute(sa.select(NOTES.c.id, NOTES.c.key))).all()
    assert sorted(key for _, key in rows) == ["a", "b", "c"]


async def test_a_failed_statement_raises_sqlalchemys_error_and_rolls_back(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with db.session() as session, session.begin():
            await session.execute(sa.insert(NOTES), {"key": "a"})
            await session.execute(sa.insert(NOTES), {"key": "a"})
    async with db.read_session() as session:
        count = (await session.execute(sa.select(sa.func.count()).select_from(NOTES))).scalar()
    assert count == 0


async def test_a_raw_cursor_before_its_first_statement_reads_as_sqlite3s(db: Database) -> None:
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        cursor = raw.dbapi_connection.cursor()  # type: ignore[union-attr]
        assert (cursor.arraysize, cursor.lastrowid, cursor.description) == (1, None, None)
        assert cursor.fetchmany() == []
