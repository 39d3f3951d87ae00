"""an index of the rollup reasons in the order reports sum them

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 21:20:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_COLUMNS = ["org_id", "period", "starts_at", "kind", "code", "channel_id", "count"]


def upgrade() -> None:
    op.create_index("ix_message_rollup_reasons_report", "message_rollup_reasons", _COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_message_rollup_reasons_report", table_name="message_rollup_reasons")
