"""SQLAlchemy's aiosqlite dialect with a statement in one hop to aiosqlite's thread.

The stock adapter makes three or four hops per statement (open a cursor, execute, fetch
the rows, close), each a queue put, a thread wake-up and a self-pipe write back to the
event loop: about 65 µs of CPU each here. A database tool's transaction (the ledger's
claim and record, the tool's own writes, its result message) is six statements, so this
cuts a bench turn's hops from 16 to 6. Nothing else changes: the same aiosqlite connection
and thread, the same sqlite3 calls in the same order, SQLAlchemy's error handling around
them. The connection's URL is `sqlite+aiosqlite_onehop://` (`activities.db.async_url`).
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)

DRIVER = "aiosqlite_onehop"


class _Finished:
    """What a statement's sqlite3 cursor told, kept after it closed in its thread."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self.description = cursor.description
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid
        self.arraysize = cursor.arraysize


def _execute(
    connection: sqlite3.Connection, many: bool, operation: str, parameters: Any
) -> tuple[_Finished, list[Any] | None]:
    """One statement, start to end, in aiosqlite's thread."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else None
        return _Finished(cursor), rows
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()
    _awaitable_cursor_close = False

    def _aenter_cursor(self, cursor: Any) -> Any:
        return None  # opened with its statement, in the thread

    def _make_new_cursor(self, connection: Any) -> Any:
        return None

    def close(self) -> None:
        self._rows.clear()

    @property
    def description(self) -> Any:
        return self._cursor.description if self._cursor is not None else None

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount if self._cursor is not None else -1

    @property
    def lastrowid(self) -> int:  # None before a statement, as sqlite3's
        return self._cursor.lastrowid if self._cursor is not None else None  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize if self._cursor is not None else 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        if self._cursor is not None:
            self._cursor.arraysize = value

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        return await self._run(False, operation, parameters)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        return await self._run(True, operation, seq_of_parameters)

    async def _run(self, many: bool, operation: Any, parameters: Any) -> None:
        aio = self._connection
        async with self._adapt_connection._execute_mutex:
            finished, rows = await aio._execute(_execute, aio._conn, many, operation, parameters)
        self._cursor = finished
        self._rows = deque(rows) if rows is not None else deque()


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        stock = super().connect(*arg, **kw)
        return OneHopConnection(self, stock._connection)


class OneHopDialect(SQLiteDialect_aiosqlite):
    driver = DRIVER
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> OneHopDBAPI:  # type: ignore[override]
        return OneHopDBAPI(__import__("aiosqlite"), __import__("sqlite3"))


dialect = OneHopDialect
registry.register(f"sqlite.{DRIVER}", __name__, "OneHopDialect")
