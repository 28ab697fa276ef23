"""Sample policies and claims, inserted once."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from demo.tables import Claim, Policy

POLICIES: list[Policy | Claim] = [
    Policy(
        id="POL-1001",
        holder_name="Ada Lovelace",
        holder_email="ada@example.com",
        product="Home",
        status="active",
        coverage_limit=250_000,
    ),
    Policy(
        id="POL-1002",
        holder_name="Alan Turing",
        holder_email="alan@example.com",
        product="Auto",
        status="active",
        coverage_limit=40_000,
    ),
    Policy(
        id="POL-1003",
        holder_name="Grace Hopper",
        holder_email="grace@example.com",
        product="Travel",
        status="lapsed",
        coverage_limit=5_000,
    ),
]
CLAIMS: list[Policy | Claim] = [
    Claim(
        id=123,
        policy_id="POL-1001",
        status="in_review",
        amount=4_200,
        description="Water damage in the kitchen after a pipe burst",
    ),
    Claim(
        id=124,
        policy_id="POL-1002",
        status="approved",
        amount=1_850,
        description="Rear bumper replaced after a parking collision",
    ),
    Claim(
        id=125,
        policy_id="POL-1003",
        status="denied",
        amount=900,
        description="Lost luggage; the policy had lapsed",
    ),
]


async def seed_demo(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        for row in [*POLICIES, *CLAIMS]:
            if await session.get(type(row), row.id) is None:
                session.add(_copy(row))


def _copy(row: Policy | Claim) -> Policy | Claim:
    columns = {c.key: getattr(row, c.key) for c in row.__table__.columns}
    return type(row)(**columns)
