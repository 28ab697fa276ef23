"""`AgentConversationsPlugin`: a user's own Temporal `Client` and `Worker` serve conversations.

Shaped like the SDK's contrib plugins (`OpenAIAgentsPlugin`, `OpenTelemetryPlugin`): a
`SimplePlugin` whose data-converter parameter is a function of the converter already
configured, plus the few worker options `SimplePlugin` has no parameter for.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from agent_workflows.conversation import AgentConversation
from pydantic import BaseModel
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    DefaultPayloadConverter,
)
from temporalio.plugin import SimplePlugin
from temporalio.service import RPCError
from temporalio.worker import (
    UnsandboxedWorkflowRunner,
    Worker,
    WorkerConfig,
    WorkerDeploymentConfig,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.db import Database
from activities.deltas import TextDeltas
from activities.ledger import Ledger, LedgerHooks
from activities.mcp import SESSIONS as MCP_SESSIONS
from activities.model import ModelActivities
from activities.tools import ToolActivities
from activities.transcript import Transcript
from activities.window import DEFAULT_CONTEXT_WINDOW
from agent_conversations._strict import strict_data_converter
from agents.adapters.mcp import use_caller
from agents.errors import ConfigurationError
from agents.registry import AgentRegistry
from codec import EncryptionCodec, KeyRing, data_converter_for
from interface import AgentSpec, ModelPolicy, search_attributes
from observability import LogContextInterceptor, quiet_prompt_loggers, tracing_interceptor

__all__ = [
    "PLUGIN_NAME",
    "AgentConversationsPlugin",
    "IncompatibleDataConverter",
    "WorkerTuning",
    "has_search_attributes",
]

log = logging.getLogger("agent_conversations")

PLUGIN_NAME = "durable-agent-conversations"
GRACEFUL_SHUTDOWN = timedelta(seconds=5)
"""A stopping worker lets running model and tool calls finish for this long."""


class IncompatibleDataConverter(ConfigurationError):
    """The client's data converter cannot carry conversation payloads, or does not encrypt
    them although the plugin has keys."""


class WorkerTuning(BaseModel):
    """Worker options measured in bench/ (README, Performance)."""

    sticky_timeout: float = 1.0
    """Seconds. A killed worker's cached conversations move to other workers after this long; a
    worker busy for longer loses them too, and they replay elsewhere."""
    max_cached_workflows: int = 1000
    """Conversations kept in memory; older idle ones are evicted and replay on their next turn.
    The SDK's default: at 1,000 conversations with turns in flight, 250 cost one worker 40%
    more CPU per turn (replays), while 10,000 idle ones still take 1.42 x the memory of 100."""
    max_concurrent_workflow_tasks: int | None = 10
    """Workflow tasks the worker takes at once (None: the SDK's 100). 10 keeps an overloaded
    worker's backlog on the server: with 100, one worker under 1,000 conversations let 519
    workflow tasks time out and 221 tool calls miss their heartbeat (bench/, Performance)."""
    max_concurrent_activities: int | None = None
    """Activities the worker runs at once (None: the SDK's 100). A slot is held for the whole
    model call: a worker needs about turns/s x model seconds per turn of them."""
    workflow_sandbox: bool = False
    """Run the workflow in the SDK's sandbox (off: 19% less worker CPU per turn)."""
    context_window: int = DEFAULT_CONTEXT_WINDOW
    """Tokens. The context window of a model whose client does not know it (the token
    budget of its agents' windows is computed from it)."""
    stream_text: bool = True
    """Model calls write their text deltas to the database's `text_deltas` table as they
    come, for `Conversations.events()` (docs/streaming.md). Off: no deltas; the durable
    events, the final reply among them, are unchanged."""
    log_prompts: bool = False
    """Let the frameworks' loggers that print prompts and answers (`autogen_core.events`,
    `openai`, `llama_index`, ...) log below WARNING. Off: no customer text in the logs."""


class AgentConversationsPlugin(SimplePlugin):
    """Everything a `Client` and a `Worker` need to run agent conversations.

    On `Client.connect(..., plugins=[plugin])`: the pydantic data converter (encrypting with
    `keys`) and, with `tracing`, the OpenTelemetry interceptor. A `Worker` on that client
    gets the plugin from the client and with it the `AgentConversation` workflow, the model
    and tool activities bound to `agents` and `database`, the log-context interceptor and
    `tuning`. At start the worker checks whether the namespace has the search attributes
    (unless `search_attributes` says so). With a `deployment` version the worker is
    versioned: conversations are pinned to the build that started their run and move to the
    deployment's current build at continue-as-new (docs/upgrades.md). A plugin without
    agents is for clients (and the Replayer) only; it adds nothing to a worker.
    """

    def __init__(
        self,
        agents: AgentRegistry | None = None,
        database: Database | None = None,
        *,
        keys: KeyRing | None = None,
        tracing: bool = False,
        tuning: WorkerTuning | None = None,
        search_attributes: bool | None = None,
        ledger_hooks: LedgerHooks | None = None,
        workflow_failure_exception_types: Sequence[type[BaseException]] = (),
        deployment: WorkerDeploymentVersion | None = None,
    ) -> None:
        if (agents is None) != (database is None):
            raise ConfigurationError("AgentConversationsPlugin: give agents and database together")
        self._keys = keys
        self._tuning = tuning or WorkerTuning()
        self._indexed = search_attributes
        self._deployment = deployment
        self._model: ModelActivities | None = None
        activities: list[Callable[..., Any]] = []
        if agents is not None and database is not None:
            quiet_prompt_loggers(self._tuning.log_prompts)
            transcript = Transcript(database)
            self._model = ModelActivities(
                agents,
                transcript,
                context_window=self._tuning.context_window,
                deltas=TextDeltas(database) if self._tuning.stream_text else None,
            )
            tools = ToolActivities(agents, Ledger(database, ledger_hooks), transcript)
            activities = [self._model.describe_agent, self._model.model_call, tools.call_tool]
            use_caller(MCP_SESSIONS)  # MCP tools call through the worker's session pool
        super().__init__(
            PLUGIN_NAME,
            data_converter=self._data_converter,
            # the tracing interceptor is a client and a worker interceptor: on a client with
            # this plugin, workers get it from the client, once
            interceptors=[LogContextInterceptor(), *([tracing_interceptor()] if tracing else [])],
            activities=activities,
            workflows=[AgentConversation],
            workflow_runner=_runner(self._tuning),
            workflow_failure_exception_types=list(workflow_failure_exception_types),
        )

    def _data_converter(self, existing: DataConverter | None) -> DataConverter:
        """Ours in place of the SDK's default; a user's own converter is kept if it can
        carry our payloads, with our codec added when keys are given and it has none."""
        if existing is None or existing is DataConverter.default:
            if self._keys is not None:  # refuses messages sent unencrypted (_strict)
                return strict_data_converter(self._keys)
            return data_converter_for(self._keys)
        if existing.payload_converter_class is DefaultPayloadConverter:
            existing = dataclasses.replace(
                existing, payload_converter_class=PydanticPayloadConverter
            )
        _check_carries(existing)
        if self._keys is None or isinstance(existing.payload_codec, EncryptionCodec):
            return existing
        if existing.payload_codec is not None:
            raise IncompatibleDataConverter(
                "the client has a payload codec of its own and the plugin has keys: "
                "give the plugin no keys, or the client no codec"
            )
        return dataclasses.replace(
            existing,
            payload_codec=EncryptionCodec(self._keys),
            failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
        )

    def configure_worker(self, config: WorkerConfig) -> WorkerConfig:
        """See `SimplePlugin`; a plugin without agents, or one already applied (given to
        both the client and the worker), leaves the worker as it is."""
        if self._model is None or AgentConversation in config.get("workflows", []):
            return config
        self._check_client(config["client"])  # type: ignore[typeddict-item]
        config = super().configure_worker(config)
        tuning = self._tuning
        config["max_cached_workflows"] = tuning.max_cached_workflows
        config["sticky_queue_schedule_to_start_timeout"] = timedelta(seconds=tuning.sticky_timeout)
        if config.get("tuner") is None:  # the SDK refuses slot counts beside a tuner
            for slots in ("max_concurrent_workflow_tasks", "max_concurrent_activities"):
                value = getattr(tuning, slots)
                if value is not None and config.get(slots) is None:  # the Worker's own wins
                    config[slots] = value  # type: ignore[literal-required]
        if not config.get("graceful_shutdown_timeout"):
            config["graceful_shutdown_timeout"] = GRACEFUL_SHUTDOWN
        if self._deployment is not None:
            config["deployment_config"] = _versioned(self._deployment)
        return config

    def _check_client(self, client: Client) -> None:
        """A converter that cannot carry our payloads makes every activity fail and retry
        with backoff while `ask` waits in silence: refuse it before the worker starts."""
        converter = client.data_converter
        try:
            _check_carries(converter)
        except IncompatibleDataConverter as error:
            raise IncompatibleDataConverter(
                f"{error}. Connect the worker's client with plugins=[AgentConversationsPlugin()]"
                " (or data_converter=temporalio.contrib.pydantic.pydantic_data_converter)"
            ) from None
        if self._keys is not None and not isinstance(converter.payload_codec, EncryptionCodec):
            raise IncompatibleDataConverter(
                "the plugin has encryption keys but the worker's client does not encrypt: "
                "connect the client with plugins=[plugin]"
            )

    async def run_worker(self, worker: Worker, next: Callable[[Worker], Awaitable[None]]) -> None:
        """See `SimplePlugin`; first learns whether conversations may set search attributes."""
        if self._model is not None:  # twice if given to client and worker: harmless
            indexed = self._indexed
            if indexed is None:
                indexed = await has_search_attributes(worker.client)
            # private to the activities; set before the worker polls its first task
            self._model._search_attributes = indexed
            await self._model.warm_up()
        try:
            await super().run_worker(worker, next)
        finally:
            await MCP_SESSIONS.close()  # stdio MCP servers end with the worker


def _versioned(version: WorkerDeploymentVersion) -> WorkerDeploymentConfig:
    """A versioned worker of `version` whose conversations are pinned: a run that lives for
    weeks replays on the code that wrote it, and moves on only at continue-as-new."""
    return WorkerDeploymentConfig(
        version=version,
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
    )


def _runner(tuning: WorkerTuning) -> WorkflowRunner:
    # The workflow module imports only the SDK and pydantic models, and the committed
    # histories replay in the tests: the sandbox's per-task cost (19% of worker CPU,
    # measured in bench/) buys no safety here. WORKFLOW_SANDBOX=1 turns it back on.
    return SandboxedWorkflowRunner() if tuning.workflow_sandbox else UnsandboxedWorkflowRunner()


_PROBE = AgentSpec(agent="probe", max_steps=1, model=ModelPolicy())
"""A payload of the kind every conversation sends first (`agent.describe-v1`'s result);
its timedeltas are what the SDK's default JSON converter cannot encode."""


def _check_carries(converter: DataConverter) -> None:
    """Raise `IncompatibleDataConverter` unless a conversation payload survives a round trip."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the default converter warns about pydantic
            payloads = converter.payload_converter.to_payloads([_PROBE])
            [back] = converter.payload_converter.from_payloads(payloads, [AgentSpec])
    except Exception as error:
        raise IncompatibleDataConverter(
            f"the client's data converter cannot carry conversation payloads "
            f"({type(error).__name__}: {error})"
        ) from None
    if back != _PROBE:
        raise IncompatibleDataConverter(
            "the client's data converter changes conversation payloads on a round trip"
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
