"""Run a worker: `python worker.py [--agents mypkg.agents ...]`.

Reads the Temporal connection (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS, API key, TOML
profiles: temporalio.envconfig), TEMPORAL_TASK_QUEUE, DATABASE_URL, AGENT_MODULES and the
model settings (settings.py). Against an empty database it creates its tables and seeds the
demo. Without agent modules it serves the demo's agents.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from temporalio.client import Client
from temporalio.worker import Worker

from activities.db import Database, TableSet, redacted
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


def build_worker(
    client: Client,
    task_queue: str,
    db: Database,
    agents: AgentRegistry,
    hooks: LedgerHooks | None = None,
    search_attributes: bool | None = False,
    tuning: WorkerTuning | None = None,
) -> Worker:
    """A worker for `agents` on `client`, through the plugin: the tests' and bench's helper.
    `search_attributes=None` checks the namespace at start, as the plugin does by default;
    the tests' False keeps agent names out of histories that must hold no plaintext."""
    plugin = AgentConversationsPlugin(
        agents, db, tuning=tuning, search_attributes=search_attributes, ledger_hooks=hooks
    )
    return Worker(client, task_queue=task_queue, plugins=[plugin])


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


async def main(argv: Sequence[str] | None = None) -> None:
    configure_logging()
    settings, modules = configured(argv)
    stop_tracing = configure_tracing(settings, "agent-worker")
    db = Database(settings.database_url)
    plugin, tables = make_plugin(settings, db, modules)
    await prepare_database(db, tables)
    client = await settings.connect(plugin)
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
