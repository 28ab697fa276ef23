"""The claims assistant as an Agent Framework `Agent`, for a worker subprocess
(`AGENT_MODULES=support.maf_agents`): its chat client points at `FAKE_OPENAI_URL`."""

from __future__ import annotations

import os

from agent_framework.openai import OpenAIChatCompletionClient

from activities.db import Database
from agents.registry import AgentRegistry
from examples.agent_framework_claims import claims_assistant
from examples.claims_functions import TOOL_OPTIONS
from support.fake_openai import API_KEY

AGENT = "claims-maf"


def chat_client(base_url: str) -> OpenAIChatCompletionClient:
    """The user's client as they build it: the SDK's defaults, 2 retries of its own."""
    return OpenAIChatCompletionClient(model="gpt-4o-mini", api_key=API_KEY, base_url=base_url)


def register(registry: AgentRegistry) -> None:
    db = Database(os.environ["DATABASE_URL"])
    client = chat_client(os.environ["FAKE_OPENAI_URL"])
    registry.add(AGENT, lambda: claims_assistant(client, db.sessions), tools=TOOL_OPTIONS)
