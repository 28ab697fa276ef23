"""Settings, read from the environment by the entry points only, in `WorkerSettings.from_env`.

Connection settings (address, namespace, TLS, API key, TOML profiles) are loaded by
`temporalio.envconfig`, as the Temporal CLI loads them; the rest are this project's own.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autogen_core.models import ChatCompletionClient, ModelFamily, ModelInfo
from llama_index.core.llms import LLM
from pydantic import Field, SecretStr, SkipValidation
from sqlalchemy.engine import make_url
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfigProfile
from temporalio.service import TLSConfig

from agent_conversations import AgentConversationsPlugin, WorkerTuning
from codec import KeyRing, data_converter_for
from interface import DEFAULT_TASK_QUEUE
from interface.secrets import register_environment_secrets, register_secret, register_secrets
from observability import client_interceptors

if TYPE_CHECKING:
    from activities.db import Database
    from agents.registry import AgentRegistry

__all__ = [
    "CLIENT_SETTINGS",
    "DEMO_ENV",
    "ENV",
    "OWN_ENV",
    "TEMPORAL_ENV",
    "TEST_ENV",
    "WorkerSettings",
    "WorkerTuning",
    "load_temporal_profile",
]

DEFAULT_ADDRESS = "localhost:7233"

TEMPORAL_ENV = {
    "temporal_address": "TEMPORAL_ADDRESS",
    "temporal_namespace": "TEMPORAL_NAMESPACE",
    "temporal_api_key": "TEMPORAL_API_KEY",
    "temporal_tls": "TEMPORAL_TLS",
    "temporal_tls_cert": "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "temporal_tls_key": "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "temporal_tls_ca": "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "temporal_tls_server_name": "TEMPORAL_TLS_SERVER_NAME",
    "temporal_profile": "TEMPORAL_PROFILE",
    "temporal_config_file": "TEMPORAL_CONFIG_FILE",
}
"""The Temporal CLI's variables that deployments set, read by `temporalio.envconfig` (which
also reads the rest of them: `TEMPORAL_TLS_*_DATA`, `TEMPORAL_GRPC_META_*`, ...)."""

OWN_ENV = {
    "task_queue": "TEMPORAL_TASK_QUEUE",
    "database_url": "DATABASE_URL",
    "agent_modules": "AGENT_MODULES",
    "openai_api_key": "OPENAI_API_KEY",
    "openai_base_url": "OPENAI_BASE_URL",
    "model": "MODEL",
    "codec_keys": "AGENT_CODEC_KEYS",
    "codec_key_file": "AGENT_CODEC_KEY_FILE",
    "sticky_timeout": "WORKER_STICKY_TIMEOUT",
    "max_cached_workflows": "WORKER_MAX_CACHED_WORKFLOWS",
    "max_concurrent_workflow_tasks": "WORKER_MAX_CONCURRENT_WORKFLOW_TASKS",
    "max_concurrent_activities": "WORKER_MAX_CONCURRENT_ACTIVITIES",
    "workflow_sandbox": "WORKFLOW_SANDBOX",
    "deployment_name": "WORKER_DEPLOYMENT_NAME",
    "build_id": "WORKER_BUILD_ID",
    "context_window": "MODEL_CONTEXT_WINDOW",
    "log_prompts": "AGENT_LOG_PROMPTS",
    "otel_endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
    "otel_service_name": "OTEL_SERVICE_NAME",
}
"""Setting -> environment variable, for this project's own settings."""

ENV = {**TEMPORAL_ENV, **OWN_ENV}
"""Every variable the worker reads. docker-compose.yml sets exactly these for the worker."""

CLIENT_SETTINGS = (
    *TEMPORAL_ENV,
    "task_queue",
    "codec_keys",
    "codec_key_file",
    "otel_endpoint",
    "otel_service_name",
    "database_url",  # the live text deltas of `Conversations.events` (docs/streaming.md)
)
"""The settings that clients (the gateway, starter.py) read as the worker does."""

TEST_ENV = {"fault": "AGENT_FAULT", "fault_once": "AGENT_FAULT_ONCE"}
"""Fault injection for the demo and the tests (activities/faults.py); never set in production."""

DEMO_ENV = {
    "demo_email_approval": "DEMO_EMAIL_APPROVAL",
    "scripted_token_delay": "SCRIPTED_TOKEN_DELAY",
}
"""The claims demo's own switches."""


