"""the messages to a number in the order of their creation

A conversation shows what was sent its customer on its channel since it began: the index of
the messages per number now ends with their creation time, so that this reads one range of
it. Without it SQLite, which keeps no statistics, preferred ``ix_messages_org_created`` and
read every message the organisation sent since the conversation began. Look-ups by number
(erasure, tracking) use the new index as they used the old one.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 00:10:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_org_to_created", "messages", ["org_id", "to_number", "created_at"])
    op.drop_index("ix_messages_org_to", table_name="messages")


def downgrade() -> None:
    op.create_index("ix_messages_org_to", "messages", ["org_id", "to_number"])
    op.drop_index("ix_messages_org_to_created", table_name="messages")
