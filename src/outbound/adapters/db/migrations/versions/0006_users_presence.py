"""users, their API keys, presence

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 14:17:33.762489
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("ui_language", sa.String(length=35), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("presence", sa.String(length=16), nullable=False),
        sa.Column("presence_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "presence IN ('available', 'busy', 'dnd', 'away', 'offline')",
            name=op.f("ck_users_presence"),
        ),
        sa.CheckConstraint("role IN ('admin', 'supervisor', 'agent')", name=op.f("ck_users_role")),
        sa.CheckConstraint("capacity >= 0 AND capacity <= 100", name=op.f("ck_users_capacity")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_users_org_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("org_id", "email", name=op.f("uq_users_org_id_email")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index("ix_users_org_created", ["org_id", "created_at", "id"], unique=False)

    op.create_table(
        "presence_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("previous_status", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("changed_by", sa.String(length=36), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "source IN ('user', 'supervisor', 'system')", name=op.f("ck_presence_changes_source")
        ),
        sa.CheckConstraint(
            "status IN ('available', 'busy', 'dnd', 'away', 'offline')",
            name=op.f("ck_presence_changes_status"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"], name=op.f("fk_presence_changes_org_id_organizations")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_presence_changes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_presence_changes")),
    )
    with op.batch_alter_table("presence_changes", schema=None) as batch_op:
        batch_op.create_index("ix_presence_changes_org", ["org_id", "changed_at"], unique=False)
        batch_op.create_index("ix_presence_changes_user", ["user_id", "changed_at"], unique=False)

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_api_keys_user_id"), ["user_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_api_keys_user_id_users"), "users", ["user_id"], ["id"]
        )
        batch_op.drop_constraint(batch_op.f("ck_api_keys_role"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_api_keys_role"), "role IN ('admin', 'sender', 'supervisor', 'agent')"
        )


def downgrade() -> None:
    # Older versions know no supervisors: their keys go back to what an agent may do.
    op.execute("UPDATE api_keys SET role = 'agent' WHERE role = 'supervisor'")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_api_keys_role"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_api_keys_role"), "role IN ('admin', 'sender', 'agent')"
        )
        batch_op.drop_constraint(batch_op.f("fk_api_keys_user_id_users"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_api_keys_user_id"))
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("user_id")

    with op.batch_alter_table("presence_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_presence_changes_user")
        batch_op.drop_index("ix_presence_changes_org")

    op.drop_table("presence_changes")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_org_created")

    op.drop_table("users")
