"""whether a configuration sends to the same number twice in one request

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 17:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_configurations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "allow_duplicate_numbers", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("outbound_configurations", schema=None) as batch_op:
        batch_op.drop_column("allow_duplicate_numbers")
