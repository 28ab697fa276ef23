"""Worker settings, read from the environment by the entry points only."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autogen_core.models import ChatCompletionClient, ModelFamily, ModelInfo
from llama_index.core.llms import LLM
from pydantic import BaseModel, SecretStr
from temporalio.converter import DataConverter
from temporalio.service import TLSConfig

from codec import KeyRing, data_converter_for
from interface import DEFAULT_TASK_QUEUE
from observability import client_interceptors

ENV = {
    "temporal_address": "TEMPORAL_ADDRESS",
    "temporal_namespace": "TEMPORAL_NAMESPACE",
    "task_queue": "TEMPORAL_TASK_QUEUE",
    "database_url": "DATABASE_URL",
    "openai_api_key": "OPENAI_API_KEY",
    "openai_base_url": "OPENAI_BASE_URL",
    "model": "MODEL",
    "codec_keys": "AGENT_CODEC_KEYS",
    "codec_key_file": "AGENT_CODEC_KEY_FILE",
    "sticky_timeout": "WORKER_STICKY_TIMEOUT",
    "max_cached_workflows": "WORKER_MAX_CACHED_WORKFLOWS",
    "workflow_sandbox": "WORKFLOW_SANDBOX",
    "temporal_tls": "TEMPORAL_TLS",
    "temporal_tls_cert": "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "temporal_tls_key": "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "temporal_tls_ca": "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "temporal_tls_server_name": "TEMPORAL_TLS_SERVER_NAME",
    "temporal_api_key": "TEMPORAL_API_KEY",
    "otel_endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
    "otel_service_name": "OTEL_SERVICE_NAME",
}
"""Setting -> environment variable. docker-compose.yml sets exactly these for the worker."""

CLIENT_SETTINGS = (
    "temporal_address",
    "temporal_namespace",
    "task_queue",
    "codec_keys",
    "codec_key_file",
    "temporal_tls",
    "temporal_tls_cert",
    "temporal_tls_key",
    "temporal_tls_ca",
    "temporal_tls_server_name",
    "temporal_api_key",
    "otel_endpoint",
    "otel_service_name",
)
"""The settings that clients (the gateway, starter.py) read as the worker does."""

TEST_ENV = {"fault": "AGENT_FAULT", "fault_once": "AGENT_FAULT_ONCE"}

DEMO_ENV = {"demo_email_approval": "DEMO_EMAIL_APPROVAL"}
"""The claims demo's own switches."""
"""Fault injection for the demo and the tests (activities/faults.py); never set in production."""


class WorkerTuning(BaseModel):
    """Worker options measured in bench/ (README, Performance)."""

    sticky_timeout: float = 1.0
    """Seconds. A killed worker's cached conversations move to other workers after this long; a
    worker busy for longer loses them too, and they replay elsewhere."""
    max_cached_workflows: int = 250
    """Conversations kept in memory; older idle ones are evicted and replay on their next turn."""
    workflow_sandbox: bool = False
    """Run the workflow in the SDK's sandbox (off: 19% less worker CPU per turn)."""


class WorkerSettings(WorkerTuning):
    """Everything the worker reads from the environment (ENV), its tuning included."""

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = DEFAULT_TASK_QUEUE
    database_url: str = "sqlite:///.data/agents.db"
    openai_api_key: SecretStr | None = None
    """With a key, a real OpenAI-compatible model is used; without one, the scripted model."""
    openai_base_url: str | None = None
    model: str = "gpt-4o-mini"
    codec_keys: SecretStr | None = None
    """Payload encryption keys, `ID:BASE64[,ID:BASE64...]`, the active one first (codec/)."""
    codec_key_file: str | None = None
    """A file of such keys (a mounted secret); with neither set, payloads are not encrypted."""
    temporal_tls: bool = False
    """TLS without a client certificate (e.g. Temporal Cloud with an API key); implied by a cert."""
    temporal_tls_cert: str | None = None
    """Path of the client certificate (PEM) for mTLS; with `temporal_tls_key`."""
    temporal_tls_key: str | None = None
    temporal_tls_ca: str | None = None
    """Path of the CA that signed the server's certificate; default: the system's roots."""
    temporal_tls_server_name: str | None = None
    temporal_api_key: SecretStr | None = None
    """Sent as `Authorization: Bearer ...`; never logged."""
    otel_endpoint: str | None = None
    """An OTLP/HTTP collector (`http://collector:4318`): spans of workflows, activities and
    client calls are exported there. Unset: no tracing interceptor, no cost."""
    otel_service_name: str | None = None
    fault: str | None = None
    fault_once: str | None = None
    demo_email_approval: bool = False
    """DEMO_EMAIL_APPROVAL=1: the demo's `send_customer_email` waits for a person's approval
    (`decide_tool`) before it sends."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> WorkerSettings:
        names = {**ENV, **TEST_ENV, **DEMO_ENV}
        values = {field: env[var] for field, var in names.items() if env.get(var)}
        return cls.model_validate(values)

    def tuning(self) -> WorkerTuning:
        return WorkerTuning.model_validate(self.model_dump(include=set(WorkerTuning.model_fields)))

    def tls_config(self) -> TLSConfig | bool:
        """TLS from the certificate paths; True for TLS with the system's roots only."""
        cert, key, ca = self.temporal_tls_cert, self.temporal_tls_key, self.temporal_tls_ca
        if bool(cert) != bool(key):
            raise ValueError("TEMPORAL_TLS_CLIENT_CERT_PATH and _KEY_PATH go together")
        if not (cert or ca or self.temporal_tls_server_name):
            return self.temporal_tls
        return TLSConfig(
            client_cert=Path(cert).read_bytes() if cert else None,
            client_private_key=Path(key).read_bytes() if key else None,
            server_root_ca_cert=Path(ca).read_bytes() if ca else None,
            domain=self.temporal_tls_server_name,
        )

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments of `Client.connect`: TLS, API key and tracing (observability.py)."""
        api_key = self.temporal_api_key.get_secret_value() if self.temporal_api_key else None
        tls = self.tls_config()
        return {
            "tls": tls or bool(api_key),  # an API key is never sent in the clear
            "api_key": api_key,
            "interceptors": client_interceptors(self),
        }

    def data_converter(self) -> DataConverter:
        """The pydantic data converter, encrypting payloads when keys are configured.

        Raises codec.KeyConfigError, naming the problem, for missing or malformed keys."""
        keys = self.codec_keys.get_secret_value() if self.codec_keys else None
        return data_converter_for(KeyRing.from_config(keys, self.codec_key_file))

    def model_client(self) -> ChatCompletionClient:
        """The scripted model, or an OpenAI-compatible client with its own retries off."""
        if self.openai_api_key is None:
            from demo.scripted_model import ScriptedChatCompletionClient

            return ScriptedChatCompletionClient()
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
