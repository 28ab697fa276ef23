"""The floor's activities: what a hand-written app does without our ledger."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Protocol

import psycopg
from temporalio import activity

from bench.floor import INSERT, MODEL

POOL_SIZE = 10
"""PostgreSQL connections, as many as our engine's pool (`activities/db.py`)."""


class Notes(Protocol):
    async def insert(self, text: str) -> int: ...


class SqliteNotes:
    """One sqlite3 connection per worker, WAL with synchronous=NORMAL like ours."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")  # several bench hosts share the file
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS floor_notes (id INTEGER PRIMARY KEY, text TEXT)"
        )

    async def insert(self, text: str) -> int:
        cursor = self._db.execute("INSERT INTO floor_notes (text) VALUES (?)", (text,))
        return int(cursor.lastrowid or 0)


class PostgresNotes:
    """A pool of autocommit psycopg connections, one `INSERT ... RETURNING` per note."""

    def __init__(self, pool: asyncio.Queue[psycopg.AsyncConnection]) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, url: str, size: int = POOL_SIZE) -> PostgresNotes:
        pool: asyncio.Queue[psycopg.AsyncConnection] = asyncio.Queue()
        for _ in range(size):
            pool.put_nowait(await psycopg.AsyncConnection.connect(url, autocommit=True))
        conn = pool.get_nowait()
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS floor_notes (id BIGSERIAL PRIMARY KEY, text TEXT)"
        )
        pool.put_nowait(conn)
        return cls(pool)

    async def insert(self, text: str) -> int:
        conn = await self._pool.get()
        try:
            cursor = await conn.execute(
                "INSERT INTO floor_notes (text) VALUES (%s) RETURNING id", (text,)
            )
            row = await cursor.fetchone()
            return int(row[0]) if row else 0
        finally:
            self._pool.put_nowait(conn)

    async def close(self) -> None:
        while not self._pool.empty():
            await self._pool.get_nowait().close()


async def open_notes(database: str) -> Notes:
    """A `postgresql://` URL, or the path of a SQLite file."""
    if database.startswith("postgres"):
        return await PostgresNotes.open(database)
    return SqliteNotes(Path(database))


class FloorActivities:
    """The model call sleeps `model_ms` (0: returns at once); the tool inserts one row."""

    def __init__(self, notes: Notes, model_ms: int = 0) -> None:
        self._notes = notes
        self._model_s = model_ms / 1000

    @activity.defn(name=MODEL)
    async def model(self, text: str) -> str:
        if self._model_s:
            await asyncio.sleep(self._model_s)
        return "ok"

    @activity.defn(name=INSERT)
    async def insert(self, text: str) -> int:
        return await self._notes.insert(text)
