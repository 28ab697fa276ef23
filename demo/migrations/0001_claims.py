"""claims demo tables

Revision ID: demo_0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "demo_0001"
down_revision = None
branch_labels = ("demo",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policies",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("holder_name", sa.String(200), nullable=False),
        sa.Column("holder_email", sa.String(200), nullable=False),
        sa.Column("product", sa.String(100), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("coverage_limit", sa.Numeric(12, 2), nullable=False),
    )
    op.create_table(
        "claims",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("policy_id", sa.String(32), sa.ForeignKey("policies.id"), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False),
    )
    op.create_table(
        "claim_notes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("claim_id", sa.Integer, sa.ForeignKey("claims.id"), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("ledger_key", sa.String(512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_claim_notes_claim_id", "claim_notes", ["claim_id"])
    op.create_index("ix_claim_notes_conversation_id", "claim_notes", ["conversation_id"])
    op.create_table(
        "email_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(512), nullable=False, unique=True),
        sa.Column("claim_id", sa.Integer, nullable=False),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("to_address", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_email_outbox_claim_id", "email_outbox", ["claim_id"])
    op.create_index("ix_email_outbox_conversation_id", "email_outbox", ["conversation_id"])


def downgrade() -> None:
    for table in ("email_outbox", "claim_notes", "claims", "policies"):
        op.drop_table(table)
