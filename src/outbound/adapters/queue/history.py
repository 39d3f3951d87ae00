"""The status history (``message_events``): one row for every status a message takes.

Every writer of the history (accepting, claiming, recording, delivery reports, help replies)
builds its rows with :func:`message_event`, so that the rows have one shape and a move between
two statuses is checked against the lifecycle of :mod:`outbound.domain.statuses` wherever the
writer knows the status the message leaves. Writing them with :func:`write_events` also keeps
the report rollups (:mod:`outbound.adapters.queue.rollups`) and writes the
``message.status_changed`` webhook events (:mod:`outbound.adapters.queue.webhooks`) in the
same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.models import MessageEvent
from outbound.adapters.db.rowsets import ORDINAL, DriverInsert, RowSet
from outbound.adapters.queue.rollups import MOVED_FROM, add_to_rollups
from outbound.adapters.queue.webhooks import emit_status_changes
from outbound.domain.statuses import MessageStatus, can_transition

__all__ = ["message_event", "write_events", "write_notes"]

_EVENTS = cast(sa.Table, MessageEvent.__table__)


def message_event(
    message_id: str,
    org_id: str,
    status: MessageStatus,
    *,
    source: str,
    occurred_at: datetime,
    moved_from: MessageStatus | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """One history row: ``message_id`` took ``status`` at ``occurred_at``.

    ``moved_from``: the status the message leaves; a move the lifecycle does not allow is a
    bug of the caller (:class:`ValueError`), never written. ``None`` when there is no move
    to check: the message is created in ``status``, or keeps it (a claim that takes over a
    message whose lease expired writes ``sending`` again). ``actor``: who made the change,
    when a person or a key did (``user:<id>`` or ``key:<id>``).
    """
    if moved_from is not None and not can_transition(moved_from, status):
        raise ValueError(f"message {message_id} cannot move from {moved_from} to {status}")
    return {
        "message_id": message_id,
        "org_id": org_id,
        "status": status.value,
        "occurred_at": occurred_at,
        "source": source,
        "error_code": error_code,
        "error_message": error_message,
        "actor": actor,
        MOVED_FROM: moved_from,
    }


def write_events(
    session: Session,
    events: Sequence[dict[str, Any]],
    *,
    messages: Iterable[Mapping[Any, Any]] | None = None,
) -> None:
    """Append rows built by :func:`message_event` to the history, in one statement, add what
    they count to the report rollups, and queue a webhook event for each.

    ``messages``: the rows of the messages, when the caller has them at hand (it created
    them); otherwise the rollups read what they need of them.
    """
    if events:
        _insert(session, events)
        add_to_rollups(session, events, messages)
        emit_status_changes(session, events)


def write_notes(session: Session, events: Sequence[dict[str, Any]]) -> None:
    """Append rows built by :func:`message_event` that record something about a message
    which keeps its status (the status checks that ended without finding one): no move, so
    nothing for the rollups to count and no ``message.status_changed`` event."""
    if events:
        _insert(session, events)


_ROWS = RowSet(
    "event",
    {column.name: column.type for column in _EVENTS.columns if column.name != "id"},
)
_INSERTS: dict[str, sa.Insert] = {}
_EVENT_NAMES = tuple(column.name for column in _EVENTS.columns if column.name != "id")
_SQLITE_INSERT = DriverInsert(_EVENTS)


def _insert(session: Session, events: Sequence[dict[str, Any]]) -> None:
    """One statement for the rows, whatever their number, their ids in the order given (the
    order of a message's moves)."""
    dialect = session.get_bind().dialect
    if dialect.name == "sqlite":  # see outbound.adapters.db.rowsets
        _SQLITE_INSERT.execute(session.connection(), _EVENT_NAMES, events)
        return
    stmt = _INSERTS.get(dialect.name)
    if stmt is None:
        rows = _ROWS.table(dialect)
        names = [name for name in _ROWS.columns if name != ORDINAL]
        stmt = _EVENTS.insert().from_select(
            names, sa.select(*(rows.c[name] for name in names)).order_by(rows.c[ORDINAL])
        )
        _INSERTS[dialect.name] = stmt
    session.connection().execute(stmt, _ROWS.parameters(dialect, events))
