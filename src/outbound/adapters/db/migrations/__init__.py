"""Alembic migrations, run programmatically by :mod:`outbound.adapters.db.migrate`."""