def load_temporal_profile(env: Mapping[str, str]) -> ClientConfigProfile:
    """The Temporal connection profile, as the Temporal CLI loads it: the TOML file
    (`TEMPORAL_CONFIG_FILE`, or the default path), its profile (`TEMPORAL_PROFILE`, or
    `default`), then the `TEMPORAL_*` variables over it. Raises ValueError, naming the
    problem."""
    # compose passes an unset variable as "", and envconfig takes TEMPORAL_TLS="" for "on"
    present = {name: value for name, value in env.items() if value}
    config_file = present.get("TEMPORAL_CONFIG_FILE")
    if config_file and not Path(config_file).is_file():
        raise ValueError(f"TEMPORAL_CONFIG_FILE={config_file}: no such file")
    try:
        return ClientConfigProfile.load(override_env_vars=present)
    except Exception as error:  # the SDK's bridge raises its own ConfigError
        raise ValueError(f"Temporal client configuration: {error}") from None


class WorkerSettings(WorkerTuning):
    """Everything the worker reads from the environment (ENV), its tuning included."""

    temporal: SkipValidation[ClientConfigProfile] = Field(
        default_factory=ClientConfigProfile, repr=False
    )
    """Address, namespace, API key and TLS (`load_temporal_profile`); not shown: it holds
    the API key."""
    task_queue: str = DEFAULT_TASK_QUEUE
    database_url: str = "sqlite:///.data/agents.db"
    agent_modules: str | None = None
    """Comma-separated modules whose `register(registry)` adds agents (`--agents`)."""
    openai_api_key: SecretStr | None = None
    """With a key, a real OpenAI-compatible model is used; without one, the scripted model."""
    openai_base_url: str | None = None
    model: str = "gpt-4o-mini"
    codec_keys: SecretStr | None = None
    """Payload encryption keys, `ID:BASE64[,ID:BASE64...]`, the active one first (codec/)."""
    codec_key_file: str | None = None
    """A file of such keys (a mounted secret); with neither set, payloads are not encrypted."""
    otel_endpoint: str | None = None
    """An OTLP/HTTP collector (`http://collector:4318`): spans of workflows, activities and
    client calls are exported there. Unset: no tracing interceptor, no cost."""
    otel_service_name: str | None = None
    deployment_name: str | None = None
    """Worker Deployment versioning (docs/upgrades.md), with `build_id`: the worker serves
    that build only and conversations are pinned to their run's build. Unset: unversioned."""
    build_id: str | None = None
    fault: str | None = None
    fault_once: str | None = None
    demo_email_approval: bool = False
    """DEMO_EMAIL_APPROVAL=1: the demo's `send_customer_email` waits for a person's approval
    (`decide_tool`) before it sends."""
    scripted_token_delay: float = 0.0
    """SCRIPTED_TOKEN_DELAY=0.03: seconds the scripted model waits before each word it
    streams (the demo sets it, so that its replies stream visibly)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> WorkerSettings:
        """The one place the environment is read. Raises ValueError for a bad setting."""
        names = {**OWN_ENV, **TEST_ENV, **DEMO_ENV}
        values: dict[str, Any] = {field: env[var] for field, var in names.items() if env.get(var)}
        settings = cls.model_validate({**values, "temporal": load_temporal_profile(env)})
        settings.register_secrets(env)
        return settings

    def register_secrets(self, env: Mapping[str, str]) -> None:
        """Scrub what these settings hold by value (interface.secrets): the keys, the API
        key of the Temporal profile, the database password."""
        register_environment_secrets(env)
        register_secret(self.temporal.api_key)
        register_secret(make_url(self.database_url).password)

    @property
    def temporal_address(self) -> str:
        return self.temporal.address or DEFAULT_ADDRESS

    @property
    def temporal_namespace(self) -> str:
        return self.temporal.namespace or "default"

    def tuning(self) -> WorkerTuning:
        return WorkerTuning.model_validate(self.model_dump(include=set(WorkerTuning.model_fields)))

    def connect_config(self) -> dict[str, Any]:
        """Keyword arguments of `Client.connect`: address, namespace, TLS, API key, gRPC
        metadata. Raises ValueError or OSError for TLS files that are wrong or unreadable."""
        tls = self.temporal.tls
        if tls and bool(tls.client_cert) != bool(tls.client_private_key):
            raise ValueError("TEMPORAL_TLS_CLIENT_CERT_PATH and _KEY_PATH go together")
        config: dict[str, Any] = {
            "target_host": self.temporal_address,
            "namespace": self.temporal_namespace,
        }
        return config | dict(self.temporal.to_client_connect_config())

    def tls_config(self) -> TLSConfig | bool:
        """TLS as `connect_config` gives it; True for TLS with the system's roots only."""
        tls = self.connect_config().get("tls", False)
        return True if tls == TLSConfig() else tls

    def connect_options(self) -> dict[str, Any]:
        """`Client.connect`'s TLS, API key and tracing for a client without the plugin."""
        config = self.connect_config()
        return {
            "tls": self.tls_config(),
            "api_key": config.get("api_key"),
            "interceptors": client_interceptors(self),
        }

    def deployment(self) -> WorkerDeploymentVersion | None:
        """The worker's deployment version, or None (unversioned). Raises ValueError when
        only one of WORKER_DEPLOYMENT_NAME and WORKER_BUILD_ID is set."""
        if not self.deployment_name and not self.build_id:
            return None
        if not (self.deployment_name and self.build_id):
            raise ValueError("WORKER_DEPLOYMENT_NAME and WORKER_BUILD_ID go together")
        if "." in self.deployment_name:  # the server's canonical form is <name>.<build>
            raise ValueError("WORKER_DEPLOYMENT_NAME must not contain '.'")
        return WorkerDeploymentVersion(self.deployment_name, self.build_id)

    def key_ring(self) -> KeyRing | None:
        """The payload encryption keys, or None. Raises codec.KeyConfigError, naming the
        problem, for missing or malformed keys."""
        keys = self.codec_keys.get_secret_value() if self.codec_keys else None
        ring = KeyRing.from_config(keys, self.codec_key_file)
        for key in ring.keys.values() if ring else ():  # a key file's too
            register_secrets(
                [base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode()]
            )
        return ring

    def plugin(
        self,
        agents: AgentRegistry | None = None,
        database: Database | None = None,
        **options: Any,
    ) -> AgentConversationsPlugin:
        """The plugin as these settings configure it: keys, tracing and tuning; with agents
        and a database, for workers too. `options` go to `AgentConversationsPlugin`."""
        options.setdefault("keys", self.key_ring())
        options.setdefault("tracing", bool(self.otel_endpoint))
        options.setdefault("tuning", self.tuning())
        options.setdefault("deployment", self.deployment())
        return AgentConversationsPlugin(agents, database, **options)

    async def connect(
        self, plugin: AgentConversationsPlugin | None = None, **overrides: Any
    ) -> Client:
        """The client every entry point uses: `connect_config()` and the plugin
        (`self.plugin()` unless given). `overrides` replace `connect_config()`'s arguments."""
        config = self.connect_config() | overrides
        return await Client.connect(**config, plugins=[plugin or self.plugin()])

    def data_converter(self) -> DataConverter:
        """The pydantic data converter, encrypting payloads when keys are configured (the
        plugin's). Raises codec.KeyConfigError for missing or malformed keys."""
        return data_converter_for(self.key_ring())

    def model_client(self) -> ChatCompletionClient:
        """The scripted model, or an OpenAI-compatible client with its own retries off."""
        if self.openai_api_key is None:
            from demo.scripted_model import ScriptedChatCompletionClient

            return ScriptedChatCompletionClient(token_delay=self.scripted_token_delay)
        from autogen_ext.models.openai import OpenAIChatCompletionClient

        extra: dict[str, object] = {}
        if self.openai_base_url:
            extra["base_url"] = self.openai_base_url
            extra["model_info"] = ModelInfo(
                vision=False,
                function_calling=True,
                json_output=True,
                family=ModelFamily.UNKNOWN,
                structured_output=False,
            )
        return OpenAIChatCompletionClient(
            model=self.model,
            api_key=self.openai_api_key.get_secret_value(),
            max_retries=0,  # Temporal owns retries
            **extra,  # type: ignore[arg-type]
        )

    def llamaindex_llm(self) -> LLM:
        """The same choice as a LlamaIndex LLM, for the LlamaIndex example agent."""
        if self.openai_api_key is None:
            from demo.scripted_model import scripted_llamaindex_llm

            return scripted_llamaindex_llm()
        from llama_index.llms.openai_like import OpenAILike

        return OpenAILike(
            model=self.model,
            api_key=self.openai_api_key.get_secret_value(),
            api_base=self.openai_base_url or "https://api.openai.com/v1",
            is_chat_model=True,
            is_function_calling_model=True,
            max_retries=0,  # Temporal owns retries
        )
