"""conversation ID columns fit any workflow ID Temporal accepts

Revision ID: core_0002
Revises: core_0001
Create Date: 2026-12-01

A conversation ID is a workflow ID: Temporal accepts up to 1,000 characters by default
(`limit.maxIDLength`), and the ledger key starts with it. PostgreSQL enforced the old
varchar(255), so a longer ID failed every model call (issue 15, finding 4); SQLite ignores
lengths, so nothing changes there.
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0002"
down_revision = "core_0001"
branch_labels = None
depends_on = None

WIDENED = {
    ("tool_ledger", "conversation_id"): (255, 1000),
    ("tool_ledger", "key"): (512, 1200),
    ("tool_ledger", "owner"): (512, 1200),
    ("transcript_messages", "conversation_id"): (255, 1000),
}


def upgrade() -> None:
    _resize(new=True)


def downgrade() -> None:
    _resize(new=False)


def _resize(*, new: bool) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return  # SQLite does not enforce varchar lengths; recreating the tables buys nothing
    for (table, column), (old, wide) in WIDENED.items():
        before, after = (old, wide) if new else (wide, old)
        op.alter_column(
            table, column, type_=sa.String(after), existing_type=sa.String(before), existing_nullable=False
        )
