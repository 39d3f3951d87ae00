"""the organisation's conversations by status, newest first

The inbox lists the live conversations (open, active, waiting, in wrap-up) of an
organisation, newest first. Closed ones pile up for years while the live ones stay few; read
through ``ix_conversations_org_created`` the list went through every conversation ever closed
to find them (164 ms on PostgreSQL and about 300 ms on SQLite with 1,000,000 conversations,
18 of them live). This index reads the live ones alone.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 03:10:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_conversations_org_status", "conversations", ["org_id", "status", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_org_status", table_name="conversations")
