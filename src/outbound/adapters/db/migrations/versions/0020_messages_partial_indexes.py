"""messages: the provider's id, the regarding object and the conversation indexed when set

PostgreSQL cannot update a message in place when a status change moves an indexed column,
so each change writes a new entry in every index of the table: with ten indexes, a message
sent and delivered cost about forty index entries. Three of them indexed values many messages
do not have (no provider id until sent; no regarding object or conversation for most bulk
sends): as partial indexes (``… IS NOT NULL``) they take no entry for those, at insert or at
any later change. Every look-up through them names the value, which implies the condition.

On PostgreSQL the new indexes are built ``CONCURRENTLY`` before the old ones are dropped,
so a running service keeps sending while a large table is indexed.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 06:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_NEW = {
    "ix_messages_provider_message": ("provider", "provider_message_id"),
    "ix_messages_regarding_object": ("org_id", "regarding_object_id"),
    "ix_messages_conversation": ("conversation_id",),
}
_OLD = {
    "ix_messages_provider_id": ("provider", "provider_message_id"),
    "ix_messages_regarding": ("org_id", "regarding_object_id"),
    "ix_messages_conversation_id": ("conversation_id",),
}


def _swap(
    create: dict[str, tuple[str, ...]], drop: dict[str, tuple[str, ...]], partial: bool
) -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    where = {
        name: sa.text(f"{columns[-1]} IS NOT NULL") if partial else None
        for name, columns in create.items()
    }
    if postgresql:
        with op.get_context().autocommit_block():
            for name, columns in create.items():
                # An earlier attempt that failed half-way may have left it, invalid.
                op.drop_index(
                    name, table_name="messages", postgresql_concurrently=True, if_exists=True
                )
                op.create_index(
                    name,
                    "messages",
                    list(columns),
                    postgresql_where=where[name],
                    postgresql_concurrently=True,
                )
            for name in drop:
                op.drop_index(
                    name, table_name="messages", postgresql_concurrently=True, if_exists=True
                )
        return
    for name, columns in create.items():
        op.create_index(name, "messages", list(columns), sqlite_where=where[name])
    for name in drop:
        op.drop_index(name, table_name="messages")


def upgrade() -> None:
    _swap(_NEW, _OLD, partial=True)


def downgrade() -> None:
    _swap(_OLD, _NEW, partial=False)
