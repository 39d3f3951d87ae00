"""A batch of rows sent as one parameter and read by the database as a table.

A statement that applies a batch (``UPDATE … FROM`` the batch, each message its own values)
would otherwise run once per row (an ``executemany``), or be a ``VALUES`` list whose text,
and whose types where a column holds only NULLs, change with the batch. Here the rows go as
one JSON array of objects, read back with ``json_to_recordset`` on PostgreSQL (typed by a
column definition list) and ``json_each`` on SQLite: one statement of one text for a batch of
any size, compiled once and prepared by the server like any other.

SQLite reads each value back with ``json_extract``, which parses the row again: an ``INSERT`` of
wide rows costs it more than binding them (there the writers insert with a
:class:`DriverInsert`, a multi-row ``VALUES``); an ``UPDATE … FROM`` has no such other way.

Rows keep their order: each carries its position (column ``ordinal``), for a statement whose
effect depends on it (ids handed out by an ``INSERT … SELECT … ORDER BY ordinal``).

Datetimes are encoded as each database stores them (SQLite: SQLAlchemy's text form of naive
UTC; PostgreSQL: ISO 8601 with its offset, read as ``timestamptz``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.type_api import TypeEngine

__all__ = ["ORDINAL", "DriverInsert", "RowSet"]

ORDINAL = "ordinal"


class RowSet:
    """Rows of ``columns`` (name and type) as a table named ``name``, one parameter."""

    def __init__(self, name: str, columns: Mapping[str, TypeEngine[Any]]) -> None:
        self.name = name
        self.columns = {**columns, ORDINAL: sa.Integer()}
        self._param = f"{name}_rows"
        self._tables: dict[str, sa.FromClause] = {}
        self._encoders: dict[str, list[tuple[str, Callable[[Any], Any] | None]]] = {}

    def table(self, dialect: sa.Dialect) -> sa.FromClause:
        """The rows as a table, to select or update from (its columns are ``columns`` and
        ``ordinal``)."""
        table = self._tables.get(dialect.name)
        if table is None:
            rows = sa.bindparam(self._param, type_=sa.JSON)
            if dialect.name == "postgresql":
                table = (
                    sa.func.json_to_recordset(rows)
                    .table_valued(*(sa.column(name, type_) for name, type_ in self.columns.items()))
                    .render_derived(name=self.name, with_types=True)
                )
            else:
                each = sa.func.json_each(rows).table_valued("value")
                table = sa.select(
                    *(
                        sa.type_coerce(
                            sa.func.json_extract(each.c.value, sa.literal_column(f"'$.{name}'")),
                            type_,
                        ).label(name)
                        for name, type_ in self.columns.items()
                    )
                ).subquery(self.name)
            self._tables[dialect.name] = table
        return table

    def parameters(
        self, dialect: sa.Dialect, rows: Iterable[Mapping[str, Any]]
    ) -> dict[str, list[dict[str, Any]]]:
        """The parameter that carries ``rows`` (mappings of column names to values: a column
        missing is NULL, other keys are left out)."""
        encoders = self._encoders.get(dialect.name)
        if encoders is None:
            encoders = [
                (name, _datetime_encoder(type_, dialect) if _is_datetime(type_) else None)
                for name, type_ in self.columns.items()
                if name != ORDINAL
            ]
            self._encoders[dialect.name] = encoders
        return {
            self._param: [
                {
                    ORDINAL: position,
                    **{
                        name: value if encode is None or value is None else encode(value)
                        for name, encode in encoders
                        for value in (row.get(name),)
                    },
                }
                for position, row in enumerate(rows)
            ]
        }


def _is_datetime(type_: TypeEngine[Any]) -> bool:
    return isinstance(type_, sa.DateTime) or (
        isinstance(type_, sa.TypeDecorator) and isinstance(type_.impl_instance, sa.DateTime)
    )


def _datetime_encoder(type_: TypeEngine[Any], dialect: sa.Dialect) -> Callable[[Any], Any]:
    process = type_.dialect_impl(dialect).bind_processor(dialect)

    def encode(value: datetime) -> str:
        stored = process(value) if process is not None else value
        return stored.isoformat() if isinstance(stored, datetime) else str(stored)

    return encode


class DriverInsert:
    """``INSERT`` of whole rows into ``table`` on SQLite, bound straight to the driver.

    SQLAlchemy's ``executemany`` builds each row's parameters through the compiled statement
    (a dictionary per row, each value through its type; about a seventh of accepting a
    request, in ``bench.accept`` under ``cProfile``). Here each column keeps its type's bind
    processing (the same conversion, from the type itself, None included), the rows' values
    go to the driver as one flat tuple, and the statement is one multi-row ``VALUES`` (as
    SQLAlchemy sends an ``executemany`` of an ``INSERT``), its text made once per set of
    columns and number of rows; a batch with more values than the SQLite library binds in
    one statement (``SQLITE_LIMIT_VARIABLE_NUMBER``: 32,766 since 3.32, 999 before) is split.
    Columns the rows do not name are left out (NULL), as in the PostgreSQL ``INSERT …
    SELECT`` of a :class:`RowSet`: no Python-side default is applied.
    """

    MAX_VALUES: int | None = None
    """Values bound in one statement at the most; None: as many as the library allows."""

    def __init__(self, table: sa.Table) -> None:
        self._table = table
        self._columns: dict[tuple[str, ...], tuple[str, str, list[Any]]] = {}
        self._texts: dict[tuple[tuple[str, ...], int], str] = {}
        self._max_values = 0

    def execute(
        self, connection: sa.Connection, names: tuple[str, ...], rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Insert ``rows`` (mappings of column names to values; a name of ``names`` a row
        lacks is NULL, keys outside ``names`` are left out)."""
        columns = self._columns.get(names)
        if columns is None:
            dialect = connection.dialect
            quote = dialect.identifier_preparer
            prefix = "INSERT INTO {} ({}) VALUES ".format(
                quote.format_table(self._table),
                ", ".join(quote.format_column(self._table.c[name]) for name in names),
            )
            processors = [
                self._table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                for name in names
            ]
            columns = (prefix, "(" + ", ".join("?" for _ in names) + ")", processors)
            self._columns[names] = columns
        if not self._max_values:
            self._max_values = self.MAX_VALUES or _variable_limit(connection)
        prefix, row_text, processors = columns
        pairs = list(zip(names, processors, strict=True))
        per_statement = max(1, self._max_values // len(names))
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            text = self._texts.get((names, len(chunk)))
            if text is None:
                if len(self._texts) > 1_000:
                    self._texts.clear()
                text = self._texts[(names, len(chunk))] = prefix + ", ".join(
                    [row_text] * len(chunk)
                )
            connection.exec_driver_sql(
                text,
                tuple(
                    row.get(name) if process is None else process(row.get(name))
                    for row in chunk
                    for name, process in pairs
                ),
            )


def _variable_limit(connection: sa.Connection) -> int:
    """How many values the SQLite library binds in one statement."""
    driver = connection.connection.driver_connection
    return int(driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))  # type: ignore[union-attr]
