"""The report rollups, kept in the transaction of every status change.

:func:`add_to_rollups` is called by :func:`~outbound.adapters.queue.history.write_events`, the
one writer of the status history, with the rows it writes: each move adds its delta
(:func:`outbound.domain.reports.status_deltas`) to the rows of its message's accept hour and
accept day (UTC) and dimensions, by an upsert that adds
(``ON CONFLICT … DO UPDATE SET n = n + excluded.n``).
Because a history row is written only when its move is committed, a rollup counts exactly
what the history holds: a duplicate report, a late one, a retried record or a lease taken
over writes no move, hence adds nothing.

Rows are upserted in key order, so that two transactions that touch the same rows lock them
in the same order on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from outbound.adapters.db.models import ROLLUP_DIMENSIONS, Message, MessageRollup
from outbound.adapters.db.models import MessageRollupReason as Reason
from outbound.adapters.db.rowsets import ORDINAL, RowSet
from outbound.domain.reports import COUNTERS, LATENCY_BUCKETS, hour_of, status_deltas
from outbound.domain.statuses import MessageStatus

__all__ = ["COUNTED_COLUMNS", "MOVED_FROM", "add_to_rollups", "count_reply", "rollup_keys"]

MOVED_FROM = "_moved_from"
"""The key of a history row (as :func:`message_event` builds it) that carries the status the
message left; it is not a column."""

_ROLLUPS = MessageRollup.__table__
_REASONS = Reason.__table__
_STATUS_OF = {status.value: status for status in MessageStatus}
_LATENCY = [f"{kind}_latency_{i}" for kind in ("sent", "delivered") for i in range(LATENCY_BUCKETS)]
_VALUES = (*COUNTERS, *_LATENCY)
_KEY = ("org_id", "period", "starts_at", *ROLLUP_DIMENSIONS)
COUNTED_COLUMNS = (
    Message.id,
    Message.org_id,
    Message.created_at,
    Message.segments,
    *(getattr(Message, name) for name in ROLLUP_DIMENSIONS),
)
"""The columns of a message that :func:`add_to_rollups` reads: a writer that has them at hand
(read with the change itself) passes them and saves it the look-up."""

Key = tuple[Any, ...]


def rollup_keys(message: Mapping[Any, Any]) -> tuple[Key, Key]:
    """The rollup rows a message counts in: its organisation, accept hour (and accept day),
    dimensions."""
    hour = hour_of(message["created_at"])
    dimensions = tuple((message.get(name) or "") for name in ROLLUP_DIMENSIONS)
    return (
        (message["org_id"], "hour", hour, *dimensions),
        (message["org_id"], "day", hour.replace(hour=0), *dimensions),
    )


def add_to_rollups(
    session: Session,
    events: Sequence[Mapping[Any, Any]],
    messages: Iterable[Mapping[Any, Any]] | None = None,
) -> None:
    """Add what the history rows ``events`` count to their messages' rollup rows.

    ``messages``: the rows of the messages concerned when the caller holds them (accepting
    a request); otherwise they are read.
    """
    # A claim (sending) and a retry (back to queued) count nothing: a batch of them reads no
    # message and writes no row.
    events = [e for e in events if _may_count(e)]
    if not events:
        return
    by_id: dict[str, Mapping[Any, Any]]
    if messages is None:
        ids = list({e["message_id"] for e in events})
        by_id = {
            row["id"]: row
            for row in session.execute(
                sa.select(*COUNTED_COLUMNS).where(Message.id.in_(ids))
            ).mappings()
        }
    else:
        by_id = {m["id"]: m for m in messages}
    rows: dict[Key, dict[str, int]] = {}
    reasons: dict[tuple[Key, str, str], int] = {}
    for event in events:
        message = by_id.get(event["message_id"])
        if message is None:
            continue
        delta = status_deltas(
            _STATUS_OF[event["status"]],
            event.get(MOVED_FROM),
            source=event["source"],
            reason=event["error_message"],
            error_code=event["error_code"],
            segments=message["segments"],
            accepted_at=message["created_at"],
            occurred_at=event["occurred_at"],
        )
        if delta is None:
            continue
        for key in rollup_keys(message):
            row = rows.setdefault(key, {})
            for name, n in delta.counters.items():
                row[name] = row.get(name, 0) + n
            if delta.sent_latency is not None:
                name = f"sent_latency_{delta.sent_latency}"
                row[name] = row.get(name, 0) + 1
            if delta.delivered_latency is not None:
                name = f"delivered_latency_{delta.delivered_latency}"
                row[name] = row.get(name, 0) + 1
            for kind, code, n in delta.reasons:
                reasons[(key, kind, code)] = reasons.get((key, kind, code), 0) + n
    _upsert_rollups(session, rows)
    _upsert_reasons(session, reasons)


def _may_count(event: Mapping[Any, Any]) -> bool:
    """Whether :func:`status_deltas` may count anything for this history row."""
    status = event["status"]
    if status == MessageStatus.SENDING:
        return False
    return not (status == MessageStatus.QUEUED and event.get(MOVED_FROM) is not None)


def count_reply(session: Session, message_id: str) -> None:
    """Count a message answered for the first time (its first reply) in its rollup row."""
    message = (
        session.execute(sa.select(*COUNTED_COLUMNS).where(Message.id == message_id))
        .mappings()
        .one_or_none()
    )
    if message is not None:
        _upsert_rollups(session, {key: {"replied": 1} for key in rollup_keys(message)})


_UPSERTS: dict[tuple[str, str], Any] = {}


def _upsert(
    session: Session, table: sa.Table, rowset: RowSet, keys: list[str], added: list[str]
) -> Any:
    """The statement adding ``added`` columns of the rows given to the rows of ``table``
    with the same ``keys`` (inserting those missing), made once per database kind and
    table. On PostgreSQL one statement for any number of rows, from ``rowset``, in the rows'
    order; on SQLite, bound row by row (see :mod:`outbound.adapters.db.rowsets`)."""
    dialect = session.get_bind().dialect
    cache_key = (dialect.name, table.name)
    stmt = _UPSERTS.get(cache_key)
    if stmt is not None:
        return stmt
    if dialect.name == "postgresql":
        rows = rowset.table(dialect)
        names = [name for name in rowset.columns if name != ORDINAL]
        insert = postgresql.insert(table).from_select(
            names, sa.select(*(rows.c[name] for name in names)).order_by(rows.c[ORDINAL])
        )
        stmt = insert.on_conflict_do_update(
            index_elements=keys,
            set_={name: table.c[name] + insert.excluded[name] for name in added},
        )
    else:
        bound = sqlite.insert(table)
        stmt = bound.on_conflict_do_update(
            index_elements=keys,
            set_={name: table.c[name] + bound.excluded[name] for name in added},
        )
    _UPSERTS[cache_key] = stmt
    return stmt


_ROLLUP_ROWS = RowSet("rollup", {name: _ROLLUPS.c[name].type for name in (*_KEY, *_VALUES)})
_REASON_ROWS = RowSet(
    "reason", {name: _REASONS.c[name].type for name in (*_KEY, "kind", "code", "count")}
)


def _upsert_rollups(session: Session, rows: Mapping[Key, Mapping[str, int]]) -> None:
    if not rows:
        return
    params = [
        {
            **dict(zip(_KEY, key, strict=True)),
            **{name: values.get(name, 0) for name in _VALUES},
        }
        for key, values in sorted(rows.items(), key=lambda item: _sortable(item[0]))
    ]
    stmt = _upsert(session, _ROLLUPS, _ROLLUP_ROWS, list(_KEY), list(_VALUES))
    session.connection().execute(stmt, _rows(session, _ROLLUP_ROWS, params))


def _upsert_reasons(session: Session, reasons: Mapping[tuple[Key, str, str], int]) -> None:
    if not reasons:
        return
    params = [
        {**dict(zip(_KEY, key, strict=True)), "kind": kind, "code": code, "count": n}
        for (key, kind, code), n in sorted(
            reasons.items(), key=lambda item: (_sortable(item[0][0]), item[0][1], item[0][2])
        )
    ]
    stmt = _upsert(session, _REASONS, _REASON_ROWS, [*_KEY, "kind", "code"], ["count"])
    session.connection().execute(stmt, _rows(session, _REASON_ROWS, params))


def _rows(session: Session, rowset: RowSet, params: list[dict[str, Any]]) -> Any:
    dialect = session.get_bind().dialect
    return params if dialect.name == "sqlite" else rowset.parameters(dialect, params)


def _sortable(key: Key) -> tuple[Any, ...]:
    return tuple(v.isoformat() if isinstance(v, datetime) else v for v in key)
