"""text deltas of running model calls

Revision ID: core_0003
Revises: core_0002
Create Date: 2026-12-01

The side channel of the conversation's event stream (docs/streaming.md): each row is one
batch of a model call's text deltas (or a `text_reset` when a retried attempt restarts a
step). Readers follow `id`; the writer prunes earlier turns' rows and old rows. A reader
marks its conversation in `text_listeners`; model calls of a conversation nobody listens to
write nothing.
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0003"
down_revision = "core_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "text_deltas",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("conversation_id", sa.String(1000), nullable=False),
        sa.Column("turn", sa.Integer, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_text_deltas_conversation_id", "text_deltas", ["conversation_id", "id"])
    op.create_index("ix_text_deltas_created_at", "text_deltas", ["created_at"])
    op.create_table(
        "text_listeners",
        sa.Column("conversation_id", sa.String(1000), primary_key=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("text_listeners")
    op.drop_table("text_deltas")
