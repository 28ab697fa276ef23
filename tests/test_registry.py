"""Wiring errors surface at worker start-up, not in a conversation."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from activities.db import Database
from agents.definitions import AgentDefinition
from agents.errors import ConfigurationError, DuplicateName, UnknownAgent
from agents.registry import AgentRegistry
from agents.tools import ToolContext, tool
from demo.agent import claims_assistant
from demo.scripted_model import ScriptedChatCompletionClient


class Args(BaseModel):
    text: str


@tool()
async def lookup_policy(ctx: ToolContext, args: Args) -> str:
    """Shadows the demo tool of the same name."""
    return args.text


def test_duplicate_tool_name_is_refused(db: Database) -> None:
    demo = claims_assistant(ScriptedChatCompletionClient(), db.sessions)
    with pytest.raises(DuplicateName, match="lookup_policy"):
        AgentDefinition("twice", "", ScriptedChatCompletionClient(), [*demo.tools, lookup_policy])


def test_duplicate_agent_name_is_refused(db: Database) -> None:
    agent = claims_assistant(ScriptedChatCompletionClient(), db.sessions)
    with pytest.raises(DuplicateName, match="claims-assistant"):
        AgentRegistry([agent, agent])
    with pytest.raises(UnknownAgent, match="nobody"):
        AgentRegistry([agent]).get("nobody")


def test_tool_signature_is_checked() -> None:
    async def no_model(ctx: ToolContext, text: str) -> str:
        return text

    with pytest.raises(ConfigurationError, match="pydantic model"):
        tool()(no_model)


def test_tool_schema_comes_from_its_pydantic_model() -> None:
    assert lookup_policy.schema == {
        "name": "lookup_policy",
        "description": "Shadows the demo tool of the same name.",
        "parameters": {
            "properties": {"text": {"title": "Text", "type": "string"}},
            "required": ["text"],
            "type": "object",
        },
    }
