"""The webhook queue: events written with their change, deliveries claimed under a lease.

**Writing.** :func:`emit` runs in the transaction of the change an event tells of (a status
history row, a customer's message, a consent change, a conversation change, a finished flow
run): one ``webhook_events`` row, and one ``webhook_deliveries`` row per enabled endpoint of
the organisation that subscribed to its type. An organisation without endpoints costs one
indexed look-up per transaction.

**Order.** Deliveries with the same ``ordering_key`` (a message's id, a conversation's id) to
one endpoint are delivered one after the other in ``id`` order: a delivery is due only when no
earlier one of its key and endpoint is still ``pending`` or ``delivering``. Every writer of a
message's events holds the message's row (it updated or inserted it first), so their ids
follow the order in which the changes were committed.

**Claiming.** Like the outbox: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, SQLite's single
writer otherwise; a claimed delivery is ``delivering`` under a lease, and one whose worker died
is due again when the lease expires (at-least-once: receivers drop a ``webhook-id`` they have).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import (
    Message,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from outbound.adapters.queue.rollups import MOVED_FROM
from outbound.domain.webhooks import MESSAGE_STATUS_CHANGED, subscribed

__all__ = [
    "DELIVERIES_QUEUED",
    "AttemptResult",
    "ClaimedDelivery",
    "NewEvent",
    "WebhookQueue",
    "emit",
    "emit_status_changes",
    "erase_numbers",
    "new_event_id",
    "scrub_numbers",
]

DELIVERIES_QUEUED = "webhook_deliveries"
"""What a transaction that queued deliveries tells this process's deliverer once committed
(:meth:`~outbound.adapters.db.engine.Database.listen`)."""
_PENDING = "pending"
_DELIVERING = "delivering"
_SUCCEEDED = "succeeded"
_FAILED = "failed"
_DELIVERIES = cast(sa.Table, WebhookDelivery.__table__)
_EVENTS = cast(sa.Table, WebhookEvent.__table__)
# A success is written on the endpoint at most this often (or when it was failing).
_SUCCESS_MARK_INTERVAL = timedelta(seconds=60)


Subscribers = dict[str, list[tuple[str, list[str]]]]
"""Enabled endpoints by organisation: each endpoint's id and its patterns."""


def new_event_id() -> str:
    """A new event id: ``evt_`` and 32 hexadecimal digits."""
    return "evt_" + uuid.uuid4().hex


@dataclass(frozen=True)
class NewEvent:
    """An event to write: its type, what it says, and what it must stay in order with."""

    org_id: str
    type: str
    data: dict[str, Any]
    occurred_at: datetime
    ordering_key: str | None = None
    id: str = field(default_factory=new_event_id)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


# Built once: every status change of a transaction looks its organisations' endpoints up.
_SUBSCRIBERS = sa.select(WebhookEndpoint.id, WebhookEndpoint.org_id, WebhookEndpoint.events).where(
    WebhookEndpoint.org_id.in_(sa.bindparam("org_ids", expanding=True)),
    WebhookEndpoint.enabled.is_(True),
)


def _subscribers(session: Session, org_ids: Iterable[str]) -> Subscribers:
    """The enabled endpoints of these organisations: their ids and patterns, by organisation."""
    found: Subscribers = {}
    rows = session.connection().execute(_SUBSCRIBERS, {"org_ids": list(set(org_ids))})
    for row in rows:
        found.setdefault(row.org_id, []).append((row.id, list(row.events or [])))
    return found


