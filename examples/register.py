"""What a user adds to the worker to make their agents durable."""

from __future__ import annotations

from autogen_core.models import ChatCompletionClient
from llama_index.core.llms import LLM

from agents.registry import AgentRegistry
from demo.claims import Sessions
from examples import autogen_claims, llamaindex_claims
from examples.claims_functions import TOOL_OPTIONS


def register_examples(
    registry: AgentRegistry, sessions: Sessions, model_client: ChatCompletionClient, llm: LLM
) -> None:
    registry.add(
        "claims-autogen",
        lambda: autogen_claims.claims_assistant(model_client, sessions),
        tools=TOOL_OPTIONS,
    )
    registry.add(
        "claims-llamaindex",
        lambda: llamaindex_claims.claims_assistant(llm, sessions),
        tools=TOOL_OPTIONS,
        fresh_per_call=True,  # a FunctionAgent holds per-run state; build one per call
    )
