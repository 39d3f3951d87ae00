"""The migrated schema equals the models, on every backend."""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from outbound.adapters.db.migrate import current_revision, head_revision, is_current, upgrade
from outbound.adapters.db.models import Base
from outbound.app import Container


def test_migrations_produce_the_models_schema(container: Container) -> None:
    with container.db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def _quoted(text: str) -> list[str]:
    return re.findall(r"'([^']*)'", text)


def test_migrated_check_constraints_allow_the_models_values(container: Container) -> None:
    """Alembic does not compare CHECK constraints; the vocabularies of ``domain/`` must match."""
    inspector = sa.inspect(container.db.engine)
    for table in Base.metadata.sorted_tables:
        expected = {
            str(c.name): _quoted(str(c.sqltext))
            for c in table.constraints
            if isinstance(c, sa.CheckConstraint)
        }
        found = {
            str(c["name"]): _quoted(c["sqltext"])
            for c in inspector.get_check_constraints(table.name)
        }
        assert found == expected, table.name


def test_database_is_at_head_and_upgrade_is_idempotent(container: Container) -> None:
    assert is_current(container.db.engine)
    upgrade(container.db.engine)
    assert current_revision(container.db.engine) == head_revision()


def test_fresh_sqlite_file_is_not_current_until_migrated(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert current_revision(engine) is None
    assert not is_current(engine)
    upgrade(engine)
    assert is_current(engine)
    engine.dispose()
