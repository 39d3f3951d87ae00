"""template versions, a Content SID per localization, language fallbacks

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 17:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("content_sids", sa.JSON(), nullable=False, server_default="{}")
        )
        batch_op.add_column(sa.Column("fallbacks", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.alter_column("content_sids", server_default=None)
        batch_op.alter_column("fallbacks", server_default=None)
        batch_op.alter_column("version", server_default=None)

    op.create_table(
        "template_versions",
        sa.Column("template_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("default_locale", sa.String(length=35), nullable=False),
        sa.Column("default_text", sa.Text(), nullable=False),
        sa.Column("localizations", sa.JSON(), nullable=False),
        sa.Column("content_sid", sa.String(length=64), nullable=True),
        sa.Column("content_sids", sa.JSON(), nullable=False),
        sa.Column("fallbacks", sa.JSON(), nullable=False),
        sa.Column("created_by_key_id", sa.String(length=36), nullable=True),
        sa.Column("created_by_user_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_template_versions_org_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_template_versions_template_id_templates"),
        ),
        sa.PrimaryKeyConstraint("template_id", "version", name=op.f("pk_template_versions")),
    )
    with op.batch_alter_table("template_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_template_versions_org_id"), ["org_id"], unique=False)
    # Every template so far is its first version, made by nobody known, when last changed.
    op.execute(
        "INSERT INTO template_versions (template_id, version, org_id, name, default_locale,"
        " default_text, localizations, content_sid, content_sids, fallbacks, created_at)"
        " SELECT id, 1, org_id, name, default_locale, default_text, localizations, content_sid,"
        " content_sids, fallbacks, updated_at FROM templates"
    )

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("content_sid", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("content_sid")
        batch_op.drop_column("template_version")
    with op.batch_alter_table("template_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_template_versions_org_id"))
    op.drop_table("template_versions")
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.drop_column("version")
        batch_op.drop_column("fallbacks")
        batch_op.drop_column("content_sids")
