"""AgentConversationsPlugin on a plain Client and Worker: what it sets, what it refuses."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.db import Database
from agent_conversations import (
    AgentConversationsPlugin,
    AgentRegistry,
    IncompatibleDataConverter,
    KeyRing,
    WorkerTuning,
)
from codec import EncryptionCodec, generate_key_entry
from conversation_client import Conversations
from interface import StartConversation
from interface.search_attributes import AGENT_NAME
from observability import LogContextInterceptor
from settings import WorkerSettings
from support.ids import new_id
from worker import default_agents

ASK = "Check policy status for claim 123"


def ring() -> KeyRing:
    return KeyRing.parse(generate_key_entry("k1"))


def client_converter(plugin: AgentConversationsPlugin, existing: DataConverter) -> DataConverter:
    """What `Client.connect(..., data_converter=existing, plugins=[plugin])` ends up with."""
    config = plugin.configure_client({"data_converter": existing, "interceptors": []})  # type: ignore[typeddict-item]
    return config["data_converter"]


class _JSONOnly(CompositePayloadConverter):
    """A user's converter that knows no pydantic: plain `json.dumps` only."""

    def __init__(self) -> None:
        super().__init__(JSONPlainPayloadConverter())


async def test_a_plain_client_and_worker_with_the_plugin_serve_a_conversation(
    temporal_address: str, db: Database, task_queue: str
):
    plugin = AgentConversationsPlugin(default_agents(WorkerSettings(), db), db)
    client = await Client.connect(temporal_address, plugins=[plugin])
    cid = new_id()
    async with Worker(client, task_queue=task_queue):  # workflow and activities: the plugin's
        result = await asyncio.wait_for(
            Conversations(client, task_queue).ask(cid, ASK, "m-1", StartConversation()), 60
        )
        description = await client.get_workflow_handle(cid).describe()
    assert "Claim 123 is" in result.reply
    assert [c.name for c in result.tool_calls] == ["get_claim_status"]
    # the worker checked the namespace at start, so the conversation set its attributes
    assert description.typed_search_attributes.get(AGENT_NAME) == "claims-assistant"


async def test_a_worker_whose_client_cannot_carry_our_payloads_refuses_to_start(
    temporal_address: str, db: Database, task_queue: str
):
    """The user of issue 10: a default-converter client hung every conversation silently."""
    plain = await Client.connect(temporal_address)  # no plugin, the SDK's default converter
    plugin = AgentConversationsPlugin(AgentRegistry(), db)
    with pytest.raises(IncompatibleDataConverter) as refused:
        Worker(plain, task_queue=task_queue, plugins=[plugin])
    message = str(refused.value)
    assert "cannot carry conversation payloads" in message
    assert "timedelta" in message  # what the default JSON converter chokes on
    assert "plugins=[AgentConversationsPlugin()]" in message  # and how to fix it


async def test_a_worker_plugin_with_keys_refuses_a_client_that_does_not_encrypt(
    client: Client, db: Database, task_queue: str
):
    plugin = AgentConversationsPlugin(AgentRegistry(), db, keys=ring())
    with pytest.raises(IncompatibleDataConverter, match="does not encrypt"):
        Worker(client, task_queue=task_queue, plugins=[plugin])


async def test_a_worker_plugin_on_a_pydantic_client_configures_the_worker(
    client: Client, db: Database, task_queue: str
):
    plugin = AgentConversationsPlugin(
        AgentRegistry(),
        db,
        tuning=WorkerTuning(
            max_cached_workflows=7, sticky_timeout=3, max_concurrent_workflow_tasks=9
        ),
    )
    worker = Worker(client, task_queue=task_queue, plugins=[plugin], max_concurrent_activities=33)
    config = worker.config(active_config=True)
    names = sorted(getattr(a, "__temporal_activity_definition").name for a in config["activities"])
    assert names == ["agent.call_tool-v1", "agent.describe-v1", "agent.model_call-v1"]
    assert [w.__name__ for w in config["workflows"]] == ["AgentConversation"]
    assert isinstance(config["workflow_runner"], UnsandboxedWorkflowRunner)
    assert config["max_cached_workflows"] == 7
    assert config["max_concurrent_workflow_tasks"] == 9
    assert config["max_concurrent_activities"] == 33  # the Worker's own, the tuning has none
    assert config["sticky_queue_schedule_to_start_timeout"].total_seconds() == 3
    assert config["graceful_shutdown_timeout"].total_seconds() == 5
    assert [type(i) for i in config["interceptors"]] == [LogContextInterceptor]


