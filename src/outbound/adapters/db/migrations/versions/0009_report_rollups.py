"""report rollups per hour and day; messages.country, flow_run_id

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 17:30:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_COUNTERS = (
    "requested",
    "skipped",
    "rejected",
    "canceled",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "failovers",
    "segments",
    "replied",
)
_LATENCY_BUCKETS = 14


def _key() -> list[sa.Column[Any]]:
    return [
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("period", sa.String(length=4), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("configuration_id", sa.String(length=36), nullable=False),
        sa.Column("template_id", sa.String(length=36), nullable=False),
        sa.Column("channel_id", sa.String(length=36), nullable=False),
        sa.Column("flow_run_id", sa.String(length=36), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
    ]


_KEY_NAMES = [
    "org_id",
    "period",
    "starts_at",
    "configuration_id",
    "template_id",
    "channel_id",
    "flow_run_id",
    "locale",
    "country",
]


def upgrade() -> None:
    op.create_table(
        "message_rollups",
        *_key(),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _COUNTERS),
        *(
            sa.Column(f"{kind}_latency_{i}", sa.BigInteger(), nullable=False)
            for kind in ("sent", "delivered")
            for i in range(_LATENCY_BUCKETS)
        ),
        sa.CheckConstraint("period IN ('hour', 'day')", name=op.f("ck_message_rollups_period")),
        sa.PrimaryKeyConstraint(*_KEY_NAMES, name=op.f("pk_message_rollups")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "message_rollup_reasons",
        *_key(),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('skipped', 'rejected', 'failed')",
            name=op.f("ck_message_rollup_reasons_kind"),
        ),
        sa.CheckConstraint(
            "period IN ('hour', 'day')", name=op.f("ck_message_rollup_reasons_period")
        ),
        sa.PrimaryKeyConstraint(
            *_KEY_NAMES, "kind", "code", name=op.f("pk_message_rollup_reasons")
        ),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("country", sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column("flow_run_id", sa.String(length=36), nullable=True))
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.create_index("ix_inbound_in_reply_to", ["in_reply_to"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_in_reply_to")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("flow_run_id")
        batch_op.drop_column("country")
    op.drop_table("message_rollup_reasons")
    op.drop_table("message_rollups")
