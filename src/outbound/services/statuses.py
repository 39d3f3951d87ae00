"""The status path: provider reports (webhooks, the sandbox) move a message's status forward.

Reports are applied in batches: many reports arriving together (a burst of delivery receipts)
share one write transaction instead of queueing for SQLite's single writer one by one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Message, OrphanReport, UTCDateTime
from outbound.adapters.db.rowsets import RowSet
from outbound.adapters.db.stages import in_stage
from outbound.adapters.metrics import Metrics
from outbound.adapters.providers.base import StatusReport
from outbound.adapters.queue.history import message_event, write_events
from outbound.adapters.queue.rollups import COUNTED_COLUMNS
from outbound.clock import Clock
from outbound.config import DEFAULT_STATUS_CHECK_AFTER_SECONDS
from outbound.domain.statuses import MessageStatus, can_transition
from outbound.services.conversation_log import publish

__all__ = ["MAX_REPORT_BATCH", "ORPHAN_SWEEP_BATCH", "StatusService"]

ORPHAN_SWEEP_BATCH = 1_000
# Younger orphans are still the business of the replay that follows their send's record.
ORPHAN_SWEEP_AGE = timedelta(seconds=2)

log = logging.getLogger(__name__)

MAX_REPORT_BATCH = 500
DEFAULT_STATUS_CHECK_AFTER = timedelta(seconds=DEFAULT_STATUS_CHECK_AFTER_SECONDS)


class StatusService:
    """Applies provider status reports idempotently; a status never moves backwards."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        metrics: Metrics | None = None,
        status_check_after: timedelta = DEFAULT_STATUS_CHECK_AFTER,
    ) -> None:
        self._db = db
        self._clock = clock
        self._metrics = metrics
        self._status_check_after = status_check_after
        self._pending: list[tuple[StatusReport, str | None, asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None

    @in_stage("report")
    def apply_many(
        self,
        reports: Sequence[StatusReport],
        *,
        channel_id: str | None = None,
        restrict_to: str | None = None,
    ) -> list[bool]:
        """Apply reports in one transaction, in order; one matched-or-not flag per report.

        ``channel_id``: the channel whose credentials verified the reports (webhooks). Only its
        messages may change, so that one tenant's callbacks never touch another's messages;
        reports that match nothing yet are kept as orphans. ``restrict_to`` restricts the
        match the same way without keeping orphans.
        """
        if not reports:
            return []
        now = self._clock.now()
        with self._db.transaction() as session:
            matched = self._apply(session, reports, channel_id, restrict_to, now)
        self._count(reports, matched)
        return matched

    def _apply(
        self,
        session: Session,
        reports: Sequence[StatusReport],
        channel_id: str | None,
        restrict_to: str | None,
        now: datetime,
    ) -> list[bool]:
        found = self._find(self._db, session, reports, channel_id or restrict_to)
        matched = [(r.provider, r.provider_message_id) in found for r in reports]
        updates, events = self._moves(reports, found, now)
        if updates:
            self._write(session, updates, events, found, now, now + self._status_check_after)
            self._tell_conversations(session, updates, found, now)
        if channel_id is not None:
            # Too early: keep them for when the send is recorded (replay_orphans).
            early = [r for r, hit in zip(reports, matched, strict=True) if not hit]
            self._keep_orphans(session, early, channel_id, now)
        return matched

    def _count(self, reports: Sequence[StatusReport], matched: Sequence[bool]) -> None:
        if self._metrics is not None:
            moves = Counter(
                (report.status.value, report.provider)
                for report, hit in zip(reports, matched, strict=True)
                if hit
            )
            for (status, provider), count in moves.items():
                self._metrics.transitions.labels(status, provider).inc(count)

    @staticmethod
    def _find(
        db: Database, session: Session, reports: Sequence[StatusReport], scope: str | None
    ) -> dict[tuple[str, str], Any]:
        """The messages the reports name, by (provider, provider id), within ``scope``'s.

        The rows are locked until commit (PostgreSQL; in id order, so two batches never wait
        for each other in a circle): two reports on one message applied at once would both
        see the old status and both write a move, counted twice by the rollups.
        """
        by_provider: dict[str, set[str]] = {}
        for report in reports:
            by_provider.setdefault(report.provider, set()).add(report.provider_message_id)
        stmt = _find_statement(db, scoped=scope is not None)
        connection = session.connection()
        found: dict[tuple[str, str], Any] = {}
        for provider, ids in by_provider.items():
            params = {"provider": provider, "ids": list(ids), "scope": scope}
            for row in connection.execute(stmt, params):
                found[(provider, row.provider_message_id)] = row
        return found

    @staticmethod
    def _moves(
        reports: Sequence[StatusReport], found: dict[tuple[str, str], Any], now: datetime
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The status changes the reports make, in order: one update per message (its last
        status) and one history row per move."""
        current = {row.id: MessageStatus(row.status) for row in found.values()}
        updates: dict[str, dict[str, Any]] = {}
        events: list[dict[str, Any]] = []
        for report in reports:
            row = found.get((report.provider, report.provider_message_id))
            if row is None:
                continue
            status = current[row.id]
            if not can_transition(status, report.status):
                # A duplicate, or a late report of an earlier stage: nothing to change.
                continue
            current[row.id] = report.status
            values = updates.setdefault(row.id, {"b_id": row.id, "b_code": None, "b_msg": None})
            values["b_status"] = report.status.value
            if report.error_code is not None or report.error_message is not None:
                values["b_code"] = report.error_code
                values["b_msg"] = report.error_message
            events.append(
                message_event(
                    row.id,
                    row.org_id,
                    report.status,
                    source="provider",
                    occurred_at=report.occurred_at or now,
                    moved_from=status,
                    error_code=report.error_code,
                    error_message=report.error_message,
                )
            )
        return list(updates.values()), events

    @staticmethod
    def _tell_conversations(
        session: Session,
        updates: list[dict[str, Any]],
        found: dict[tuple[str, str], Any],
        now: datetime,
    ) -> None:
        """A live update for each message of a conversation whose status changed (agents see
        their answers delivered or failing)."""
        rows = {row.id: row for row in found.values() if row.conversation_id is not None}
        for values in updates:
            row = rows.get(values["b_id"])
            if row is not None:
                publish(
                    session,
                    row.org_id,
                    "message.status",
                    {
                        "conversation_id": row.conversation_id,
                        "message_id": row.id,
                        "status": values["b_status"],
                        "error_code": values["b_code"],
                    },
                    now,
                )

    @staticmethod
    def _write(
        session: Session,
        updates: list[dict[str, Any]],
        events: list[dict[str, Any]],
        found: dict[tuple[str, str], Any],
        now: datetime,
        check_at: datetime,
    ) -> None:
        """Each message's new status (an error only replaces one when the report has one), in
        one statement for the batch.

        A final status ends the message's status checks; a report of ``sent`` (before the
        worker recorded it) sets them up at ``check_at``, as the record would have.
        """
        dialect = session.get_bind().dialect
        session.connection().execute(
            _update_statement(dialect),
            {
                **_MOVES.parameters(dialect, updates),
                "b_check": check_at,
                "b_now": now,
            },
        )
        # The rows read for the reports hold what the rollups count the messages by.
        write_events(session, events, messages=[row._mapping for row in found.values()])

    @staticmethod
    def _keep_orphans(
        session: Session, reports: Sequence[StatusReport], channel_id: str, now: datetime
    ) -> None:
        if reports:
            session.execute(
                sa.insert(OrphanReport),
                [
                    {
                        "provider": r.provider,
                        "provider_message_id": r.provider_message_id,
                        "channel_id": channel_id,
                        "status": r.status.value,
                        "error_code": r.error_code,
                        "error_message": r.error_message,
                        "occurred_at": r.occurred_at or now,
                        "received_at": now,
                    }
                    for r in reports
                ],
            )

    def replay_orphans(self, sent: Sequence[tuple[str, str]]) -> int:
        """Apply the reports that arrived before these ``(provider, provider id)`` sends were
        recorded; returns how many were applied."""
        if not sent:
            return 0
        by_provider: dict[str, list[str]] = {}
        for provider, pid in sent:
            by_provider.setdefault(provider, []).append(pid)
        with self._db.read() as session:
            rows = [
                row
                for provider, pids in by_provider.items()
                for row in session.execute(
                    sa.select(OrphanReport)
                    .where(
                        OrphanReport.provider == provider,
                        OrphanReport.provider_message_id.in_(pids),
                    )
                    .order_by(OrphanReport.id)
                ).scalars()
            ]
        return self._apply_orphans(rows)

    def sweep_orphans(self, limit: int = ORPHAN_SWEEP_BATCH) -> int:
        """Apply kept reports whose send has been recorded since; returns how many.

        :meth:`replay_orphans` runs as each batch is recorded, but on PostgreSQL a report's
        transaction may keep it as an orphan a moment after that replay looked (both
        transactions ran at once): such a report would wait for nothing. The dispatcher
        sweeps for them every few seconds; reports kept less than two seconds ago are left to
        that replay.
        """
        settled = self._clock.now() - ORPHAN_SWEEP_AGE
        with self._db.read() as session:
            rows = list(
                session.execute(
                    sa.select(OrphanReport)
                    .join(
                        Message,
                        sa.and_(
                            Message.provider == OrphanReport.provider,
                            Message.provider_message_id == OrphanReport.provider_message_id,
                        ),
                    )
                    .where(OrphanReport.received_at < settled)
                    .order_by(OrphanReport.id)
                    .limit(limit)
                ).scalars()
            )
        return self._apply_orphans(rows)

    def _apply_orphans(self, rows: Sequence[OrphanReport]) -> int:
        if not rows:
            return 0
        by_channel: dict[str | None, list[StatusReport]] = {}
        for row in rows:
            by_channel.setdefault(row.channel_id, []).append(
                StatusReport(
                    provider=row.provider,
                    provider_message_id=row.provider_message_id,
                    status=MessageStatus(row.status),
                    occurred_at=row.occurred_at,
                    error_code=row.error_code,
                    error_message=row.error_message,
                )
            )
        for channel_id, reports in by_channel.items():
            # channel_id=None here: the orphan was already verified by that channel's secret,
            # and re-orphaning a report that still matches nothing would loop.
            self.apply_many(reports, restrict_to=channel_id)
        with self._db.transaction() as session:
            session.execute(
                sa.delete(OrphanReport).where(OrphanReport.id.in_([r.id for r in rows]))
            )
        return len(rows)

    async def report(self, report: StatusReport, *, channel_id: str | None = None) -> bool:
        """The :class:`~outbound.adapters.providers.base.StatusReporter` face of
        :meth:`apply_many`, for one report.

        Reports that arrive while a batch is being written wait for the next batch, so a burst
        of delivery receipts (webhook calls, the sandbox) shares a few transactions.
        ``channel_id`` restricts the match as in :meth:`apply_many`.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((report, channel_id, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[:MAX_REPORT_BATCH]
            del self._pending[: len(batch)]
            groups: dict[str | None, list[tuple[StatusReport, asyncio.Future[bool]]]] = {}
            for report, channel_id, future in batch:
                groups.setdefault(channel_id, []).append((report, future))
            try:
                results = await asyncio.to_thread(self._apply_groups, groups)
            except Exception as exc:  # hand the error to each waiting caller
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for future, result in results:
                if not future.done():
                    future.set_result(result)

    @in_stage("report")
    def _apply_groups(
        self, groups: dict[str | None, list[tuple[StatusReport, asyncio.Future[bool]]]]
    ) -> list[tuple[asyncio.Future[bool], bool]]:
        """The reports of every channel that arrived together, in one transaction."""
        now = self._clock.now()
        applied: list[tuple[list[StatusReport], list[asyncio.Future[bool]], list[bool]]] = []
        with self._db.transaction() as session:
            # In one order in every process, so that two of them lock rows in the same order.
            for channel_id, entries in sorted(groups.items(), key=lambda item: item[0] or ""):
                reports = [r for r, _ in entries]
                matched = self._apply(session, reports, channel_id, None, now)
                applied.append((reports, [f for _, f in entries], matched))
        results: list[tuple[asyncio.Future[bool], bool]] = []
        for reports, futures, matched in applied:
            self._count(reports, matched)
            results.extend(zip(futures, matched, strict=True))
        return results


_FINDS: dict[tuple[str, bool], sa.Executable] = {}


def _find_statement(db: Database, *, scoped: bool) -> sa.Executable:
    """The messages of one provider named by their provider ids (``ids``), within the
    channel ``scope`` when ``scoped``, locked in id order; made once per database kind.

    Built once rather than per batch: building and keying a statement cost more CPU than
    running it, on the path of every delivery report."""
    key = (db.dialect, scoped)
    stmt = _FINDS.get(key)
    if stmt is None:
        scope = sa.bindparam("scope", type_=sa.String())
        stmt = _FINDS[key] = db.for_update(
            sa.select(
                *COUNTED_COLUMNS,
                Message.status,
                Message.provider_message_id,
                Message.conversation_id,
            )
            .where(
                Message.provider == sa.bindparam("provider", type_=sa.String()),
                Message.provider_message_id.in_(sa.bindparam("ids", expanding=True)),
                sa.or_(Message.channel_id == scope, Message.sent_via_channel_id == scope)
                if scoped
                else sa.true(),
            )
            .order_by(Message.id)
        )
    return stmt


_MOVES = RowSet(
    "move",
    {"b_id": sa.String(), "b_status": sa.String(), "b_code": sa.String(), "b_msg": sa.Text()},
)
_UPDATES: dict[str, sa.Update] = {}


def _update_statement(dialect: sa.Dialect) -> sa.Update:
    """``UPDATE messages … FROM`` the moves (one per message), made once per database kind."""
    stmt = _UPDATES.get(dialect.name)
    if stmt is None:
        table = cast(sa.Table, Message.__table__)
        v = _MOVES.table(dialect)
        stmt = (
            sa.update(table)
            .where(table.c.id == v.c.b_id)
            .values(
                status=v.c.b_status,
                status_check_at=sa.case(
                    (
                        v.c.b_status == MessageStatus.SENT.value,
                        sa.bindparam("b_check", type_=UTCDateTime()),
                    ),
                    else_=None,
                ),
                error_code=sa.func.coalesce(v.c.b_code, table.c.error_code),
                error_message=sa.func.coalesce(v.c.b_msg, table.c.error_message),
                updated_at=sa.bindparam("b_now", type_=UTCDateTime()),
            )
        )
        _UPDATES[dialect.name] = stmt
    return stmt
