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


def _index_sql(engine: sa.Engine, name: str) -> str | None:
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = :n"
        else:
            query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n"
        return connection.execute(sa.text(query), {"n": name}).scalar()


def test_partial_indexes_are_created_partial(container: Container) -> None:
    """Alembic does not compare an index's condition either: each index the models declare
    partial has its WHERE in the database."""
    dialect = container.db.dialect
    for table in Base.metadata.sorted_tables:
        for index in table.indexes:
            where = index.dialect_options[dialect]["where"]
            sql = _index_sql(container.db.engine, str(index.name))
            assert sql is not None, index.name
            if where is None:
                assert " WHERE " not in sql.upper(), index.name
            else:
                assert " WHERE " in sql.upper(), index.name


def test_the_partial_message_indexes_go_back_and_forth(container: Container) -> None:
    from alembic import command

    from outbound.adapters.db.migrate import alembic_config

    engine = container.db.engine
    with engine.connect() as connection:
        command.downgrade(alembic_config(connection), "0019")
        connection.commit()
    assert current_revision(engine) == "0019"
    sql = _index_sql(engine, "ix_messages_provider_id")
    assert sql is not None and " WHERE " not in sql.upper()
    assert _index_sql(engine, "ix_messages_provider_message") is None
    upgrade(engine)
    assert is_current(engine)
    assert _index_sql(engine, "ix_messages_provider_id") is None
    sql = _index_sql(engine, "ix_messages_provider_message")
    assert sql is not None and "provider_message_id IS NOT NULL" in sql.replace('"', "")
