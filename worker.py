"""Run a worker: `python worker.py`.

Reads TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE, DATABASE_URL and the model
settings (settings.py). Against an empty database it creates its tables and seeds the demo.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from agent_workflows.conversation import AgentConversation
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.db import Database, redacted
from activities.faults import KillAt
from activities.ledger import Ledger, LedgerHooks
from activities.model import ModelActivities
from activities.tools import ToolActivities
from activities.transcript import Transcript
from agents.registry import AgentRegistry
from codec import KeyConfigError, encryption_summary
from conversation_client import run_then_exit
from demo.agent import claims_assistant
from demo.seed import seed_demo
from interface import search_attributes
from settings import WorkerSettings

log = logging.getLogger("worker")


def build_worker(
    client: Client,
    task_queue: str,
    db: Database,
    agents: AgentRegistry,
    hooks: LedgerHooks | None = None,
    search_attributes: bool = False,
) -> Worker:
    model = ModelActivities(agents, Transcript(db), search_attributes)
    tools = ToolActivities(agents, Ledger(db, hooks))
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[AgentConversation],
        activities=[model.describe_agent, model.model_call, tools.call_tool],
        # a killed worker's sticky tasks move to other workers after this long
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
        graceful_shutdown_timeout=timedelta(seconds=5),
    )


async def has_search_attributes(client: Client) -> bool:
    """Whether the namespace has AgentName, ConversationStatus and TurnCount. Upserting an
    unregistered one would fail the workflow task forever, so conversations skip them."""
    request = ListSearchAttributesRequest(namespace=client.namespace)
    try:
        found = await client.operator_service.list_search_attributes(request)
    except RPCError as error:
        log.warning("cannot list search attributes (%s); conversations will not set them", error)
        return False
    missing = [key.name for key in search_attributes.ALL if key.name not in found.custom_attributes]
    if missing:
        log.warning(
            "search attributes %s are not registered; conversations will not set them", missing
        )
    return not missing


async def prepare_database(db: Database) -> None:
    await db.migrate()
    await seed_demo(db.sessions)


def default_agents(settings: WorkerSettings, db: Database) -> AgentRegistry:
    return AgentRegistry([claims_assistant(settings.model_client(), db.sessions)])


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = WorkerSettings.from_env()
    try:
        data_converter = settings.data_converter()
    except KeyConfigError as bad:
        raise SystemExit(f"payload encryption: {bad}") from None
    db = Database(settings.database_url)
    await prepare_database(db)
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter,
    )
    hooks = KillAt.from_env(settings.fault, settings.fault_once)
    agents = default_agents(settings, db)
    indexed = await has_search_attributes(client)
    worker = build_worker(client, settings.task_queue, db, agents, hooks, indexed)
    log.info(
        "worker polling %s on %s (namespace %s), database %s",
        settings.task_queue,
        settings.temporal_address,
        settings.temporal_namespace,
        redacted(db.url),
    )
    log.info(encryption_summary(data_converter))
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with worker:
        await stop.wait()
    await db.dispose()


if __name__ == "__main__":
    run_then_exit(lambda: asyncio.run(main()))
