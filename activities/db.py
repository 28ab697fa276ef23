"""One SQLAlchemy async engine per worker: SQLite (WAL) by default, PostgreSQL by URL.

`Database.migrate` creates the core's tables from the Alembic revisions shipped in
`activities.migrations`, and those a tool package brings as a `TableSet`.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from activities.sqlite_driver import DRIVER as SQLITE_DRIVER
from interface.secrets import register_secret

# package data, so an installed (non-editable) copy finds them too
MIGRATIONS = files("activities.migrations")
_READ_ONLY = "agent_read_only"
_MIGRATION_LOCK = 7_042_001  # PostgreSQL advisory lock: one worker migrates at a time
_T = TypeVar("_T")


class Base(DeclarativeBase):
    """Metadata of the ledger and the transcript."""


@dataclass(frozen=True)
class TableSet:
    """Tables a tool package brings, created by `Database.migrate`: either its own Alembic
    revisions or a SQLAlchemy MetaData.

    `migrations` is a folder of Alembic revision files, shipped in the package (for example
    `importlib.resources.files("mypkg.migrations")`). They form one branch labelled `name`
    and share the `alembic_version` table with the core's, so their revision IDs must be
    unique: prefix them with `name` (`mypkg_0001`).
    `metadata` is created with `create_all`, which adds missing tables and never alters one:
    for tables that do not change, and for tests.
    """

    name: str
    migrations: Traversable | None = None
    metadata: MetaData | None = None

    def __post_init__(self) -> None:
        if (self.migrations is None) == (self.metadata is None):
            raise ValueError(f"table set {self.name!r}: give either migrations or metadata")
        if self.name == "core":
            raise ValueError("table set name 'core' is the ledger's and the transcript's")


def async_url(url: str) -> str:
    """Map plain `sqlite://` and `postgresql://` URLs to the async drivers we ship: for
    SQLite, aiosqlite with a statement in one hop to its thread (activities.sqlite_driver)."""
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"):
        parsed = parsed.set(drivername=f"sqlite+{SQLITE_DRIVER}")
    elif parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """The blocking driver's URL, for `Database.run`: pysqlite, or psycopg's own."""
    parsed = make_url(async_url(url))
    if parsed.drivername == f"sqlite+{SQLITE_DRIVER}":
        parsed = parsed.set(drivername="sqlite+pysqlite")
    return parsed.render_as_string(hide_password=False)


def redacted(url: str) -> str:
    """The URL with its password hidden, for log lines."""
    return make_url(url).render_as_string(hide_password=True)


class Database:
    """The worker's engines: an async one with its session factory (the ledger, a database
    tool's session), and a blocking one that `run` uses in threads of its own."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = async_url(url)
        register_secret(make_url(self.url).password)  # scrubbed from failures and logs
        engine_kwargs.setdefault("hide_parameters", True)  # no SQL parameters in errors
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            _ensure_parent_dir(self.url)
            engine_kwargs.setdefault("connect_args", {"timeout": 30})
            # no ROLLBACK when a connection returns to the pool: every transaction here
            # ends in COMMIT or ROLLBACK already (engine.begin(), session.begin()), and
            # each would be one more hop to aiosqlite's thread
            engine_kwargs.setdefault("pool_reset_on_return", None)
        else:
            engine_kwargs.setdefault("pool_size", 10)
            engine_kwargs.setdefault("pool_pre_ping", True)
        self.engine: AsyncEngine = create_async_engine(self.url, **engine_kwargs)
        self.sync_engine: Engine = create_engine(
            sync_url(url), **_blocking(engine_kwargs, self.is_sqlite)
        )
        if self.is_sqlite:
            _sqlite_pragmas(self.engine.sync_engine)
            _sqlite_pragmas(self.sync_engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._reader = self.engine.execution_options(**{_READ_ONLY: True})
        self._read_sessions = async_sessionmaker(self._reader, expire_on_commit=False)
        self._sync_reader = self.sync_engine.execution_options(**{_READ_ONLY: True})
        # a thread per pooled connection: a transaction waits for a connection, not a thread
        size = engine_kwargs.get("pool_size", 5) + max(engine_kwargs.get("max_overflow", 10), 0)
        self._threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="database")

    def session(self) -> AsyncSession:
        return self.sessions()

    def read_session(self) -> AsyncSession:
        """A session for reads only: on SQLite its transactions do not take the write lock."""
        return self._read_sessions()

    async def run(self, work: Callable[[Connection], _T], read_only: bool = False) -> _T:
        """`work(connection)` in a transaction (committed on return, rolled back if it
        raises) of the blocking driver, in one of this database's threads: a transaction
        costs one hop from the event loop, where the async driver costs one per statement
        and a greenlet switch each (measured: a third of the CPU for a model call's two
        transactions). For Core statements that need no session. `read_only` as for
        `read_session`. Cancelled, the transaction still ends in its thread."""
        engine = self._sync_reader if read_only else self.sync_engine

        def transaction() -> _T:
            with engine.begin() as connection:
                return work(connection)

        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, context.run, transaction)

    async def migrate(self, *tables: TableSet) -> None:
        """Create or upgrade the ledger, the transcript and each table set's tables, in one
        transaction; running it again changes nothing."""
        names = [t.name for t in tables]
        if len(set(names)) < len(names):
            raise ValueError(f"table sets named twice: {names}")
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                await conn.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
            await conn.run_sync(_upgrade, tables)

    async def dispose(self) -> None:
        await asyncio.to_thread(self._threads.shutdown)  # the transactions under way end
        self.sync_engine.dispose()
        await self.engine.dispose()


