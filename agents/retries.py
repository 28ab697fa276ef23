"""Turn off a framework model client's own retries: Temporal retries model calls.

A client that retried inside the activity would hide failures from the workflow's history,
stack its backoff on Temporal's, and could pay for a model call twice within one attempt.
Users bring clients built with the SDK defaults (OpenAI's and Anthropic's SDKs retry twice,
LlamaIndex's OpenAI LLM three times), so the registry switches them off for every agent.
"""

from __future__ import annotations

import logging
from typing import Any

from agent_framework import BaseChatClient

log = logging.getLogger(__name__)


def framework_retries_off(model_client: Any) -> Any:
    """The same client, with its SDK-level retries set to 0 where the client has them.

    - AutoGen's OpenAI, Azure OpenAI and Anthropic clients hold an `openai` or `anthropic`
      SDK client (`_client`), replaced by a copy with `max_retries=0`.
    - LlamaIndex's OpenAI and OpenAI-like LLMs: the `max_retries` field (its tenacity
      decorator) and any async SDK client it already built.
    - Agent Framework's OpenAI and Azure OpenAI chat clients hold the `openai` SDK client as
      `client`, replaced by a copy with `max_retries=0`.
    Other clients are returned unchanged.
    """
    sdk_client: Any = getattr(model_client, "_client", None)
    if _has_retries(sdk_client):
        model_client._client = sdk_client.with_options(max_retries=0)
    held: Any = getattr(model_client, "client", None)
    if isinstance(model_client, BaseChatClient) and _has_retries(held):
        model_client.client = held.with_options(max_retries=0)  # type: ignore[attr-defined]
    if isinstance(getattr(model_client, "max_retries", None), int):
        if model_client.max_retries:
            log.info(
                "%s: max_retries %d -> 0 (Temporal retries model calls)",
                type(model_client).__name__,
                model_client.max_retries,
            )
        model_client.max_retries = 0
        async_client: Any = getattr(model_client, "_aclient", None)
        if _has_retries(async_client):
            model_client._aclient = async_client.with_options(max_retries=0)
    return model_client


def _has_retries(sdk_client: Any) -> bool:
    return isinstance(getattr(sdk_client, "max_retries", None), int) and callable(
        getattr(sdk_client, "with_options", None)
    )
