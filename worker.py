"""Run a worker: `python worker.py [--agents mypkg.agents ...]`.

Reads the Temporal connection (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS, API key, TOML
profiles: temporalio.envconfig), TEMPORAL_TASK_QUEUE, DATABASE_URL, AGENT_MODULES and the
model settings (settings.py). Against an empty database it creates its tables and seeds the
demo. Without agent modules it serves the demo's agents.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.exc import ArgumentError, InterfaceError, NoSuchModuleError, OperationalError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from activities.bounds import error_text
from activities.db import Database, TableSet, redacted
from activities.errors import describe
from activities.faults import KillAt
from activities.ledger import LedgerHooks
from agent_conversations import (
    AgentConversationsPlugin,
    ConfigurationError,
    has_search_attributes,
    module_names,
    register_modules,
)
from agents.registry import AgentRegistry
from codec import KeyConfigError, encryption_summary
from conversation_client import run_then_exit
from demo import tables as demo_tables
from demo.agent import claims_assistant
from demo.seed import seed_demo
from examples.claims_team import register_teams
from examples.register import register_examples
from observability import configure_logging, configure_tracing
from settings import WorkerSettings, WorkerTuning

__all__ = ["build_worker", "default_agents", "has_search_attributes", "main", "prepare_database"]

log = logging.getLogger("worker")
T = TypeVar("T")

FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0
"""A worker started before its database or Temporal waits for them, backing off to this."""
REFUSED_LOGIN = re.compile(
    r"password authentication failed|role \S+ does not exist|database \S+ does not exist"
    r"|no pg_hba\.conf entry|authentication failed"
)
"""PostgreSQL refusing the login; psycopg gives no SQLSTATE for a failed connect."""
REFUSED = (RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED)
"""Temporal's answers to a bad API key or certificate: the operator's to fix."""


def build_worker(
    client: Client,
    task_queue: str,
    db: Database,
    agents: AgentRegistry,
    hooks: LedgerHooks | None = None,
    search_attributes: bool | None = False,
    tuning: WorkerTuning | None = None,
    **options: Any,
) -> Worker:
    """A worker for `agents` on `client`, through the plugin: the tests' and bench's helper.
    `search_attributes=None` checks the namespace at start, as the plugin does by default;
    the tests' False keeps agent names out of histories that must hold no plaintext.
    `options` go to `Worker` (bench/ tries `max_concurrent_activities` and the like)."""
    plugin = AgentConversationsPlugin(
        agents, db, tuning=tuning, search_attributes=search_attributes, ledger_hooks=hooks
    )
    return Worker(client, task_queue=task_queue, plugins=[plugin], **options)


async def prepare_database(db: Database, tables: Sequence[TableSet] | None = None) -> None:
    """Create or upgrade the core's tables and `tables`; by default the demo's, seeded."""
    if tables is not None:
        await db.migrate(*tables)
        return
    await db.migrate(TableSet(demo_tables.NAME, migrations=demo_tables.MIGRATIONS))
    await seed_demo(db.sessions)


def default_agents(settings: WorkerSettings, db: Database) -> AgentRegistry:
    """The demo's claims assistant, and the examples: the same assistant written as an
    AutoGen and as a LlamaIndex agent, and three teams (examples/). Each uses the scripted
    model, or the model configured by OPENAI_API_KEY."""
    model_client = settings.model_client()
    assistant = claims_assistant(
        model_client, db.sessions, email_needs_approval=settings.demo_email_approval
    )
    registry = AgentRegistry([assistant])
    register_examples(registry, db.sessions, model_client, settings.llamaindex_llm())
    scripted = settings.openai_api_key is None  # then every team member scripts itself
    register_teams(registry, db.sessions, None if scripted else model_client)
    return registry


def agents_from(
    modules: Sequence[str], settings: WorkerSettings, db: Database
) -> tuple[AgentRegistry, list[TableSet] | None]:
    """The named modules' agents and tables, or the demo's (tables None) when none is named."""
    if not modules:
        return default_agents(settings, db), None
    # like `uvicorn --app-dir .`: modules beside the user are found without installing them
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    registry = AgentRegistry()
    tables = register_modules(registry, modules)
    return registry, tables


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve agent conversations on Temporal.")
    parser.add_argument(
        "--agents",
        action="append",
        default=[],
        metavar="MODULE[,MODULE]",
        help="a module whose register(registry) adds agents (repeatable; default: "
        "AGENT_MODULES, else the demo's agents)",
    )
    return parser.parse_args(argv)


def configured(argv: Sequence[str] | None) -> tuple[WorkerSettings, list[str]]:
    """Settings and agent modules, or SystemExit naming the bad setting."""
    args = parse_args(argv)
    try:
        settings = WorkerSettings.from_env()
        settings.connect_config()  # TLS files are read here: fail before migrating
        settings.deployment()
    except (OSError, ValueError) as bad:
        raise SystemExit(f"settings: {bad}") from None
    return settings, module_names(args.agents or [settings.agent_modules])


def make_plugin(
    settings: WorkerSettings, db: Database, modules: list[str]
) -> tuple[AgentConversationsPlugin, list[TableSet] | None]:
    """The plugin serving the named modules' agents (or the demo's) and the tables they
    bring, or SystemExit."""
    try:
        agents, tables = agents_from(modules, settings, db)
        hooks = KillAt.from_env(settings.fault, settings.fault_once)
        return settings.plugin(agents, db, ledger_hooks=hooks), tables
    except KeyConfigError as bad:
        raise SystemExit(f"payload encryption: {bad}") from None
    except ConfigurationError as bad:
        raise SystemExit(f"agents: {bad}") from None
    except ValueError as bad:  # AGENT_FAULT without AGENT_FAULT_ONCE
        raise SystemExit(f"fault injection: {bad}") from None


async def until_up(what: str, where: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """`attempt()`, retried with backoff while `what` is down, one log line per failed
    attempt; SystemExit in one line for the operator's faults (credentials, no such
    database, TLS, a refused API key), which waiting does not mend."""
    delay = FIRST_RETRY_SECONDS
    for number in itertools.count(1):
        try:
            return await attempt()
        except Exception as error:
            fault = operator_fault(error)
            if fault is not None:
                raise SystemExit(f"{what} at {where}: {fault}") from None
            if not is_down(error):
                raise
            log.warning(
                "%s at %s is not reachable (attempt %d: %s); retrying in %g s",
                what,
                where,
                number,
                one_line(error),
                delay,
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_RETRY_SECONDS)
    raise AssertionError("unreachable")


def operator_fault(error: BaseException) -> str | None:
    """What the operator must fix, or None for an outage worth waiting out."""
    sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None) or ""
    if sqlstate.startswith("28") or sqlstate == "3D000" or REFUSED_LOGIN.search(str(error)):
        return one_line(error)  # credentials, or no such database
    if isinstance(error, RPCError) and error.status in REFUSED:
        return f"{error.status.name if error.status else ''}: {error.message}"
    return None


def is_down(error: BaseException) -> bool:
    """A database or Temporal that is not there yet: refused, unresolved, timed out."""
    if isinstance(error, OperationalError | InterfaceError | OSError | TimeoutError):
        return True
    if isinstance(error, RPCError):
        return error.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
    return isinstance(error, RuntimeError) and "connect" in str(error).lower()


def one_line(error: BaseException) -> str:
    """The error's class and first line, scrubbed and bounded, with no SQL parameters."""
    text = describe(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return error_text(text)[:300]


def log_start(settings: WorkerSettings, db: Database, client: Client, names: list[str]) -> None:
    """What the worker serves, where; never a secret (the API key only as set or unset)."""
    config = settings.connect_config()
    log.info(
        "worker polling %s on %s (namespace %s), database %s, agents from %s",
        settings.task_queue,
        settings.temporal_address,
        settings.temporal_namespace,
        redacted(db.url),
        ", ".join(names) or "the demo",
    )
    log.info(encryption_summary(client.data_converter))
    log.info(
        "Temporal TLS %s, API key %s, tracing %s",
        "on" if config.get("tls") else "off",
        "set" if config.get("api_key") else "unset",
        f"to {settings.otel_endpoint}" if settings.otel_endpoint else "off",
    )
    version = settings.deployment()
    log.info(
        "worker versioning %s",
        f"on: deployment {version.deployment_name}, build {version.build_id}, conversations pinned"
        if version
        else "off",
    )


def open_database(url: str) -> Database:
    """The database, or SystemExit in one line for a URL no driver takes (never the URL:
    it may hold the password)."""
    try:
        return Database(url)
    except (ArgumentError, NoSuchModuleError, ImportError) as bad:
        scheme = url.split("://", 1)[0] if "://" in url else "(none)"
        raise SystemExit(
            f"DATABASE_URL: scheme {scheme!r} is not supported ({type(bad).__name__}); "
            "use sqlite:///path/to/file.db or postgresql://user:password@host:5432/db"
        ) from None


async def main(argv: Sequence[str] | None = None) -> None:
    configure_logging()
    settings, modules = configured(argv)
    stop_tracing = configure_tracing(settings, "agent-worker")
    db = open_database(settings.database_url)
    plugin, tables = make_plugin(settings, db, modules)
    await until_up("the database", redacted(db.url), lambda: prepare_database(db, tables))
    client = await until_up("Temporal", settings.temporal_address, lambda: settings.connect(plugin))
    worker = Worker(client, task_queue=settings.task_queue)  # the plugin comes with the client
    log_start(settings, db, client, modules)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with worker:
        await stop.wait()
    await db.dispose()
    stop_tracing()


if __name__ == "__main__":
    run_then_exit(lambda: asyncio.run(main()))
