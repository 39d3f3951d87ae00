"""The database helpers shared by the queues: row locks where the database has them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from outbound.adapters.db.engine import Database, create_engine
from outbound.adapters.db.models import Organization
from outbound.services.auth import create_organization
from outbound.testing import FakeClock


def test_for_update_locks_rows_on_postgresql_and_leaves_sqlite_queries_alone(
    database_url: str,
) -> None:
    db = Database(create_engine(database_url))
    query = sa.select(Organization.id)
    locking = str(db.for_update(query).compile(db.engine))
    skipping = str(db.for_update(query, skip_locked=True).compile(db.engine))
    if db.is_sqlite:
        assert locking == skipping == str(query.compile(db.engine))
    else:
        assert locking.endswith("FOR UPDATE")
        assert skipping.endswith("FOR UPDATE SKIP LOCKED")
    db.dispose()


def test_skip_locked_passes_over_rows_another_transaction_holds(
    backend: str, database_url: str
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: no second transaction to pass rows over")
    db = Database(create_engine(database_url))
    org = create_organization(db, FakeClock(), "Acme")
    query = sa.select(Organization.id).where(Organization.id == org.id)
    with db.transaction() as holder:
        assert holder.execute(db.for_update(query)).scalar_one() == org.id
        with db.transaction() as other:
            assert other.execute(db.for_update(query, skip_locked=True)).all() == []
    with db.transaction() as session:
        assert session.execute(db.for_update(query, skip_locked=True)).scalar_one() == org.id
    db.dispose()