def emit(
    session: Session,
    events: Sequence[NewEvent],
    *,
    endpoints: Subscribers | None = None,
) -> int:
    """Write ``events`` for the endpoints that want them, in the caller's transaction.

    Returns how many deliveries were queued. ``endpoints``: the subscribers, when the caller
    already looked them up.
    """
    if not events:
        return 0
    if endpoints is None:
        endpoints = _subscribers(session, {e.org_id for e in events})
    if not endpoints:
        return 0
    event_rows: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    for event in events:
        wanted = [
            endpoint_id
            for endpoint_id, patterns in endpoints.get(event.org_id, ())
            if subscribed(patterns, event.type)
        ]
        if not wanted:
            continue
        event_rows.append(
            {
                "id": event.id,
                "org_id": event.org_id,
                "type": event.type,
                "payload": {
                    "id": event.id,
                    "type": event.type,
                    "timestamp": _iso(event.occurred_at),
                    "data": event.data,
                },
                "created_at": event.occurred_at,
            }
        )
        deliveries.extend(
            {
                "org_id": event.org_id,
                "endpoint_id": endpoint_id,
                "event_id": event.id,
                "ordering_key": event.ordering_key,
                "status": _PENDING,
                "attempts": 0,
                "next_attempt_at": event.occurred_at,
                "created_at": event.occurred_at,
                "updated_at": event.occurred_at,
            }
            for endpoint_id in wanted
        )
    if not deliveries:
        return 0
    connection = session.connection()
    connection.execute(_EVENTS.insert(), event_rows)
    connection.execute(_DELIVERIES.insert(), deliveries)
    Database.queued(session, DELIVERIES_QUEUED)
    return len(deliveries)


