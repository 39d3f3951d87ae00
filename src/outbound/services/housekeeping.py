"""Housekeeping beside the dispatcher: what is past its lifetime goes, early reports are swept.

Every worker runs it (the statements are idempotent, so several at once do no harm):

- every minute, a purge: quota buckets that no longer count, status reports kept for sends
  never recorded (another system's ids, lost sends) after a day, and idempotency keys after a
  day, after which a key may be used again, and console sessions signed in longer ago than a
  session lasts;
- once a day (in each process, from its start), the retention of message bodies and payloads
  (:meth:`~outbound.services.retention.Retention.purge_bodies`), when one is set;
- every few seconds, a sweep for status reports kept as orphans whose send has been recorded
  since (see :meth:`~outbound.services.statuses.StatusService.sweep_orphans`);
- every few seconds, the status checks of sent messages whose final status did not come
  (:class:`~outbound.services.status_checks.StatusChecker`; claimed, so that two workers
  never make the same one).

Each loop survives errors, so that a database away for a moment or a bug never ends it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import sqlalchemy as sa

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import OrphanReport
from outbound.clock import Clock
from outbound.services.console_sessions import forget_old_sessions
from outbound.services.idempotency import forget_expired_keys
from outbound.services.quota import purge_old_buckets
from outbound.services.retention import Retention
from outbound.services.status_checks import StatusChecker
from outbound.services.statuses import ORPHAN_SWEEP_BATCH, StatusService

__all__ = [
    "MAINTENANCE_INTERVAL_SECONDS",
    "ORPHAN_LIFETIME",
    "ORPHAN_SWEEP_SECONDS",
    "STATUS_CHECK_SECONDS",
    "Housekeeping",
]

log = logging.getLogger(__name__)

MAINTENANCE_INTERVAL_SECONDS = 60.0
ORPHAN_SWEEP_SECONDS = 5.0
ORPHAN_LIFETIME = timedelta(hours=24)
STATUS_CHECK_SECONDS = 5.0
RETENTION_INTERVAL = timedelta(days=1)


class Housekeeping:
    """The purge and the orphan sweep, as loops that run until told to stop."""

    def __init__(self, db: Database, clock: Clock, *, retention: Retention | None = None) -> None:
        self._db = db
        self._clock = clock
        self._retention = retention
        self._retention_due = clock.now()

    async def maintain(self, stop: asyncio.Event) -> None:
        """Purge now, then every minute, until ``stop`` is set."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.purge)
            except sa.exc.OperationalError:
                log.warning("maintenance failed; will retry", exc_info=True)
            try:
                await asyncio.wait_for(stop.wait(), MAINTENANCE_INTERVAL_SECONDS)
            except TimeoutError:
                pass

    async def sweep_orphans(self, stop: asyncio.Event, statuses: StatusService) -> None:
        """Every few seconds, apply reports kept as orphans whose send is recorded by now."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), ORPHAN_SWEEP_SECONDS)
            except TimeoutError:
                pass
            else:
                return
            try:
                while await asyncio.to_thread(statuses.sweep_orphans) == ORPHAN_SWEEP_BATCH:
                    pass
            except sa.exc.OperationalError:
                log.warning("sweeping early status reports failed; will retry", exc_info=True)
            except Exception:
                # A bug: logged, and the next sweep goes on (a dead loop would strand reports).
                log.exception("sweeping early status reports failed; will retry")

    async def check_statuses(self, stop: asyncio.Event, checker: StatusChecker) -> None:
        """Every few seconds, make the status checks that are due (batch after batch while
        there are more), until ``stop`` is set."""
        while not stop.is_set():
            try:
                while await checker.run_once() and not stop.is_set():
                    pass
            except sa.exc.OperationalError:
                log.warning("status checks failed; will retry", exc_info=True)
            except Exception:
                # A bug: logged, and the next round goes on (a dead loop would check nothing).
                log.exception("status checks failed; will retry")
            try:
                await asyncio.wait_for(stop.wait(), STATUS_CHECK_SECONDS)
            except TimeoutError:
                pass

    def purge(self) -> None:
        """Delete or release, in one transaction, what has outlived its use."""
        now = self._clock.now()
        with self._db.transaction() as session:
            purge_old_buckets(session, now)
            # Reports for sends never recorded (another system's ids, lost sends) expire.
            session.execute(
                sa.delete(OrphanReport).where(OrphanReport.received_at < now - ORPHAN_LIFETIME)
            )
            forget_expired_keys(session, now)
            forget_old_sessions(session, now)
        if self._retention is not None and now >= self._retention_due:
            self._retention_due = now + RETENTION_INTERVAL
            self._retention.purge_bodies()
