"""replies consent conversations

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 15:23:23.564940
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "consent_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("channel_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "action IN ('opt_out', 'opt_in')", name=op.f("ck_consent_events_action")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
    )
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_events_org_id"), ["org_id"], unique=False)

    op.create_table(
        "conversations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("channel_id", sa.String(length=36), nullable=False),
        sa.Column("configuration_id", sa.String(length=36), nullable=True),
        sa.Column("customer_number", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("assigned_to", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_conversations_status")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_conversations_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversations_lookup", ["channel_id", "customer_number", "status"], unique=False
        )
        batch_op.create_index(
            "ix_conversations_org_created", ["org_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("channel_id", sa.String(length=36), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("provider_message_id", sa.String(length=100), nullable=False),
        sa.Column("from_number", sa.String(length=32), nullable=False),
        sa.Column("to_number", sa.String(length=64), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("keyword", sa.String(length=16), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("in_reply_to", sa.String(length=36), nullable=True),
        sa.Column("conversation_id", sa.String(length=36), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_inbound_messages_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
        sa.UniqueConstraint(
            "channel_id",
            "provider_message_id",
            name=op.f("uq_inbound_messages_channel_id_provider_message_id"),
        ),
    )
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inbound_messages_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index("ix_inbound_org_received", ["org_id", "received_at"], unique=False)

    op.create_table(
        "recipients",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("channel_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("consent_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_recipients_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recipients")),
        sa.UniqueConstraint("channel_id", "number", name=op.f("uq_recipients_channel_id_number")),
    )
    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recipients_org_id"), ["org_id"], unique=False)

    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("webhook_token", sa.String(length=64), nullable=False, server_default="")
        )
    # Channels created before webhooks existed get a token of their own.
    connection = op.get_bind()
    channels = sa.table(
        "channels", sa.column("id", sa.String), sa.column("webhook_token", sa.String)
    )
    for (channel_id,) in connection.execute(sa.select(channels.c.id)).all():
        connection.execute(
            channels.update()
            .where(channels.c.id == channel_id)
            .values(webhook_token=secrets.token_urlsafe(24))
        )

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("conversation_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("sent_via_channel_id", sa.String(length=36), nullable=True))
        batch_op.add_column(
            sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.alter_column("request_id", existing_type=sa.VARCHAR(length=36), nullable=True)
        batch_op.alter_column(
            "configuration_id", existing_type=sa.VARCHAR(length=36), nullable=True
        )
        batch_op.alter_column("template_id", existing_type=sa.VARCHAR(length=36), nullable=True)
        batch_op.create_index(
            batch_op.f("ix_messages_conversation_id"), ["conversation_id"], unique=False
        )

    with op.batch_alter_table("outbound_configurations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fallback_channel_id", sa.String(length=36), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_outbound_configurations_fallback_channel_id_channels"),
            "channels",
            ["fallback_channel_id"],
            ["id"],
        )


def downgrade() -> None:

    with op.batch_alter_table("outbound_configurations", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_outbound_configurations_fallback_channel_id_channels"),
            type_="foreignkey",
        )
        batch_op.drop_column("fallback_channel_id")

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_conversation_id"))
        batch_op.alter_column("template_id", existing_type=sa.VARCHAR(length=36), nullable=False)
        batch_op.alter_column(
            "configuration_id", existing_type=sa.VARCHAR(length=36), nullable=False
        )
        batch_op.alter_column("request_id", existing_type=sa.VARCHAR(length=36), nullable=False)
        batch_op.drop_column("first_attempt_at")
        batch_op.drop_column("sent_via_channel_id")
        batch_op.drop_column("conversation_id")

    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.drop_column("webhook_token")

    with op.batch_alter_table("recipients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recipients_org_id"))

    op.drop_table("recipients")
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_org_received")
        batch_op.drop_index(batch_op.f("ix_inbound_messages_conversation_id"))

    op.drop_table("inbound_messages")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_conversations_org_created")
        batch_op.drop_index("ix_conversations_lookup")

    op.drop_table("conversations")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_events_org_id"))

    op.drop_table("consent_events")