def emit_status_changes(session: Session, history: Sequence[dict[str, Any]]) -> int:
    """``message.status_changed`` for each status-history row (built by ``message_event``)."""
    if not history:
        return 0
    endpoints = _subscribers(session, {row["org_id"] for row in history})
    wanted = {
        org_id
        for org_id, subscribers in endpoints.items()
        if any(subscribed(patterns, MESSAGE_STATUS_CHANGED) for _, patterns in subscribers)
    }
    rows = [row for row in history if row["org_id"] in wanted]
    if not rows:
        return 0
    messages = {
        m.id: m
        for m in session.execute(
            sa.select(
                Message.id,
                Message.configuration_id,
                Message.channel_id,
                Message.request_id,
                Message.to_number,
                Message.provider,
                Message.provider_message_id,
                Message.conversation_id,
            ).where(Message.id.in_({row["message_id"] for row in rows}))
        )
    }
    events = []
    for row in rows:
        message = messages.get(row["message_id"])
        previous = row.get(MOVED_FROM)
        events.append(
            NewEvent(
                org_id=row["org_id"],
                type=MESSAGE_STATUS_CHANGED,
                occurred_at=row["occurred_at"],
                ordering_key=row["message_id"],
                data={
                    "message_id": row["message_id"],
                    "status": row["status"],
                    "previous_status": previous.value if previous is not None else None,
                    "occurred_at": _iso(row["occurred_at"]),
                    "source": row["source"],
                    "error_code": row["error_code"],
                    "error_message": row["error_message"],
                    "configuration_id": message.configuration_id if message else None,
                    "channel_id": message.channel_id if message else None,
                    "request_id": message.request_id if message else None,
                    "to": message.to_number if message else None,
                    "provider": message.provider if message else None,
                    "provider_message_id": message.provider_message_id if message else None,
                    "conversation_id": message.conversation_id if message else None,
                },
            )
        )
    return emit(session, events, endpoints=endpoints)


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery a worker holds the lease of, with what it needs to make the call."""

    id: int
    org_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    url: str
    secret_encrypted: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class AttemptResult:
    """What one HTTP call gave: the answer's status code, or the error that prevented one."""

    delivery_id: int
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookQueue:
    """Statements of the webhook queue (``webhook_deliveries`` and what they point at)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(
        self, worker_id: str, limit: int, now: datetime, lease: timedelta
    ) -> list[ClaimedDelivery]:
        """Lease up to ``limit`` due deliveries, oldest first, none behind an earlier one.

        A read first looks for anything due: an idle deliverer then never opens a write
        transaction, which on SQLite would take the single writer's turn several times a
        second in every process.
        """
        delivery = WebhookDelivery
        due = sa.or_(
            sa.and_(delivery.status == _PENDING, delivery.next_attempt_at <= now),
            sa.and_(delivery.status == _DELIVERING, delivery.lease_until < now),
        )
        with self._db.read() as session:
            if session.execute(sa.select(delivery.id).where(due).limit(1)).first() is None:
                return []
        earlier = aliased(WebhookDelivery)
        blocked = (
            sa.select(earlier.id)
            .where(
                earlier.endpoint_id == delivery.endpoint_id,
                earlier.ordering_key == delivery.ordering_key,
                earlier.id < delivery.id,
                earlier.status.in_((_PENDING, _DELIVERING)),
            )
            .exists()
        )
        enabled = sa.select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True))
        pick = (
            sa.select(delivery.id)
            .where(
                due,
                delivery.endpoint_id.in_(enabled),
                ~blocked,
            )
            .order_by(delivery.id)
            .limit(limit)
        )
        pick = self._db.for_update(pick, skip_locked=True)
        with self._db.transaction() as session:
            ids = list(session.execute(pick).scalars())
            if not ids:
                return []
            session.execute(
                sa.update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids))
                .values(
                    status=_DELIVERING,
                    attempts=WebhookDelivery.attempts + 1,
                    lease_until=now + lease,
                    worker_id=worker_id,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            rows = session.execute(
                sa.select(
                    WebhookDelivery.id,
                    WebhookDelivery.org_id,
                    WebhookDelivery.endpoint_id,
                    WebhookDelivery.event_id,
                    WebhookDelivery.attempts,
                    WebhookEvent.type,
                    WebhookEvent.payload,
                    WebhookEndpoint.url,
                    WebhookEndpoint.secret_encrypted,
                )
                .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.id.in_(ids))
                .order_by(WebhookDelivery.id)
            ).all()
        return [
            ClaimedDelivery(
                id=r.id,
                org_id=r.org_id,
                endpoint_id=r.endpoint_id,
                event_id=r.event_id,
                event_type=r.type,
                url=r.url,
                secret_encrypted=r.secret_encrypted,
                payload=r.payload,
                attempts=r.attempts,
            )
            for r in rows
        ]

    def record(
        self,
        worker_id: str,
        result: AttemptResult,
        now: datetime,
        *,
        retry_in: float | None,
        disable_after: timedelta,
    ) -> str | None:
        """Write one attempt and what follows from it; returns the delivery's new status
        (``succeeded``, ``pending`` for a retry, ``failed``), or None when the lease was lost.

        ``retry_in``: seconds before the next attempt should this one have failed (None: give
        up). An endpoint that has failed every attempt for ``disable_after`` is disabled.
        """
        with self._db.transaction() as session:
            row = session.execute(
                self._db.for_update(
                    sa.select(WebhookDelivery.org_id, WebhookDelivery.endpoint_id).where(
                        WebhookDelivery.id == result.delivery_id,
                        WebhookDelivery.status == _DELIVERING,
                        WebhookDelivery.worker_id == worker_id,
                    )
                )
            ).one_or_none()
            if row is None:
                return None
            session.execute(
                sa.insert(WebhookAttempt).values(
                    org_id=row.org_id,
                    delivery_id=result.delivery_id,
                    attempted_at=now,
                    status_code=result.status_code,
                    error=result.error[:500] if result.error else None,
                    duration_ms=result.duration_ms,
                )
            )
            values: dict[str, Any] = {
                "lease_until": None,
                "worker_id": None,
                "last_status_code": result.status_code,
                "last_error": result.error[:500] if result.error else None,
                "updated_at": now,
            }
            if result.succeeded:
                status = _SUCCEEDED
                values["delivered_at"] = now
                self._mark_success(session, row.endpoint_id, now)
            elif retry_in is not None:
                status = _PENDING
                values["next_attempt_at"] = now + timedelta(seconds=retry_in)
                self._mark_failure(session, row.endpoint_id, now, disable_after)
            else:
                status = _FAILED
                self._mark_failure(session, row.endpoint_id, now, disable_after)
            session.execute(
                sa.update(WebhookDelivery)
                .where(WebhookDelivery.id == result.delivery_id)
                .values(status=status, **values)
            )
        return status

    @staticmethod
    def _mark_success(session: Session, endpoint_id: str, now: datetime) -> None:
        session.execute(
            sa.update(WebhookEndpoint)
            .where(
                WebhookEndpoint.id == endpoint_id,
                sa.or_(
                    WebhookEndpoint.failing_since.is_not(None),
                    WebhookEndpoint.last_success_at.is_(None),
                    WebhookEndpoint.last_success_at < now - _SUCCESS_MARK_INTERVAL,
                ),
            )
            .values(failing_since=None, last_success_at=now)
        )

    @staticmethod
    def _mark_failure(
        session: Session, endpoint_id: str, now: datetime, disable_after: timedelta
    ) -> None:
        session.execute(
            sa.update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.failing_since.is_(None))
            .values(failing_since=now)
        )
        session.execute(
            sa.update(WebhookEndpoint)
            .where(
                WebhookEndpoint.id == endpoint_id,
                WebhookEndpoint.enabled.is_(True),
                WebhookEndpoint.failing_since <= now - disable_after,
            )
            .values(
                enabled=False,
                disabled_at=now,
                disabled_reason=(
                    "every attempt failed for "
                    f"{_duration(disable_after)}; enable it again once it answers"
                ),
                updated_at=now,
            )
        )

    def purge(self, before: datetime, limit: int = 5_000) -> int:
        """Delete up to ``limit`` finished deliveries created before ``before``, their attempts
        and the events left without deliveries; returns how many deliveries went."""
        with self._db.transaction() as session:
            ids = list(
                session.execute(
                    sa.select(WebhookDelivery.id)
                    .where(
                        WebhookDelivery.status.in_((_SUCCEEDED, _FAILED)),
                        WebhookDelivery.created_at < before,
                    )
                    .order_by(WebhookDelivery.id)
                    .limit(limit)
                ).scalars()
            )
            if not ids:
                return 0
            events = set(
                session.execute(
                    sa.select(WebhookDelivery.event_id).where(WebhookDelivery.id.in_(ids))
                ).scalars()
            )
            session.execute(sa.delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)))
            session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
            still_used = sa.select(WebhookDelivery.event_id).where(
                WebhookDelivery.event_id == WebhookEvent.id
            )
            session.execute(
                sa.delete(WebhookEvent).where(WebhookEvent.id.in_(events), ~sa.exists(still_used))
            )
        return len(ids)


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour" + ("s" if hours != 1 else "")
    return f"{seconds} seconds"


def scrub_numbers(value: Any, numbers: Sequence[str], erased: str) -> Any:
    """``value`` with every text that holds one of ``numbers`` replaced by ``erased``, and
    every ``body`` cleared, looking into mappings and lists."""
    if isinstance(value, dict):
        return {
            key: "" if key == "body" else scrub_numbers(item, numbers, erased)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [scrub_numbers(item, numbers, erased) for item in value]
    if isinstance(value, str) and any(number in value for number in numbers):
        return erased
    return value


def erase_numbers(session: Session, org_id: str, numbers: Sequence[str], erased: str) -> int:
    """Blank these numbers, and the texts of the events that name them, in the organisation's
    webhook events (sent or waiting); returns how many events changed."""
    if not numbers:
        return 0
    text = sa.cast(WebhookEvent.payload, sa.Text)
    rows = session.execute(
        sa.select(WebhookEvent.id, WebhookEvent.payload).where(
            WebhookEvent.org_id == org_id,
            sa.or_(*(text.contains(number, autoescape=True) for number in numbers)),
        )
    ).all()
    for row in rows:
        session.execute(
            sa.update(WebhookEvent)
            .where(WebhookEvent.id == row.id)
            .values(payload=scrub_numbers(row.payload, numbers, erased))
        )
    return len(rows)
