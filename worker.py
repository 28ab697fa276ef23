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
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.db import Database, TableSet, redacted
from activities.faults import KillAt
from activities.ledger import Ledger, LedgerHooks
from activities.model import ModelActivities
from activities.tools import ToolActivities
from activities.transcript import Transcript
from agents.registry import AgentRegistry
from codec import KeyConfigError, encryption_summary
from conversation_client import run_then_exit
from demo import tables as demo_tables
from demo.agent import claims_assistant
from demo.seed import seed_demo
from examples.claims_team import register_teams
from examples.register import register_examples
from interface import search_attributes
from observability import LogContextInterceptor, configure_logging, configure_tracing
from settings import WorkerSettings, WorkerTuning

log = logging.getLogger("worker")


def build_worker(
    client: Client,
    task_queue: str,
    db: Database,
    agents: AgentRegistry,
    hooks: LedgerHooks | None = None,
    search_attributes: bool = False,
    tuning: WorkerTuning | None = None,
) -> Worker:
    tuning = tuning or WorkerTuning()
    model = ModelActivities(agents, Transcript(db), search_attributes)
    tools = ToolActivities(agents, Ledger(db, hooks))
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[AgentConversation],
        activities=[model.describe_agent, model.model_call, tools.call_tool],
        # The workflow module imports only the SDK and pydantic models, and the committed
        # histories replay in the tests: the sandbox's per-task cost (19% of worker CPU,
        # measured in bench/) buys no safety here. WORKFLOW_SANDBOX=1 turns it back on.
        workflow_runner=SandboxedWorkflowRunner()
        if tuning.workflow_sandbox
        else UnsandboxedWorkflowRunner(),
        # idle conversations beyond this many are evicted and replay on their next turn
        max_cached_workflows=tuning.max_cached_workflows,
        # a killed worker's sticky tasks move to other workers after this long
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=tuning.sticky_timeout),
        graceful_shutdown_timeout=timedelta(seconds=5),
        # log records made in an activity name its conversation, turn and tool-call key
        interceptors=[LogContextInterceptor()],
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
    missing = [key for key in search_attributes.ALL if key.name not in found.custom_attributes]
    if missing:
        address = client.service_client.config.target_host
        create = " && ".join(
            f"temporal operator search-attribute create --address {address} "
            f"--namespace {client.namespace} --name {key.name} --type {key._metadata_type}"
            for key in missing
        )
        log.warning(
            "search attributes %s are not registered; conversations will not set them. "
            "Create them (then restart the worker): %s",
            [key.name for key in missing],
            create,
        )
    return not missing


async def prepare_database(db: Database) -> None:
    """Create or upgrade the core's tables and the demo's, then seed the demo."""
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


async def main() -> None:
    configure_logging()
    settings = WorkerSettings.from_env()
    try:
        data_converter = settings.data_converter()
    except KeyConfigError as bad:
        raise SystemExit(f"payload encryption: {bad}") from None
    try:
        options = settings.connect_options()
    except (OSError, ValueError) as bad:
        raise SystemExit(f"Temporal TLS: {bad}") from None
    stop_tracing = configure_tracing(settings, "agent-worker")
    db = Database(settings.database_url)
    await prepare_database(db)
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter,
        **options,  # TLS, API key, tracing interceptor (a client's apply to its workers)
    )
    hooks = KillAt.from_env(settings.fault, settings.fault_once)
    agents = default_agents(settings, db)
    indexed = await has_search_attributes(client)
    tuning = settings.tuning()
    worker = build_worker(client, settings.task_queue, db, agents, hooks, indexed, tuning)
    log.info(
        "worker polling %s on %s (namespace %s), database %s",
        settings.task_queue,
        settings.temporal_address,
        settings.temporal_namespace,
        redacted(db.url),
    )
    log.info(encryption_summary(data_converter))
    log.info(
        "Temporal TLS %s, API key %s, tracing %s",
        "on" if options["tls"] else "off",
        "set" if options["api_key"] else "unset",
        f"to {settings.otel_endpoint}" if settings.otel_endpoint else "off",
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with worker:
        await stop.wait()
    await db.dispose()
    stop_tracing()


if __name__ == "__main__":
    run_then_exit(lambda: asyncio.run(main()))
