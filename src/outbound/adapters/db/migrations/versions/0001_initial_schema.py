"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 15:09:59.581799
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STATUS_CHECK = (
    "status IN ('queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', "
    "'skipped', 'rejected', 'canceled')"
)


def upgrade() -> None:

    op.create_table(
        "organizations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("max_contacts_per_request", sa.Integer(), nullable=True),
        sa.Column("hourly_request_quota", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
    )
    op.create_table(
        "rate_counters",
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "bucket", name=op.f("pk_rate_counters")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('admin', 'sender', 'agent')", name=op.f("ck_api_keys_role")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_api_keys_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_org_id"), ["org_id"], unique=False)

    op.create_table(
        "channels",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=True),
        sa.Column("credentials_encrypted", sa.Text(), nullable=True),
        sa.Column("credential_fields", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("healthy", sa.Boolean(), nullable=False),
        sa.Column("health_detail", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "provider IN ('sandbox', 'twilio', 'telesign', 'acs')",
            name=op.f("ck_channels_provider"),
        ),
        sa.CheckConstraint("type IN ('sms', 'whatsapp')", name=op.f("ck_channels_type")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_channels_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
    )
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_channels_org_id"), ["org_id"], unique=False)

    op.create_table(
        "send_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("configuration_id", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('processing', 'completed')", name=op.f("ck_send_requests_state")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_send_requests_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_send_requests")),
        sa.UniqueConstraint(
            "org_id", "idempotency_key", name=op.f("uq_send_requests_org_id_idempotency_key")
        ),
    )
    op.create_table(
        "templates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("channel_type", sa.String(length=16), nullable=False),
        sa.Column("default_locale", sa.String(length=35), nullable=False),
        sa.Column("default_text", sa.Text(), nullable=False),
        sa.Column("localizations", sa.JSON(), nullable=False),
        sa.Column("content_sid", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "channel_type IN ('sms', 'whatsapp')", name=op.f("ck_templates_channel_type")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_templates_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_templates_org_id_name")),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("contact_index", sa.Integer(), nullable=False),
        sa.Column("configuration_id", sa.String(length=36), nullable=False),
        sa.Column("channel_id", sa.String(length=36), nullable=False),
        sa.Column("template_id", sa.String(length=36), nullable=False),
        sa.Column("channel_type", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("to_raw", sa.String(length=100), nullable=False),
        sa.Column("to_number", sa.String(length=32), nullable=True),
        sa.Column("from_number", sa.String(length=64), nullable=True),
        sa.Column("locale", sa.String(length=35), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("encoding", sa.String(length=8), nullable=True),
        sa.Column("segments", sa.Integer(), nullable=True),
        sa.Column("send_as_template", sa.Boolean(), nullable=False),
        sa.Column("template_parameters", sa.JSON(), nullable=True),
        sa.Column("context", sa.JSON(), nullable=True),
        sa.Column("regarding_object_id", sa.String(length=200), nullable=True),
        sa.Column("entity_relationship_name", sa.String(length=200), nullable=True),
        sa.Column("show_in_timeline", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("provider_message_id", sa.String(length=100), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker_id", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            STATUS_CHECK,
            name=op.f("ck_messages_status"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_messages_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["send_requests.id"], name=op.f("fk_messages_request_id_send_requests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messages_configuration_id"), ["configuration_id"], unique=False
        )
        batch_op.create_index("ix_messages_due", ["status", "scheduled_at"], unique=False)
        batch_op.create_index(
            "ix_messages_org_created", ["org_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_messages_org_to", ["org_id", "to_number"], unique=False)
        batch_op.create_index(
            "ix_messages_provider_id", ["provider", "provider_message_id"], unique=False
        )
        batch_op.create_index(
            "ix_messages_regarding", ["org_id", "regarding_object_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_messages_request_id"), ["request_id"], unique=False)

    op.create_table(
        "outbound_configurations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("show_in_timeline", sa.Boolean(), nullable=False),
        sa.Column("channel_type", sa.String(length=16), nullable=False),
        sa.Column("channel_id", sa.String(length=36), nullable=False),
        sa.Column("template_id", sa.String(length=36), nullable=False),
        sa.Column("default_locale", sa.String(length=35), nullable=True),
        sa.Column("conversation_mode", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "channel_type IN ('sms', 'whatsapp')",
            name=op.f("ck_outbound_configurations_channel_type"),
        ),
        sa.CheckConstraint(
            "conversation_mode IN ('on_response', 'on_send')",
            name=op.f("ck_outbound_configurations_conversation_mode"),
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_outbound_configurations_channel_id_channels"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_outbound_configurations_org_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_outbound_configurations_template_id_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_configurations")),
    )
    with op.batch_alter_table("outbound_configurations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbound_configurations_channel_id"), ["channel_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_outbound_configurations_org_id"), ["org_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_outbound_configurations_template_id"), ["template_id"], unique=False
        )

    op.create_table(
        "message_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.CheckConstraint(
            STATUS_CHECK,
            name=op.f("ck_message_events_status"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_events_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_events")),
    )
    with op.batch_alter_table("message_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_message_events_message_id"), ["message_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("message_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_events_message_id"))

    op.drop_table("message_events")
    with op.batch_alter_table("outbound_configurations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbound_configurations_template_id"))
        batch_op.drop_index(batch_op.f("ix_outbound_configurations_org_id"))
        batch_op.drop_index(batch_op.f("ix_outbound_configurations_channel_id"))

    op.drop_table("outbound_configurations")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_request_id"))
        batch_op.drop_index("ix_messages_regarding")
        batch_op.drop_index("ix_messages_provider_id")
        batch_op.drop_index("ix_messages_org_to")
        batch_op.drop_index("ix_messages_org_created")
        batch_op.drop_index("ix_messages_due")
        batch_op.drop_index(batch_op.f("ix_messages_configuration_id"))

    op.drop_table("messages")
    op.drop_table("templates")
    op.drop_table("send_requests")
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_channels_org_id"))

    op.drop_table("channels")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_org_id"))

    op.drop_table("api_keys")
    op.drop_table("rate_counters")
    op.drop_table("organizations")
