"""queues, routing, conversation lifecycle

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 14:57:07.100347
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stream_events")),
    )
    with op.batch_alter_table("stream_events", schema=None) as batch_op:
        batch_op.create_index("ix_stream_events_org_id", ["org_id", "id"], unique=False)

    op.create_table(
        "canned_responses",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("shortcode", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_canned_responses_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_responses")),
        sa.UniqueConstraint(
            "org_id", "shortcode", name=op.f("uq_canned_responses_org_id_shortcode")
        ),
    )
    op.create_table(
        "queues",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("assignment_method", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("offer_timeout_seconds", sa.Integer(), nullable=True),
        sa.Column("reassign_after_seconds", sa.Integer(), nullable=True),
        sa.Column("wrap_up_seconds", sa.Integer(), nullable=False),
        sa.Column("hours", sa.JSON(), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("overflow", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "assignment_method IN ('highest_capacity', 'round_robin', 'least_active', 'manual')",
            name=op.f("ck_queues_method"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_queues_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queues")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_queues_org_id_name")),
    )
    op.create_table(
        "conversation_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor_user_id", sa.String(length=36), nullable=True),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("from_user_id", sa.String(length=36), nullable=True),
        sa.Column("to_user_id", sa.String(length=36), nullable=True),
        sa.Column("from_queue_id", sa.String(length=36), nullable=True),
        sa.Column("to_queue_id", sa.String(length=36), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_events_conversation_id_conversations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_events")),
    )
    with op.batch_alter_table("conversation_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversation_events_conversation_id"), ["conversation_id"], unique=False
        )

    op.create_table(
        "conversation_notes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_notes_conversation_id_conversations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_notes")),
    )
    with op.batch_alter_table("conversation_notes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversation_notes_conversation_id"), ["conversation_id"], unique=False
        )

    op.create_table(
        "queue_members",
        sa.Column("queue_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assignments", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queues.id"], name=op.f("fk_queue_members_queue_id_queues")
        ),
        sa.PrimaryKeyConstraint("queue_id", "user_id", name=op.f("pk_queue_members")),
    )
    with op.batch_alter_table("queue_members", schema=None) as batch_op:
        batch_op.create_index("ix_queue_members_user", ["user_id"], unique=False)

    op.create_table(
        "routing_rules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("queue_id", sa.String(length=36), nullable=False),
        sa.Column("required_skills", sa.JSON(), nullable=False),
        sa.Column("required_language", sa.String(length=35), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_routing_rules_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queues.id"], name=op.f("fk_routing_rules_queue_id_queues")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rules")),
    )
    with op.batch_alter_table("routing_rules", schema=None) as batch_op:
        batch_op.create_index("ix_routing_rules_org_position", ["org_id", "position"], unique=False)

    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("rule_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("required_skills", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("required_language", sa.String(length=35), nullable=True))
        batch_op.add_column(sa.Column("contact_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("answered_message_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("affinity_user_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("offered_to", sa.String(length=36), nullable=True))
        batch_op.add_column(
            sa.Column("offer_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("last_agent_message_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("last_customer_message_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("snoozed_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("wrap_up_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("overflowed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.drop_constraint(op.f("ck_conversations_status"), type_="check")
        batch_op.create_check_constraint(
            "status", "status IN ('open', 'active', 'waiting', 'wrap_up', 'closed')"
        )
        batch_op.create_index("ix_conversations_assignee", ["assigned_to", "status"], unique=False)
        batch_op.create_index(
            "ix_conversations_queue_waiting", ["queue_id", "status", "waiting_since"], unique=False
        )

    with op.batch_alter_table("flow_run_batches", schema=None) as batch_op:
        batch_op.create_index("ix_flow_run_batches_request_id", ["request_id"], unique=False)

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_by_user_id", sa.String(length=36), nullable=True))

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fallback_queue_id", sa.String(length=36), nullable=True))
        batch_op.add_column(
            sa.Column("reopen_closed", sa.Boolean(), nullable=False, server_default=sa.false())
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_assigned_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("last_released_at", sa.DateTime(timezone=True), nullable=True)
        )

    # The defaults above only fill existing rows; the models give new rows their values.
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.alter_column("priority", server_default=None)
        batch_op.alter_column("required_skills", server_default=None)
        batch_op.alter_column("version", server_default=None)
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.alter_column("reopen_closed", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("last_released_at")
        batch_op.drop_column("last_assigned_at")

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("reopen_closed")
        batch_op.drop_column("fallback_queue_id")

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("sent_by_user_id")

    with op.batch_alter_table("flow_run_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_flow_run_batches_request_id")

    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_conversations_queue_waiting")
        batch_op.drop_index("ix_conversations_assignee")
        batch_op.drop_constraint(op.f("ck_conversations_status"), type_="check")
        batch_op.create_check_constraint("status", "status IN ('open', 'closed')")
        batch_op.drop_column("version")
        batch_op.drop_column("overflowed_at")
        batch_op.drop_column("closed_at")
        batch_op.drop_column("wrap_up_until")
        batch_op.drop_column("snoozed_until")
        batch_op.drop_column("last_customer_message_at")
        batch_op.drop_column("last_agent_message_at")
        batch_op.drop_column("first_response_at")
        batch_op.drop_column("assigned_at")
        batch_op.drop_column("offer_expires_at")
        batch_op.drop_column("offered_to")
        batch_op.drop_column("waiting_since")
        batch_op.drop_column("affinity_user_id")
        batch_op.drop_column("answered_message_id")
        batch_op.drop_column("contact_id")
        batch_op.drop_column("required_language")
        batch_op.drop_column("required_skills")
        batch_op.drop_column("priority")
        batch_op.drop_column("rule_id")
        batch_op.drop_column("queue_id")

    with op.batch_alter_table("routing_rules", schema=None) as batch_op:
        batch_op.drop_index("ix_routing_rules_org_position")

    op.drop_table("routing_rules")
    with op.batch_alter_table("queue_members", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_members_user")

    op.drop_table("queue_members")
    with op.batch_alter_table("conversation_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_notes_conversation_id"))

    op.drop_table("conversation_notes")
    with op.batch_alter_table("conversation_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_events_conversation_id"))

    op.drop_table("conversation_events")
    op.drop_table("queues")
    op.drop_table("canned_responses")
    with op.batch_alter_table("stream_events", schema=None) as batch_op:
        batch_op.drop_index("ix_stream_events_org_id")

    op.drop_table("stream_events")
