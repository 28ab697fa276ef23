"""The floor's activities: what a hand-written app does without our ledger."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from temporalio import activity

from bench.floor import INSERT, MODEL


class FloorActivities:
    """One sqlite3 connection per worker, WAL with synchronous=NORMAL like ours."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT)")

    @activity.defn(name=MODEL)
    async def model(self, text: str) -> str:
        return "ok"

    @activity.defn(name=INSERT)
    async def insert(self, text: str) -> int:
        cursor = self._db.execute("INSERT INTO notes (text) VALUES (?)", (text,))
        return int(cursor.lastrowid or 0)
