"""The custom search attributes a conversation keeps up to date, for the Web UI and
`temporal workflow list --query 'AgentName="claims-assistant" AND ConversationStatus="idle"'`."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

AGENT_NAME = SearchAttributeKey.for_keyword("AgentName")
CONVERSATION_STATUS = SearchAttributeKey.for_keyword("ConversationStatus")
"""idle, thinking, waiting_approval, ended, or failed (an unknown agent)."""
TURN_COUNT = SearchAttributeKey.for_int("TurnCount")

ALL: list[SearchAttributeKey] = [AGENT_NAME, CONVERSATION_STATUS, TURN_COUNT]  # type: ignore[type-arg]
