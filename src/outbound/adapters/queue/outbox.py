"""The outbox queue: enqueue messages, claim due ones under a lease, record what became of them.

PostgreSQL claims in one statement with ``FOR UPDATE SKIP LOCKED`` so that several workers
never take the same row. SQLite has one writer: the claim runs inside ``BEGIN IMMEDIATE``
(see :mod:`outbound.adapters.db.engine`), which serialises claimers.

A message is due when it is ``queued`` and its ``scheduled_at`` has passed, or when it is
``sending`` and its lease has expired (its worker died): delivery is at-least-once, and the
provider adapters are idempotent on the message id where the provider allows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Channel, Message, OutboundConfiguration, UTCDateTime
from outbound.adapters.db.rowsets import ORDINAL, DriverInsert, RowSet
from outbound.adapters.db.stages import in_stage
from outbound.adapters.queue.history import message_event, write_events
from outbound.adapters.queue.rollups import COUNTED_COLUMNS
from outbound.config import DEFAULT_STATUS_CHECK_AFTER_SECONDS
from outbound.domain.provider_errors import UNKNOWN_OUTCOME_CODES
from outbound.domain.statuses import MessageStatus

__all__ = ["MESSAGES_QUEUED", "ClaimedMessage", "Outbox", "Outcome"]

MESSAGES_QUEUED = "messages"
"""What a transaction that queued messages tells this process's dispatcher once committed
(:meth:`~outbound.adapters.db.engine.Database.listen`)."""

_MESSAGES = cast(sa.Table, Message.__table__)
# A status by its value: a dictionary look-up costs a tenth of MessageStatus(value), and
# accepting a request turns every message's status back into one.
_STATUS_OF = {status.value: status for status in MessageStatus}
_QUEUED = MessageStatus.QUEUED.value
_SENDING = MessageStatus.SENDING.value
_EXPIRED = timedelta(seconds=1)
DEFAULT_STATUS_CHECK_AFTER = timedelta(seconds=DEFAULT_STATUS_CHECK_AFTER_SECONDS)


@dataclass(frozen=True)
class ClaimedMessage:
    """A message a worker holds the lease of."""

    id: str
    org_id: str
    channel_id: str
    configuration_id: str | None
    template_id: str | None
    to_number: str
    body: str | None
    attempts: int
    max_attempts: int
    send_as_template: bool
    content_sid: str | None
    template_parameters: dict[str, Any] | None
    reclaimed: bool
    first_attempt_at: datetime | None = None
    time_zone: str | None = None
    previous_attempt_at: datetime | None = None
    """When an earlier attempt of unknown outcome began: for a message ``reclaimed`` (its
    lease expired while it was ``sending``), its claim; for one queued again after a timeout
    or a lost connection, a lease before that attempt was recorded (at the latest)."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one claimed message; ``status`` is sent, queued (retry), failed or
    skipped (consent withdrawn since the message was accepted)."""

    message_id: str
    status: MessageStatus
    provider_message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    retry_at: datetime | None = None
    # The attempt does not count (the channel, not the message, was at fault).
    refund_attempt: bool = False
    sent_via_channel_id: str | None = None
    provider: str | None = None
    from_number: str | None = None
    # Why the message was not sent (a skip's reason), shown as the message's reason.
    reason: str | None = None
    # Found at the provider (an earlier attempt of unknown outcome had been accepted), not sent.
    found: bool = False


_RETURNING = (
    Message.id,
    Message.org_id,
    Message.channel_id,
    Message.configuration_id,
    Message.template_id,
    Message.to_number,
    Message.body,
    Message.attempts,
    Message.max_attempts,
    Message.send_as_template,
    Message.content_sid,
    Message.template_parameters,
    Message.lease_until,
    Message.first_attempt_at,
    Message.time_zone,
)


EXPIRED_LOOK_SECONDS = 5.0
"""How long claims take queued messages only after one found no lease run out."""
EXPIRED_LOOK = timedelta(seconds=EXPIRED_LOOK_SECONDS)


class Outbox:
    """Queue operations on the ``messages`` table.

    ``status_check_after``: how long after its record a ``sent`` message waits for its final
    status before the provider is asked (:mod:`outbound.services.status_checks`).
    """

    def __init__(
        self, db: Database, *, status_check_after: timedelta = DEFAULT_STATUS_CHECK_AFTER
    ) -> None:
        self._db = db
        self._status_check_after = status_check_after
        # When a claim last found no lease run out: until EXPIRED_LOOK_SECONDS later, claims
        # take queued messages only (see claim).
        self._no_expired_at: datetime | None = None

    def enqueue(self, session: Session, messages: Sequence[dict[str, Any]], *, source: str) -> None:
        """Insert new messages, each with its first status event, in the caller's transaction.

        The caller's transaction also writes what the messages belong to (a send request and
        its response), so that all of it is committed together. ``messages`` are whole rows
        (every column, one statement for all); each one's first event has its status at its
        creation time, with its ``reason`` (skipped, rejected or held) as the event's message.
        """
        if not messages:
            return
        # One statement for the batch (see outbound.adapters.db.rowsets); its columns are those
        # any row names (a row without one has it NULL).
        dialect = session.get_bind().dialect
        names = tuple(sorted({name for m in messages for name in m}))
        if dialect.name == "sqlite":
            _SQLITE_ENQUEUE.execute(session.connection(), names, messages)
        else:
            stmt = _ENQUEUES.get((dialect.name, names))
            if stmt is None:
                rows = _MESSAGE_ROWS.table(dialect)
                stmt = _MESSAGES.insert().from_select(
                    names, sa.select(*(rows.c[name] for name in names)).order_by(rows.c[ORDINAL])
                )
                _ENQUEUES[(dialect.name, names)] = stmt
            session.connection().execute(stmt, _MESSAGE_ROWS.parameters(dialect, messages))
        if any(m["status"] == _QUEUED for m in messages):
            self._db.queued(session, MESSAGES_QUEUED)
        write_events(
            session,
            [
                message_event(
                    m["id"],
                    m["org_id"],
                    _STATUS_OF[m["status"]],
                    source=source,
                    occurred_at=m["created_at"],
                    error_message=m["reason"],
                )
                for m in messages
            ],
            messages=messages,
        )

    @staticmethod
    def end_queued(
        session: Session,
        where: Sequence[sa.ColumnElement[bool]],
        status: MessageStatus,
        *,
        reason: str,
        source: str,
        now: datetime,
        detail: str | None = None,
        actor: str | None = None,
    ) -> list[str]:
        """Move the ``queued`` messages matching ``where`` to ``status`` (canceled or skipped),
        with their history rows, in the caller's transaction; returns their ids.

        The update is conditional on the status, in one statement: a message a worker has
        claimed meanwhile (``sending``) is left as it is, and one moved here is no longer due,
        so no claim takes it after (PostgreSQL re-checks the condition on a row another
        transaction changed; SQLite has one writer).
        """
        rows = session.execute(
            sa.update(Message)
            .where(Message.status == _QUEUED, *where)
            .values(status=status.value, reason=reason, updated_at=now)
            .returning(Message.id, Message.org_id)
            .execution_options(synchronize_session=False)
        ).all()
        write_events(
            session,
            [
                message_event(
                    row.id,
                    row.org_id,
                    status,
                    source=source,
                    occurred_at=now,
                    moved_from=MessageStatus.QUEUED,
                    error_code=reason,
                    error_message=detail,
                    actor=actor,
                )
                for row in rows
            ],
        )
        return [row.id for row in rows]

    @in_stage("claim")
    def claim(
        self, worker_id: str, limit: int, now: datetime, lease: timedelta
    ) -> list[ClaimedMessage]:
        """Lease up to ``limit`` due messages to ``worker_id`` and mark them ``sending``.

        Messages whose lease ran out (their worker died or stalled) come first, then the
        queued ones that are due, each in order of ``scheduled_at``: two queries, each read
        along ``ix_messages_due`` in order. One query for both (an ``OR``) is read through a
        bitmap of the index, or the whole table, and a bitmap scan reads again, at every
        claim, the entries of every message that moved on since the table's last vacuum;
        an ordered index scan marks those entries dead the first time and skips them after.
        Finding that no lease ran out means reading every message being sent, so once a
        claim has found none, the claims of the next :data:`EXPIRED_LOOK_SECONDS` do not look
        again (a dead worker's messages wait a lease anyway).
        """
        # Messages of a channel stopped for bad credentials wait for new credentials, unless
        # their configuration names a healthy fallback channel.
        stopped = sa.select(Channel.id).where(Channel.healthy.is_(False))
        rescued = (
            sa.select(OutboundConfiguration.id)
            .join(Channel, Channel.id == OutboundConfiguration.fallback_channel_id)
            .where(Channel.healthy.is_(True))
        )
        sendable = sa.or_(Message.channel_id.not_in(stopped), Message.configuration_id.in_(rescued))

        def pick(
            due: sa.ColumnElement[bool], count: int
        ) -> sa.Select[str, str, datetime, str | None, datetime | None]:
            query = (
                sa.select(
                    Message.id,
                    Message.status,
                    Message.updated_at,
                    Message.error_code,
                    Message.first_attempt_at,
                )
                .where(due, sendable)
                .order_by(Message.scheduled_at)
                .limit(count)
            )
            return self._db.for_update(query, skip_locked=True)

        expired = sa.and_(Message.status == _SENDING, Message.lease_until < now)
        queued = sa.and_(Message.status == _QUEUED, Message.scheduled_at <= now)
        with self._db.transaction() as session:
            # The rows stay locked (PostgreSQL) or the database stays ours (SQLite, BEGIN
            # IMMEDIATE) until commit, so no other worker can take them in between.
            # A message still sending, or queued after an attempt of unknown outcome, may have
            # been accepted by its provider: looked up from its first attempt on (a lost
            # attempt began at or after it; the attempt itself may have been a take-over).
            picked = []
            if self._no_expired_at is None or now - self._no_expired_at >= EXPIRED_LOOK:
                picked = list(session.execute(pick(expired, limit)))
                self._no_expired_at = None if picked else now
            if len(picked) < limit:
                picked += session.execute(pick(queued, limit - len(picked)))
            previous = {
                row.id: (
                    row.status,
                    (row.first_attempt_at or row.updated_at - lease)
                    if row.status == _SENDING or row.error_code in UNKNOWN_OUTCOME_CODES
                    else None,
                )
                for row in picked
            }
            if not previous:
                return []
            rows = session.execute(
                sa.update(Message)
                # The rows are locked; the status condition is a second guard that a message
                # canceled or skipped meanwhile is never handed over.
                .where(Message.id.in_(list(previous)), Message.status.in_([_QUEUED, _SENDING]))
                .values(
                    status=_SENDING,
                    attempts=Message.attempts + 1,
                    lease_until=now + lease,
                    worker_id=worker_id,
                    first_attempt_at=sa.func.coalesce(Message.first_attempt_at, now),
                    updated_at=now,
                )
                .returning(*_RETURNING)
                .execution_options(synchronize_session=False)
            ).all()
            claimed = [
                ClaimedMessage(
                    id=r.id,
                    org_id=r.org_id,
                    channel_id=r.channel_id,
                    configuration_id=r.configuration_id,
                    template_id=r.template_id,
                    to_number=r.to_number,
                    body=r.body,
                    attempts=r.attempts,
                    max_attempts=r.max_attempts,
                    send_as_template=r.send_as_template,
                    content_sid=r.content_sid,
                    template_parameters=r.template_parameters,
                    reclaimed=previous[r.id][0] == _SENDING,
                    first_attempt_at=r.first_attempt_at,
                    time_zone=r.time_zone,
                    previous_attempt_at=previous[r.id][1],
                )
                for r in rows
            ]
            write_events(
                session,
                [
                    # A message whose lease expired was sending already: no move to check.
                    message_event(
                        m.id,
                        m.org_id,
                        MessageStatus.SENDING,
                        source="reclaimed" if m.reclaimed else "worker",
                        occurred_at=now,
                        moved_from=None if m.reclaimed else MessageStatus.QUEUED,
                    )
                    for m in claimed
                ],
            )
        return claimed

    @in_stage("record")
    def record(self, worker_id: str, outcomes: Sequence[Outcome], now: datetime) -> int:
        """Write the outcomes of a batch in one transaction; returns rows updated.

        Only rows still ``sending`` under this worker's lease change: if the lease expired and
        another worker took the message over, that worker's record wins. One statement
        updates them all (:meth:`_record_statement`) and returns those it changed, which
        decide the history rows to write.
        """
        if not outcomes:
            return 0
        # One outcome per message: a batch that holds a message twice (claimed again by this
        # worker after its lease ran out) records, and counts, it once.
        outcomes = list({o.message_id: o for o in reversed(outcomes)}.values())[::-1]
        check_at = now + self._status_check_after
        dialect = self._db.engine.dialect
        params = _OUTCOMES.parameters(
            dialect,
            (
                {
                    "id": o.message_id,
                    "status": o.status.value,
                    "pid": o.provider_message_id,
                    "code": o.error_code,
                    "msg": o.error_message,
                    "retry_at": o.retry_at,
                    "refund": 1 if o.refund_attempt else 0,
                    "via": o.sent_via_channel_id,
                    "from_number": o.from_number,
                    "provider": o.provider,
                    "reason": o.reason,
                    "check_at": check_at if o.status is MessageStatus.SENT else None,
                }
                for o in outcomes
            ),
        )
        with self._db.transaction() as session:
            ours = {
                row["id"]: row
                for row in session.connection()
                .execute(
                    _record_statement(dialect),
                    {**params, "b_worker": worker_id, "b_now": now},
                )
                .mappings()
            }
            write_events(
                session,
                [
                    message_event(
                        o.message_id,
                        ours[o.message_id]["org_id"],
                        o.status,
                        source="lookup"
                        if o.found
                        else "failover"
                        if o.sent_via_channel_id
                        else "worker",
                        occurred_at=now,
                        moved_from=MessageStatus.SENDING,
                        error_code=o.error_code,
                        error_message=o.error_message,
                    )
                    for o in outcomes
                    if o.message_id in ours
                ],
                messages=ours.values(),
            )
        return len(ours)

    def known_provider_ids(self, provider: str, provider_ids: Sequence[str]) -> set[str]:
        """Which of ``provider``'s ``provider_ids`` a message is already recorded with."""
        if not provider_ids:
            return set()
        with self._db.read() as session:
            return {
                str(pid)
                for pid in session.execute(
                    sa.select(Message.provider_message_id).where(
                        Message.provider == provider,
                        Message.provider_message_id.in_(list(provider_ids)),
                    )
                ).scalars()
            }

    def expire_leases(self, now: datetime, in_flight: timedelta) -> int:
        """End the leases still running (for a dispatcher that knows it is the only one
        alive, so that they belong to dead workers) as soon as their sends can no longer be
        on their way to the provider: ``in_flight`` after their claim, or now when that has
        passed. Returns how many were shortened."""
        with self._db.transaction() as session:
            rows = session.execute(
                sa.select(Message.id, Message.updated_at, Message.lease_until).where(
                    Message.status == _SENDING, Message.lease_until >= now
                )
            ).all()
            # Already past when due now, so that a claim at this same instant takes them.
            ends = [
                {"b_id": row.id, "b_until": max(row.updated_at + in_flight, now - _EXPIRED)}
                for row in rows
                if row.updated_at + in_flight < row.lease_until
            ]
            if ends:
                table = cast(sa.Table, Message.__table__)
                session.connection().execute(
                    sa.update(table)
                    .where(table.c.id == sa.bindparam("b_id"), table.c.status == _SENDING)
                    .values(lease_until=sa.bindparam("b_until", type_=Message.lease_until.type)),
                    ends,
                )
        return len(ends)


_MESSAGE_ROWS = RowSet("message", {column.name: column.type for column in _MESSAGES.columns})
_ENQUEUES: dict[tuple[str, tuple[str, ...]], sa.Insert] = {}
_SQLITE_ENQUEUE = DriverInsert(_MESSAGES)
_OUTCOMES = RowSet(
    "outcome",
    {
        "id": sa.String(),
        "status": sa.String(),
        "pid": sa.String(),
        "code": sa.String(),
        "msg": sa.Text(),
        "retry_at": UTCDateTime(),
        "refund": sa.Integer(),
        "via": sa.String(),
        "from_number": sa.String(),
        "provider": sa.String(),
        "reason": sa.String(),
        "check_at": UTCDateTime(),
    },
)
_RECORD_STATEMENTS: dict[str, sa.Update] = {}


def _record_statement(dialect: sa.Dialect) -> sa.Update:
    """``UPDATE messages … FROM`` the outcomes, of the rows still ``sending`` under the
    worker's lease, ``RETURNING`` them (with what the rollups count them by); made once per
    database kind.

    On PostgreSQL the rows are first locked in id order (a ``SELECT … ORDER BY id FOR
    UPDATE`` the update joins), so that two transactions on the same rows never wait for
    each other in a circle. A claim that took a row over commits before that lock is granted
    (the row no longer matches: not returned, no history row) or waits until this commit
    (then it sees the message recorded, no longer due). SQLite has one writer.
    """
    stmt = _RECORD_STATEMENTS.get(dialect.name)
    if stmt is not None:
        return stmt
    table = _MESSAGES
    v = _OUTCOMES.table(dialect)
    status: sa.ColumnElement[str] = table.c.status
    if dialect.name == "sqlite":
        # Unary plus: SQLite's planner would otherwise go through the index by status,
        # reading every message being sent and, for each, every outcome.
        status = UnaryExpression(status, operator=custom_op("+"), type_=status.type)
    ours = sa.and_(
        status == _SENDING, table.c.worker_id == sa.bindparam("b_worker", type_=sa.String)
    )
    stmt = sa.update(table).where(table.c.id == v.c.id, ours)
    if dialect.name == "postgresql":
        locked = (
            sa.select(table.c.id)
            .where(table.c.id.in_(sa.select(v.c.id)), ours)
            .order_by(table.c.id)
            .with_for_update()
            .cte("locked")
            .prefix_with("MATERIALIZED")
        )
        stmt = stmt.where(table.c.id.in_(sa.select(locked.c.id)))
    stmt = stmt.values(
        status=v.c.status,
        provider_message_id=sa.func.coalesce(v.c.pid, table.c.provider_message_id),
        error_code=v.c.code,
        error_message=v.c.msg,
        scheduled_at=sa.func.coalesce(v.c.retry_at, table.c.scheduled_at),
        attempts=table.c.attempts - v.c.refund,
        sent_via_channel_id=sa.func.coalesce(v.c.via, table.c.sent_via_channel_id),
        from_number=sa.func.coalesce(v.c.from_number, table.c.from_number),
        provider=sa.func.coalesce(v.c.provider, table.c.provider),
        reason=sa.func.coalesce(v.c.reason, table.c.reason),
        status_check_at=v.c.check_at,
        lease_until=None,
        worker_id=None,
        updated_at=sa.bindparam("b_now", type_=UTCDateTime()),
    ).returning(*(table.c[c.key] for c in COUNTED_COLUMNS))
    _RECORD_STATEMENTS[dialect.name] = stmt
    return stmt
