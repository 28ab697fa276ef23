"""Fixtures: a real Temporal dev server for the session, real SQLite and PostgreSQL.

PostgreSQL runs when DATABASE_URL points at it (CI sets it); each test gets its own schema.
Shared helpers live in tests/support/. Every test lands in one tier (`pytest -m unit` needs
no server): see `pytest_collection_modifyitems`.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.db import Database
from activities.ledger import LedgerHooks
from agent_conversations import AgentConversationsPlugin, has_search_attributes
from agents.adapters import offline_defaults
from agents.registry import AgentRegistry
from conversation_client import Conversations
from devserver import start_dev_server
from settings import WorkerSettings
from support.databases import DATABASES, make_database
from support.fake_openai import FakeOpenAI, serving
from support.tiers import SERVICE_FIXTURES, TIERS
from support.workers import WorkerFactory
from worker import default_agents, prepare_database

offline_defaults()


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test without a tier marker is `integration` if it uses a server or database
    fixture, else `unit`; an explicit marker (`e2e`, `replay`, ...) wins."""
    for item in items:
        explicit = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
        services = SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if len(explicit) > 1:
            raise pytest.UsageError(f"{item.nodeid}: more than one tier {sorted(explicit)}")
        if explicit == {"unit"} and services:
            raise pytest.UsageError(f"{item.nodeid}: marked unit but uses {sorted(services)}")
        if not explicit:
            item.add_marker("integration" if services else "unit")


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


@pytest.fixture(scope="session")
async def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated and seeded once (prepare_database); `db` copies it, which
    is the same file a test would get by migrating its own, without the migrations."""
    folder = tmp_path_factory.mktemp("migrated")
    database, close = await make_database("sqlite", folder)
    await prepare_database(database)
    await close()  # the last connection closes: the WAL is checkpointed into the file
    template = folder / "agents.db"
    assert not template.with_name("agents.db-wal").exists()
    return template


async def _database(kind: str, tmp_path: Path, migrated_sqlite: Path) -> AsyncIterator[Database]:
    if kind == "sqlite":
        shutil.copyfile(migrated_sqlite, tmp_path / "agents.db")
        database = Database(f"sqlite:///{tmp_path}/agents.db")
        yield database
        await database.dispose()
        return
    database, close = await make_database(kind, tmp_path)
    await prepare_database(database)
    yield database
    await close()


@pytest.fixture
async def db(tmp_path: Path, migrated_sqlite: Path) -> AsyncIterator[Database]:
    """A migrated, seeded SQLite database."""
    async for database in _database("sqlite", tmp_path, migrated_sqlite):
        yield database


@pytest.fixture(params=DATABASES)
async def any_db(
    request: pytest.FixtureRequest, tmp_path: Path, migrated_sqlite: Path
) -> AsyncIterator[Database]:
    """A migrated, seeded database: SQLite, and PostgreSQL when DATABASE_URL is set (its
    own schema, migrated)."""
    async for database in _database(request.param, tmp_path, migrated_sqlite):
        yield database


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


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A scripted OpenAI-compatible endpoint (support/fake_openai.py) on a local port."""
    with serving() as fake:
        yield fake
