"""The database a bench host uses, ours and the floor's: a SQLite file, or a fresh schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class BenchDatabase:
    kind: str
    """"sqlite" or "postgres"."""
    ours_url: str
    floor: str
    """The floor's: a SQLite file's path or a `postgresql://` URL (floor_activities.py)."""
    schema: str | None = None
    """PostgreSQL's schema, dropped once the hosts on it have stopped."""


def libpq_url(url: str) -> str:
    """`url` as psycopg takes it: `postgresql://` with no SQLAlchemy driver name."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def in_schema(url: str, schema: str) -> str:
    return (
        make_url(libpq_url(url))
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


@asynccontextmanager
async def postgres_schema(url: str) -> AsyncIterator[str]:
    """A new schema at `url`, dropped with everything in it afterwards; yields its name."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield schema
        finally:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@asynccontextmanager
async def bench_database(
    kind: str, workdir: Path, label: str, postgres_url: str
) -> AsyncIterator[BenchDatabase]:
    if kind == "sqlite":
        yield BenchDatabase(
            kind, f"sqlite:///{workdir}/{label}.db", str(workdir / f"{label}-floor.db")
        )
        return
    async with postgres_schema(postgres_url) as schema:
        url = in_schema(postgres_url, schema)
        yield BenchDatabase(kind, url, url, schema)
