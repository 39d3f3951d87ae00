"""organisations' keys of public ids

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 20:50:00.000000
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("id_key", sa.String(length=32), nullable=True))
    organizations = sa.table("organizations", sa.column("id", sa.String), sa.column("id_key"))
    connection = op.get_bind()
    for (org_id,) in connection.execute(sa.select(organizations.c.id)).all():
        connection.execute(
            organizations.update()
            .where(organizations.c.id == org_id)
            .values(id_key=secrets.token_hex(16))
        )
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.alter_column("id_key", existing_type=sa.String(length=32), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("id_key")
