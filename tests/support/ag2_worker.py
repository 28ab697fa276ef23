"""A worker module (`AGENT_MODULES=tests.support.ag2_worker`): examples/ag2_claims.py's AG2
pair as `claims-ag2`, its model at OPENAI_BASE_URL (the test's fake endpoint)."""

from __future__ import annotations

import os

from activities.db import Database
from agents.registry import AgentRegistry
from examples.ag2_claims import claims_agents
from examples.claims_functions import TOOL_OPTIONS


def llm_config() -> dict[str, object]:
    entry = {"model": "gpt-4o-mini", "api_key": os.environ["OPENAI_API_KEY"]}
    return {"config_list": [{**entry, "base_url": os.environ["OPENAI_BASE_URL"]}]}


def register(registry: AgentRegistry) -> None:
    sessions = Database(os.environ["DATABASE_URL"]).sessions
    config = llm_config()
    registry.add("claims-ag2", lambda: claims_agents(config, sessions), tools=TOOL_OPTIONS)
