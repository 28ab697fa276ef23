"""Temporal's visibility store, which lags: wait for a conversation to show in a list query."""

from __future__ import annotations

import asyncio

from temporalio.client import Client

__all__ = ["WAITING", "listed"]

WAITING = 'AgentName="claims-assistant" AND ConversationStatus="waiting_approval"'


async def listed(client: Client, query: str, cid: str) -> bool:
    """Visibility is eventually consistent: poll for a few seconds."""
    for _ in range(50):
        if [e async for e in client.list_workflows(f'{query} AND WorkflowId="{cid}"')]:
            return True
        await asyncio.sleep(0.1)
    return False