def _upgrade(connection: Connection, tables: Sequence[TableSet]) -> None:
    locations = [MIGRATIONS / "versions", *(t.migrations for t in tables if t.migrations)]
    cfg = Config()
    cfg.set_main_option("script_location", _on_disk(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(_on_disk(p) for p in locations))
    cfg.attributes["connection"] = connection
    known = {script.revision for script in ScriptDirectory.from_config(cfg).walk_revisions()}
    # Alembic refuses a version row it has no file for. Rows of packages this worker does
    # not load (another worker's, or a removed one's) are theirs: set aside, then restored.
    foreign = _version_rows(connection) - known
    _delete_versions(connection, foreign)
    command.upgrade(cfg, "heads")
    _insert_versions(connection, foreign)
    for table_set in tables:
        if table_set.metadata is not None:
            table_set.metadata.create_all(connection, checkfirst=True)


def _on_disk(location: Traversable) -> str:
    """Alembic reads revisions from files: the folder's path on the file system."""
    if not isinstance(location, os.PathLike):
        raise TypeError(f"migrations must be a folder on disk, not {location!r} (zipped?)")
    return os.fspath(location)


def _version_rows(connection: Connection) -> set[str]:
    if not inspect(connection).has_table("alembic_version"):
        return set()
    return set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


def _delete_versions(connection: Connection, versions: set[str]) -> None:
    if versions:
        delete = text("DELETE FROM alembic_version WHERE version_num = :v")
        connection.execute(delete, [{"v": v} for v in sorted(versions)])


def _insert_versions(connection: Connection, versions: set[str]) -> None:
    if versions:
        insert = text("INSERT INTO alembic_version (version_num) VALUES (:v)")
        connection.execute(insert, [{"v": v} for v in sorted(versions)])


def _blocking(engine_kwargs: dict[str, Any], sqlite: bool) -> dict[str, Any]:
    """The async engine's options for the blocking one. pysqlite's connections move between
    `Database.run`'s threads, one thread at a time, as the pool hands them out."""
    if not sqlite:
        return engine_kwargs
    connect_args = engine_kwargs.get("connect_args", {}) | {"check_same_thread": False}
    return engine_kwargs | {"connect_args": connect_args}


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # let SQLAlchemy, not the driver, open transactions, so BEGIN IMMEDIATE below applies
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # take the write lock up front: a deferred transaction that upgrades later can
        # fail with "database is locked" regardless of busy_timeout. Reads need no lock.
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _ensure_parent_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
