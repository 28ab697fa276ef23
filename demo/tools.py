"""The claims assistant's tools, in this project's own tool form."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agents.tools import Tool, ToolContext, tool
from demo import claims
from demo.claims import Sessions


class LookupPolicyArgs(BaseModel):
    policy_id: str = Field(description="Policy number, for example POL-1001")


class ClaimArgs(BaseModel):
    claim_id: int = Field(description="Claim number, for example 123")


class CreateNoteArgs(BaseModel):
    claim_id: int = Field(description="Claim number")
    text: str = Field(min_length=1, max_length=4000, description="The note to add")


class SendEmailArgs(BaseModel):
    claim_id: int = Field(description="Claim number; the email goes to its policy holder")
    subject: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=20_000)


def claims_tools(sessions: Sessions) -> list[Tool]:
    """The four demo tools. `sessions` reads the demo tables and plays the email provider."""

    @tool(kind="read")
    async def lookup_policy(ctx: ToolContext, args: LookupPolicyArgs) -> dict[str, object]:
        """Look up an insurance policy: holder, product, status and coverage limit."""
        return await claims.lookup_policy(sessions, args.policy_id)

    @tool(kind="read")
    async def get_claim_status(ctx: ToolContext, args: ClaimArgs) -> dict[str, object]:
        """Get a claim's status, amount, description and the policy it belongs to."""
        return await claims.claim_status(sessions, args.claim_id)

    @tool(kind="database")
    async def create_claim_note(ctx: ToolContext, args: CreateNoteArgs) -> dict[str, object]:
        """Add a note to a claim's file."""
        return await claims.add_note(
            ctx.db, args.claim_id, args.text, ctx.conversation_id, ctx.idempotency_key
        )

    @tool(kind="external")
    async def send_customer_email(ctx: ToolContext, args: SendEmailArgs) -> dict[str, object]:
        """Email the claim's policy holder. The provider dedupes by idempotency key."""
        return await claims.send_email(
            sessions,
            args.claim_id,
            args.subject,
            args.body,
            ctx.conversation_id,
            ctx.idempotency_key,
        )

    return [lookup_policy, get_claim_status, create_claim_note, send_customer_email]
