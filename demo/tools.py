"""The claims assistant's tools. SQL is built by SQLAlchemy, so arguments are always bound
parameters, never spliced into statement text."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agents.errors import ToolBusinessError
from agents.tools import Tool, ToolContext, tool
from demo.tables import Claim, ClaimNote, OutboxEmail, Policy


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


def claims_tools(sessions: async_sessionmaker[AsyncSession]) -> list[Tool]:
    """The four demo tools. `sessions` reads the demo tables and plays the email provider."""

    @tool(kind="read")
    async def lookup_policy(ctx: ToolContext, args: LookupPolicyArgs) -> dict[str, object]:
        """Look up an insurance policy: holder, product, status and coverage limit."""
        async with sessions() as session:
            policy = await session.get(Policy, args.policy_id)
        if policy is None:
            raise ToolBusinessError(f"no policy {args.policy_id}")
        return _policy_view(policy)

    @tool(kind="read")
    async def get_claim_status(ctx: ToolContext, args: ClaimArgs) -> dict[str, object]:
        """Get a claim's status, amount, description and the policy it belongs to."""
        async with sessions() as session:
            claim = await _claim(session, args.claim_id)
            notes = await session.scalar(
                select(ClaimNote.id).where(ClaimNote.claim_id == claim.id).limit(1)
            )
        return {
            "claim_id": claim.id,
            "status": claim.status,
            "amount": str(claim.amount),
            "description": claim.description,
            "policy_id": claim.policy_id,
            "has_notes": notes is not None,
        }

    @tool(kind="database")
    async def create_claim_note(ctx: ToolContext, args: CreateNoteArgs) -> dict[str, object]:
        """Add a note to a claim's file."""
        await _claim(ctx.db, args.claim_id)
        note = ClaimNote(
            claim_id=args.claim_id,
            text=args.text,
            conversation_id=ctx.conversation_id,
            ledger_key=ctx.idempotency_key,
        )
        ctx.db.add(note)
        await ctx.db.flush()
        return {"note_id": note.id, "claim_id": args.claim_id}

    @tool(kind="external")
    async def send_customer_email(ctx: ToolContext, args: SendEmailArgs) -> dict[str, object]:
        """Email the claim's policy holder. The provider dedupes by idempotency key."""
        async with sessions() as session, session.begin():
            claim = await _claim(session, args.claim_id)
            policy = await session.get(Policy, claim.policy_id)
            assert policy is not None
            email_id = await _send(session, ctx, args, policy.holder_email)
        return {"email_id": email_id, "to": policy.holder_email, "claim_id": args.claim_id}

    return [lookup_policy, get_claim_status, create_claim_note, send_customer_email]


async def _send(session: AsyncSession, ctx: ToolContext, args: SendEmailArgs, to: str) -> int:
    """Insert into the outbox; a repeated idempotency key sends nothing new."""
    dialect = session.get_bind().dialect.name
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    statement = (
        insert(OutboxEmail)
        .values(
            idempotency_key=ctx.idempotency_key,
            claim_id=args.claim_id,
            conversation_id=ctx.conversation_id,
            to_address=to,
            subject=args.subject,
            body=args.body,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    await session.execute(statement)
    email_id = await session.scalar(
        select(OutboxEmail.id).where(OutboxEmail.idempotency_key == ctx.idempotency_key)
    )
    return int(email_id or 0)


async def _claim(session: AsyncSession, claim_id: int) -> Claim:
    claim = await session.get(Claim, claim_id)
    if claim is None:
        raise ToolBusinessError(f"no claim {claim_id}")
    return claim


def _policy_view(policy: Policy) -> dict[str, object]:
    return {
        "policy_id": policy.id,
        "holder": policy.holder_name,
        "product": policy.product,
        "status": policy.status,
        "coverage_limit": str(policy.coverage_limit),
    }
