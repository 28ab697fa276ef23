"""The claims domain's operations, shared by every tool flavour (ours, AutoGen's,
LlamaIndex's). SQL is built by SQLAlchemy, so arguments are always bound parameters."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agents.errors import ToolBusinessError
from demo.tables import Claim, ClaimNote, OutboxEmail, Policy

Sessions = async_sessionmaker[AsyncSession]


async def lookup_policy(sessions: Sessions, policy_id: str) -> dict[str, object]:
    async with sessions() as session:
        policy = await session.get(Policy, policy_id)
    if policy is None:
        raise ToolBusinessError(f"no policy {policy_id}")
    return {
        "policy_id": policy.id,
        "holder": policy.holder_name,
        "product": policy.product,
        "status": policy.status,
        "coverage_limit": str(policy.coverage_limit),
    }


async def claim_status(sessions: Sessions, claim_id: int) -> dict[str, object]:
    async with sessions() as session:
        claim = await _claim(session, claim_id)
        note = await session.scalar(
            select(ClaimNote.id).where(ClaimNote.claim_id == claim.id).limit(1)
        )
    return {
        "claim_id": claim.id,
        "status": claim.status,
        "amount": str(claim.amount),
        "description": claim.description,
        "policy_id": claim.policy_id,
        "has_notes": note is not None,
    }


async def add_note(
    session: AsyncSession, claim_id: int, text: str, conversation_id: str, key: str
) -> dict[str, object]:
    """Runs in the ledger's transaction: the note and the ledger row commit together."""
    await _claim(session, claim_id)
    note = ClaimNote(claim_id=claim_id, text=text, conversation_id=conversation_id, ledger_key=key)
    session.add(note)
    await session.flush()
    return {"note_id": note.id, "claim_id": claim_id}


async def send_email(
    sessions: Sessions, claim_id: int, subject: str, body: str, conversation_id: str, key: str
) -> dict[str, object]:
    """The demo's email provider: an outbox that ignores a repeated idempotency key."""
    async with sessions() as session, session.begin():
        claim = await _claim(session, claim_id)
        policy = await session.get(Policy, claim.policy_id)
        assert policy is not None
        insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
        await session.execute(
            insert(OutboxEmail)
            .values(
                idempotency_key=key,
                claim_id=claim_id,
                conversation_id=conversation_id,
                to_address=policy.holder_email,
                subject=subject,
                body=body,
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
        )
        email_id = await session.scalar(
            select(OutboxEmail.id).where(OutboxEmail.idempotency_key == key)
        )
    return {"email_id": int(email_id or 0), "to": policy.holder_email, "claim_id": claim_id}


async def _claim(session: AsyncSession, claim_id: int) -> Claim:
    claim = await session.get(Claim, claim_id)
    if claim is None:
        raise ToolBusinessError(f"no claim {claim_id}")
    return claim
