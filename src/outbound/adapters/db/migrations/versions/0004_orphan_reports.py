"""orphan reports

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 16:23:18.085916
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "orphan_reports",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("provider_message_id", sa.String(length=100), nullable=False),
        sa.Column("channel_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orphan_reports")),
    )
    with op.batch_alter_table("orphan_reports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orphan_reports_lookup", ["provider", "provider_message_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("orphan_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_orphan_reports_lookup")

    op.drop_table("orphan_reports")
