"""Naming the index SQLite must read a table through: ``INDEXED BY``.

SQLite keeps no statistics (unless ``ANALYZE`` is run), so given an ``ORDER BY`` and a
``LIMIT`` it prefers an index that yields the order over one that yields the few rows asked
for. Where that choice is known to be wrong, a query says which index to read with
:func:`read_through`; PostgreSQL plans from its statistics and gets no hint.

SQLAlchemy's ``with_hint`` renders table hints only for the databases that have them in the
``FROM`` clause by default (SQLite is not one), so this module teaches its SQLite compiler to
write them after the table's name, where SQLite reads ``INDEXED BY``.
"""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["read_through"]

S = TypeVar("S", bound=sa.Select[Any])


def read_through(query: S, table: Any, index: str) -> S:
    """``query`` reading ``table`` (a table or a mapped class) through ``index`` on SQLite."""
    return query.with_hint(table, f"INDEXED BY {index}", "sqlite")


@compiles(sa.Table, "sqlite")
def _table_with_hint(element: sa.Table, compiler: SQLCompiler, **kw: Any) -> str:
    text: str = compiler.visit_table(element, **kw)  # type: ignore[no-untyped-call]
    hints = kw.get("fromhints")
    if kw.get("asfrom") and hints and element in hints:
        text += f" {hints[element]}"
    return text
