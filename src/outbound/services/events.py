"""Events: what happened to a record, stored with the change that raised it.

Every writer calls :func:`record_event` inside its own transaction, so a change and its event
are committed together or not at all. The flow engine reads events in ``id`` order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.models import Event

__all__ = ["record_event", "record_events"]


def record_event(
    session: Session,
    *,
    org_id: str,
    type: str,
    record_type: str,
    record_id: str | None,
    data: dict[str, Any],
    source: str,
    now: datetime,
) -> Event:
    """Add one event to ``session`` (the caller's transaction) and return it, flushed."""
    event = Event(
        org_id=org_id,
        type=type,
        record_type=record_type,
        record_id=record_id,
        data=data,
        source=source,
        occurred_at=now,
        processed_at=None,
    )
    session.add(event)
    session.flush()
    return event


def record_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Add many events at once (imports); each dict has the columns of :class:`Event`."""
    if rows:
        session.execute(sa.insert(Event), [{"processed_at": None, **r} for r in rows])
