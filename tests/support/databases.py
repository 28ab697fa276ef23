"""Real SQLite and PostgreSQL databases for tests; PostgreSQL when DATABASE_URL points at it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from activities.db import Database

__all__ = ["DATABASES", "HAS_POSTGRES", "POSTGRES_URL", "count", "make_database"]

POSTGRES_URL = os.environ.get("DATABASE_URL", "")
HAS_POSTGRES = POSTGRES_URL.startswith("postgres")
DATABASES = ["sqlite", *(["postgresql"] if HAS_POSTGRES else [])]


async def make_database(kind: str, tmp_path: Path) -> tuple[Database, Callable[[], Awaitable]]:
    """An empty database and its close: SQLite in tmp_path, or a fresh PostgreSQL schema."""
    if kind == "sqlite":
        db = Database(f"sqlite:///{tmp_path}/agents.db")
        return db, db.dispose
    schema = f"t_{uuid.uuid4().hex[:12]}"
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    db = Database(url.render_as_string(hide_password=False))
    async with db.engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {schema}"))

    async def drop() -> None:
        async with db.engine.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        await db.dispose()

    return db, drop


async def count(db: Database, model: type, **where: object) -> int:
    """How many rows of `model` match `column=value` for each keyword."""
    query = select(func.count()).select_from(model)
    for column, value in where.items():
        query = query.where(getattr(model, column) == value)
    async with db.session() as session:
        return int(await session.scalar(query) or 0)
