"""status checks

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 20:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("next_status_check_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_check_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_messages_status_check",
            ["status_check_at"],
            unique=False,
            postgresql_where=sa.text("status_check_at IS NOT NULL"),
            sqlite_where=sa.text("status_check_at IS NOT NULL"),
        )
    # Messages sent before this revision and still waiting for their report are checked too.
    op.execute("UPDATE messages SET status_check_at = updated_at WHERE status = 'sent'")


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_status_check")
        batch_op.drop_column("status_check_at")
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.drop_column("next_status_check_at")
