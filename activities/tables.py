"""The ledger and the transcript (SQLAlchemy 2.0 typed ORM)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from activities.db import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


class LedgerEntry(Base):
    """One tool side effect, keyed by its position in the conversation."""

    __tablename__ = "tool_ledger"

    key: Mapped[str] = mapped_column(String(1200), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(1000), index=True)
    tool: Mapped[str] = mapped_column(String(128))
    args_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # claimed | succeeded | failed | unknown
    owner: Mapped[str] = mapped_column(String(1200))  # workflow run + activity ID
    attempt: Mapped[int] = mapped_column(Integer)
    lease_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    result: Mapped[str | None] = mapped_column(Text)  # ToolCallOutput JSON once final
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class TranscriptMessage(Base):
    """One message of a conversation, written once at its sequence number."""

    __tablename__ = "transcript_messages"
    __table_args__ = (
        UniqueConstraint("chain_id", "seq", name="uq_transcript_chain_seq"),
        UniqueConstraint("chain_id", "message_id", name="uq_transcript_chain_message_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(1000), index=True)
    chain_id: Mapped[str] = mapped_column(String(64))  # first run ID: survives continue-as-new
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[str | None] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)  # interface.Message JSON
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TextDelta(Base):
    """One batch of a running model call's text (or a `text_reset`), for live readers."""

    __tablename__ = "text_deltas"
    __table_args__ = (
        Index("ix_text_deltas_conversation_id", "conversation_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    conversation_id: Mapped[str] = mapped_column(String(1000))
    turn: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # text | text_reset
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class TextListener(Base):
    """A conversation someone reads text deltas of, until `until` (readers renew it)."""

    __tablename__ = "text_listeners"

    conversation_id: Mapped[str] = mapped_column(String(1000), primary_key=True)
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
