"""A consistent copy of a SQLite database taken while the service uses it.

SQLite's online backup copies the database in one read transaction: the copy is the database
as it was at one instant, with every committed write before it and none after, while the
service goes on writing (in WAL mode writers do not wait for readers). Copying the file
instead can catch it between two pages of a commit, or miss what is still in the ``-wal``.
PostgreSQL has ``pg_dump`` for this.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import sqlalchemy as sa

from outbound.adapters.db.engine import SQLITE_BUSY_TIMEOUT_MS

__all__ = ["BackupError", "backup_sqlite"]


class BackupError(Exception):
    """The copy cannot be taken (the reason is the message); nothing was written."""


def backup_sqlite(url: str, target: Path) -> int:
    """Copy the SQLite database of ``url`` into ``target``, a new file; returns its size.

    The copy is one self-contained file (rollback journal, not WAL) checked with
    ``PRAGMA quick_check``; it is written beside ``target`` and renamed into place, so that
    ``target`` is either complete or absent.
    """
    database = sa.make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(f"{url} is not a SQLite database file")
    if target.exists():
        raise BackupError(f"{target} exists; choose a new file")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        # mode=rw: a missing database is an error, not a new empty one.
        source = sqlite3.connect(f"file:{database}?mode=rw", uri=True)
    except sqlite3.OperationalError as exc:
        raise BackupError(f"cannot open {database}: {exc}") from exc
    try:
        source.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)  # all pages in one step: one read transaction, one instant
            copy.execute("PRAGMA journal_mode=DELETE")
            check = copy.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            copy.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"the copy failed: {exc}") from exc
    finally:
        source.close()
    if check != "ok":
        partial.unlink(missing_ok=True)
        raise BackupError(f"the copy does not pass its integrity check: {check}")
    os.replace(partial, target)
    return target.stat().st_size
