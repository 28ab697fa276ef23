"""The claims assistant: the demo's agent definition."""

from __future__ import annotations

from dataclasses import replace

from autogen_core.models import ChatCompletionClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agents.definitions import AgentDefinition
from demo.tools import claims_tools
from interface import ToolPolicy

SYSTEM_MESSAGE = (
    "You are a claims assistant for an insurance company. Use the tools to look up "
    "policies and claims, add notes to a claim's file and email customers. Never invent "
    "a claim's status: look it up. Keep answers short."
)


def claims_assistant(
    model_client: ChatCompletionClient,
    sessions: async_sessionmaker[AsyncSession],
    *,
    email_needs_approval: bool = False,
) -> AgentDefinition:
    """With `email_needs_approval`, a person approves each email with `decide_tool`."""
    tools = claims_tools(sessions)
    if email_needs_approval:
        approval = ToolPolicy(needs_approval=True)
        tools = [replace(t, policy=approval) if t.kind == "external" else t for t in tools]
    return AgentDefinition(
        name="claims-assistant",
        system_message=SYSTEM_MESSAGE,
        model_client=model_client,
        tools=tools,
    )
