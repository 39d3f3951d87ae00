"""Events: what happened to a record, stored with the change that raised it.

Every writer calls :func:`record_event` inside its own transaction, so a change and its event
are committed together or not at all: flows never see an event for a change that was rolled
back, nor miss one that was committed. :class:`RecordWriter` is what the services that change
records share (:mod:`outbound.services.contacts`, :mod:`outbound.services.cases`). Events of
other systems (``order.delayed``) are stored the same way by :meth:`EventService.post_event`.
The flow engine claims events in ``id`` order (:mod:`outbound.adapters.queue.events`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Event
from outbound.clock import Clock
from outbound.domain.contacts import Problem
from outbound.errors import ConflictError, InvalidRequestError
from outbound.schemas import EventIn, EventOut, Page
from outbound.services.pagination import MAX_PAGE_SIZE
from outbound.services.public_ids import IdKind, parse_public_id, public_id
from outbound.texts import N_

__all__ = ["EventService", "RecordWriter", "raise_first", "record_event", "record_events"]

MAX_EVENT_RECORD_BYTES = 64 * 1024
RESERVED_EVENT_PREFIXES = ("contact.", "case.")


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


def raise_first(problems: list[Problem]) -> None:
    """Refuse the input with its first :data:`Problem`, if it has any (422)."""
    if problems:
        name, message = problems[0]
        raise InvalidRequestError(
            N_("%(field)s: %(message)s", field=name, message=message), field=name
        )


class RecordWriter:
    """Base of the services that change records: each change is written with its event in
    one transaction, whose conflicts with a concurrent writer are answered 409."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    @contextmanager
    def _write(
        self, conflict: str = N_("conflicting change"), field: str | None = None
    ) -> Iterator[Session]:
        """A write transaction whose unique-key and foreign-key failures (a concurrent
        writer got there first) become 409 instead of 500."""
        try:
            with self._db.transaction() as session:
                yield session
        except sa.exc.IntegrityError as exc:
            raise ConflictError(conflict, field=field) from exc

    def _add_event(
        self,
        session: Session,
        *,
        org_id: str,
        type: str,
        record_type: str,
        record_id: str | None,
        data: dict[str, Any],
        source: str,
    ) -> Event:
        """Add the event of a change to the change's transaction, as happening now."""
        return record_event(
            session,
            org_id=org_id,
            type=type,
            record_type=record_type,
            record_id=record_id,
            data=data,
            source=source,
            now=self._clock.now(),
        )


# --- events of other systems --------------------------------------------------------------


def _event_out(session: Session, e: Event) -> EventOut:
    data = {c: getattr(e, c) for c in EventOut.model_fields if c != "id"}
    return EventOut(id=public_id(session, e.org_id, IdKind.EVENT, e.id), **data)


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidRequestError(
            N_("limit must be between 1 and %(limit)s", limit=MAX_PAGE_SIZE), field="limit"
        )


class EventService(RecordWriter):
    """Events: those of other systems are posted here; every event can be listed."""

    def post_event(self, org_id: str, data: EventIn) -> EventOut:
        """Store an event of another system; flows that wait for its type will react."""
        if data.type.lower().startswith(RESERVED_EVENT_PREFIXES):
            raise InvalidRequestError(
                N_("type: contact.* and case.* events are raised by changes of contacts and cases"),
                field="type",
            )
        try:
            size = len(json.dumps(data.record, allow_nan=False).encode())
        except ValueError as exc:
            raise InvalidRequestError(
                N_("record: NaN and infinity are not JSON"), field="record"
            ) from exc
        if size > MAX_EVENT_RECORD_BYTES:
            raise InvalidRequestError(
                N_("record: at most %(limit)s bytes of JSON", limit=MAX_EVENT_RECORD_BYTES),
                field="record",
            )
        with self._db.transaction() as session:
            event = self._add_event(
                session,
                org_id=org_id,
                type=data.type,
                record_type="external",
                record_id=data.record_id,
                data={"record": data.record},
                source="external",
            )
            return _event_out(session, event)

    def list_events(
        self,
        org_id: str,
        cursor: str | None,
        limit: int,
        *,
        type: str | None = None,
        record_id: str | None = None,
    ) -> Page[EventOut]:
        """Events newest first."""
        _check_limit(limit)
        query = sa.select(Event).where(Event.org_id == org_id)
        if type is not None:
            query = query.where(Event.type == type)
        if record_id is not None:
            query = query.where(Event.record_id == record_id)
        with self._db.read() as session:
            if cursor:
                before = parse_public_id(session, org_id, IdKind.EVENT, cursor)
                query = query.where(Event.id < before)
            query = query.order_by(Event.id.desc()).limit(limit + 1)
            rows = list(session.execute(query).scalars())
            more = len(rows) > limit
            rows = rows[:limit]
            return Page[EventOut](
                data=[_event_out(session, e) for e in rows],
                next_cursor=public_id(session, org_id, IdKind.EVENT, rows[-1].id) if more else None,
            )
