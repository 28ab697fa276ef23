"""A tool package brings its own tables: Alembic revisions or a MetaData, migrated beside
the core's, idempotently, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import inspect, text

from activities.db import Database, TableSet
from demo import tables as demo_tables
from support.databases import DATABASES, make_database

CORE_TABLES = {
    "tool_ledger",
    "transcript_messages",
    "text_deltas",
    "text_listeners",
    "alembic_version",
}
DEMO_TABLES = {"policies", "claims", "claim_notes", "email_outbox"}

REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = {down}
branch_labels = {labels}
depends_on = None


def upgrade() -> None:
    {body}
"""
FIRST = 'op.create_table("pkg_notes", sa.Column("id", sa.Integer, primary_key=True))'
SECOND = 'op.add_column("pkg_notes", sa.Column("text", sa.Text, nullable=True))'


def write_revision(folder: Path, revision: str, down: str | None, body: str) -> None:
    folder.mkdir(exist_ok=True)
    labels = "None" if down else '("pkg",)'
    source = REVISION.format(revision=revision, down=repr(down), labels=labels, body=body)
    (folder / f"{revision}.py").write_text(source)


@pytest.fixture(params=DATABASES)
async def empty_db(request: pytest.FixtureRequest, tmp_path: Path):
    database, close = await make_database(request.param, tmp_path)
    yield database
    await close()


async def tables_and_versions(db: Database) -> tuple[set[str], list[str]]:
    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        versions = (await conn.scalars(text("SELECT version_num FROM alembic_version"))).all()
    return names, sorted(versions)


async def columns(db: Database, table: str) -> set[str]:
    async with db.engine.connect() as conn:
        found = await conn.run_sync(lambda sync: inspect(sync).get_columns(table))
    return {column["name"] for column in found}


async def test_the_core_alone_creates_only_its_tables(empty_db: Database) -> None:
    await empty_db.migrate()
    names, versions = await tables_and_versions(empty_db)
    assert names == CORE_TABLES
    assert versions == ["core_0003"]


async def test_a_package_with_alembic_revisions_migrates_and_upgrades(
    empty_db: Database, tmp_path: Path
) -> None:
    folder = tmp_path / "pkg_migrations"
    write_revision(folder, "pkg_0001", None, FIRST)
    pkg = TableSet("pkg", migrations=folder)
    await empty_db.migrate(pkg)
    async with empty_db.engine.begin() as conn:
        await conn.execute(text("INSERT INTO pkg_notes (id) VALUES (7)"))
    await empty_db.migrate(pkg)  # a second start changes nothing
    names, versions = await tables_and_versions(empty_db)
    assert names == CORE_TABLES | {"pkg_notes"}
    assert versions == ["core_0003", "pkg_0001"]

    write_revision(folder, "pkg_0002", "pkg_0001", SECOND)  # the package's next release
    await empty_db.migrate(pkg)
    assert await columns(empty_db, "pkg_notes") == {"id", "text"}
    assert (await tables_and_versions(empty_db))[1] == ["core_0003", "pkg_0002"]
    async with empty_db.engine.connect() as conn:
        assert (await conn.scalars(text("SELECT id FROM pkg_notes"))).all() == [7]


async def test_a_package_with_metadata_creates_its_tables_once(empty_db: Database) -> None:
    metadata = sa.MetaData()
    sa.Table("pkg_rows", metadata, sa.Column("id", sa.Integer, primary_key=True))
    pkg = TableSet("pkg", metadata=metadata)
    await empty_db.migrate(pkg)
    async with empty_db.engine.begin() as conn:
        await conn.execute(text("INSERT INTO pkg_rows (id) VALUES (1)"))
    await empty_db.migrate(pkg)
    names, versions = await tables_and_versions(empty_db)
    assert names == CORE_TABLES | {"pkg_rows"}
    assert versions == ["core_0003"]
    async with empty_db.engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM pkg_rows")) == 1


async def test_revisions_of_packages_not_loaded_are_left_alone(
    empty_db: Database, tmp_path: Path
) -> None:
    """A worker without the demo (or another package) still starts on a shared database."""
    folder = tmp_path / "pkg_migrations"
    write_revision(folder, "pkg_0001", None, FIRST)
    demo = TableSet(demo_tables.NAME, migrations=demo_tables.MIGRATIONS)
    await empty_db.migrate(demo, TableSet("pkg", migrations=folder))
    await empty_db.migrate()
    await empty_db.migrate(demo)
    names, versions = await tables_and_versions(empty_db)
    assert names == CORE_TABLES | DEMO_TABLES | {"pkg_notes"}
    assert versions == ["core_0003", "demo_0001", "pkg_0001"]


def test_a_table_set_names_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="either migrations or metadata"):
        TableSet("pkg")
    with pytest.raises(ValueError, match="either migrations or metadata"):
        TableSet("pkg", migrations=tmp_path, metadata=sa.MetaData())
    with pytest.raises(ValueError, match="'core'"):
        TableSet("core", metadata=sa.MetaData())


async def test_a_table_set_named_twice_is_refused(db: Database) -> None:
    twice = [TableSet("pkg", metadata=sa.MetaData()) for _ in range(2)]
    with pytest.raises(ValueError, match="named twice"):
        await db.migrate(*twice)
