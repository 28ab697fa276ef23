"""The claims tools as plain typed Python functions, as a user would write them for
AutoGen's or LlamaIndex's `FunctionTool`. Results are JSON text, the same in both."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from agents.adapters import ToolOptions
from agents.tools import current_tool_context
from demo import claims
from demo.claims import Sessions

SYSTEM_MESSAGE = (
    "You are a claims assistant for an insurance company. Use the tools to look up "
    "policies and claims, add notes to a claim's file and email customers. Keep answers short."
)

TOOL_OPTIONS = ToolOptions(
    kinds={
        "lookup_policy": "read",
        "get_claim_status": "read",
        "create_claim_note": "database",
        "send_customer_email": "external",
    },
    dedupes_downstream={"send_customer_email": True},
    shared=True,  # one catalogue for agents and team members that each use some of these
)
"""What the ledger needs to know of each function: its kind, and whether the provider
behind an external one honours the idempotency key."""


def claims_functions(sessions: Sessions) -> list[Callable[..., Awaitable[str]]]:
    async def lookup_policy(policy_id: str) -> str:
        """Look up an insurance policy: holder, product, status and coverage limit."""
        return json.dumps(await claims.lookup_policy(sessions, policy_id))

    async def get_claim_status(claim_id: int) -> str:
        """Get a claim's status, amount, description and the policy it belongs to."""
        return json.dumps(await claims.claim_status(sessions, claim_id))

    async def create_claim_note(claim_id: int, text: str) -> str:
        """Add a note to a claim's file."""
        ctx = current_tool_context()  # the ledger's transaction: note and record commit together
        note = await claims.add_note(
            ctx.db, claim_id, text, ctx.conversation_id, ctx.idempotency_key
        )
        return json.dumps(note)

    async def send_customer_email(claim_id: int, subject: str, body: str) -> str:
        """Email the claim's policy holder."""
        ctx = current_tool_context()  # the idempotency key goes to the provider
        sent = await claims.send_email(
            sessions, claim_id, subject, body, ctx.conversation_id, ctx.idempotency_key
        )
        return json.dumps(sent)

    return [lookup_policy, get_claim_status, create_claim_note, send_customer_email]
