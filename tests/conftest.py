"""Fixtures: a real Temporal dev server for the session, real SQLite and PostgreSQL.

PostgreSQL runs when DATABASE_URL points at it (CI sets it); each test gets its own schema.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activities.db import Database  # noqa: E402
from activities.ledger import LedgerHooks  # noqa: E402
from agent_conversations import AgentConversationsPlugin, has_search_attributes  # noqa: E402
from agents.frameworks import offline_defaults  # noqa: E402
from agents.registry import AgentRegistry  # noqa: E402
from conversation_client import Conversations  # noqa: E402
from devserver import start_dev_server  # noqa: E402
from settings import WorkerSettings  # noqa: E402
from worker import default_agents, prepare_database  # noqa: E402

offline_defaults()
POSTGRES_URL = os.environ.get("DATABASE_URL", "")
HAS_POSTGRES = POSTGRES_URL.startswith("postgres")
DATABASES = ["sqlite", *(["postgresql"] if HAS_POSTGRES else [])]


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_dev_server()
    yield environment
    await environment.shutdown()


@pytest.fixture(scope="session")
def client(env: WorkflowEnvironment) -> Client:
    return env.client


@pytest.fixture(scope="session")
def temporal_address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


async def make_database(kind: str, tmp_path: Path) -> tuple[Database, Callable]:
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


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, seeded SQLite database."""
    database, close = await make_database("sqlite", tmp_path)
    await prepare_database(database)
    yield database
    await close()


@pytest.fixture(params=DATABASES)
async def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, seeded database: SQLite, and PostgreSQL when DATABASE_URL is set."""
    database, close = await make_database(request.param, tmp_path)
    await prepare_database(database)
    yield database
    await close()


WorkerFactory = Callable[..., AbstractAsyncContextManager[Worker]]


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest.fixture(scope="session")
async def indexed(client: Client) -> bool:
    """The dev server registers the search attributes; check as the worker does."""
    return await has_search_attributes(client)


@pytest.fixture
def run_worker(client: Client, task_queue: str, indexed: bool) -> WorkerFactory:
    """`async with run_worker(db, agents=None, hooks=None):` an in-process worker."""

    @asynccontextmanager
    async def start(
        database: Database,
        agents: AgentRegistry | None = None,
        hooks: LedgerHooks | None = None,
    ) -> AsyncIterator[Worker]:
        registry = agents or default_agents(WorkerSettings(), database)
        plugin = AgentConversationsPlugin(
            registry, database, ledger_hooks=hooks, search_attributes=indexed
        )
        async with Worker(client, task_queue=task_queue, plugins=[plugin]) as worker:
            yield worker

    return start


@pytest.fixture
def conversations(client: Client, task_queue: str) -> Conversations:
    return Conversations(client, task_queue)


def new_id(prefix: str = "conv") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
