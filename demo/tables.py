"""The claims demo's own tables, on their own metadata, with their own Alembic revisions.

The worker creates them with `db.migrate(TableSet(NAME, migrations=MIGRATIONS))`: the demo
is the first tool package that brings its tables, and the core knows nothing of them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files

from sqlalchemy import DateTime, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAME = "demo"  # the Alembic branch label of demo/migrations
MIGRATIONS = files("demo.migrations")  # package data: found in an installed copy too


def _now() -> datetime:
    return datetime.now(UTC)


class DemoBase(DeclarativeBase):
    pass


class Policy(DemoBase):
    __tablename__ = "policies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder_name: Mapped[str] = mapped_column(String(200))
    holder_email: Mapped[str] = mapped_column(String(200))
    product: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(32))
    coverage_limit: Mapped[float] = mapped_column(Numeric(12, 2))


class Claim(DemoBase):
    __tablename__ = "claims"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[str] = mapped_column(ForeignKey("policies.id"))
    status: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    amount: Mapped[float] = mapped_column(Numeric(12, 2))


class ClaimNote(DemoBase):
    __tablename__ = "claim_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True)
    ledger_key: Mapped[str] = mapped_column(String(512))  # traceability only: not unique
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class OutboxEmail(DemoBase):
    """The demo's stand-in for an email provider that dedupes by idempotency key."""

    __tablename__ = "email_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(512), unique=True)
    claim_id: Mapped[int] = mapped_column(Integer, index=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True)
    to_address: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
