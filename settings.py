"""Worker settings, read from the environment by the entry points only."""

from __future__ import annotations

import os
from collections.abc import Mapping

from autogen_core.models import ChatCompletionClient, ModelFamily, ModelInfo
from pydantic import BaseModel, SecretStr
from temporalio.converter import DataConverter

from codec import KeyRing, data_converter_for
from interface import DEFAULT_TASK_QUEUE

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
}
"""Setting -> environment variable. docker-compose.yml sets exactly these for the worker."""

TEST_ENV = {"fault": "AGENT_FAULT", "fault_once": "AGENT_FAULT_ONCE"}
"""Fault injection for the demo and the tests (activities/faults.py); never set in production."""


class WorkerSettings(BaseModel):
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
    fault: str | None = None
    fault_once: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> WorkerSettings:
        names = {**ENV, **TEST_ENV}
        values = {field: env[var] for field, var in names.items() if env.get(var)}
        return cls.model_validate(values)

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