async def test_the_plugin_on_client_and_worker_applies_once(
    temporal_address: str, db: Database, task_queue: str
):
    plugin = AgentConversationsPlugin(AgentRegistry(), db)
    client = await Client.connect(temporal_address, plugins=[plugin])
    with pytest.warns(UserWarning, match="same plugin type"):  # the SDK's own warning
        config = Worker(client, task_queue=task_queue, plugins=[plugin]).config(active_config=True)
    assert len(config["activities"]) == 3
    assert len(config["workflows"]) == 1


def test_the_client_gets_the_pydantic_converter_and_the_codec_with_keys():
    assert client_converter(AgentConversationsPlugin(), DataConverter.default) is (
        pydantic_data_converter
    )
    encrypted = client_converter(AgentConversationsPlugin(keys=ring()), DataConverter.default)
    # pydantic, refusing messages that arrive unencrypted (agent_conversations._strict)
    assert issubclass(encrypted.payload_converter_class, PydanticPayloadConverter)
    assert isinstance(encrypted.payload_codec, EncryptionCodec) and encrypted.payload_codec.strict
    # a converter that is already the plugin's is kept as it is
    assert client_converter(AgentConversationsPlugin(keys=ring()), encrypted) is encrypted


def test_a_users_own_codec_is_kept_and_the_default_payload_converter_replaced():
    theirs = DataConverter(payload_codec=EncryptionCodec(ring()))
    kept = client_converter(AgentConversationsPlugin(), theirs)
    assert kept.payload_codec is theirs.payload_codec
    assert kept.payload_converter_class is PydanticPayloadConverter
    other = dataclasses.replace(theirs, payload_codec=object())  # type: ignore[arg-type]
    with pytest.raises(IncompatibleDataConverter, match="codec of its own"):
        client_converter(AgentConversationsPlugin(keys=ring()), other)


def test_a_client_converter_that_cannot_carry_our_payloads_is_refused():
    with pytest.raises(IncompatibleDataConverter, match="cannot carry"):
        client_converter(
            AgentConversationsPlugin(), DataConverter(payload_converter_class=_JSONOnly)
        )
    assert DefaultPayloadConverter is not _JSONOnly  # the default itself is replaced, above


def test_tracing_goes_to_the_client_and_reaches_workers_through_it():
    plugin = AgentConversationsPlugin(tracing=True)
    config = plugin.configure_client({"data_converter": DataConverter.default, "interceptors": []})  # type: ignore[typeddict-item]
    assert [type(i) for i in config["interceptors"]] == [TracingInterceptor]
    assert (
        AgentConversationsPlugin().configure_client(
            {"data_converter": DataConverter.default, "interceptors": []}  # type: ignore[typeddict-item]
        )["interceptors"]
        == []
    )


def test_the_replayer_gets_converter_workflow_and_runner():
    from temporalio.worker import Replayer

    sandboxed = AgentConversationsPlugin(tuning=WorkerTuning(workflow_sandbox=True))
    config = Replayer(workflows=[], plugins=[sandboxed]).config(active_config=True)
    assert config["data_converter"] is pydantic_data_converter
    assert [w.__name__ for w in config["workflows"]] == ["AgentConversation"]
    assert isinstance(config["workflow_runner"], SandboxedWorkflowRunner)


def test_agents_and_database_go_together(db: Database):
    with pytest.raises(Exception, match="agents and database together"):
        AgentConversationsPlugin(AgentRegistry())
