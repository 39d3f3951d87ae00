"""The flow-runs queue: runs are created once per trigger, claimed under a lease, and given back.

* **Creating.** Runs started by events and schedules are inserted with a ``fire_key``
  (``event:<id>``, ``schedule:<time>``); the unique ``(flow_id, fire_key)`` makes an insert
  that another engine already made a no-op (:meth:`FlowRunQueue.insert_runs`). Scheduled flows
  whose time has come are claimed like events (:meth:`FlowRunQueue.claim_due_flows`).
* **Claiming.** A due run (``pending`` or ``running``, lease empty or expired) is set
  ``running`` with ``lease_owner`` and ``lease_until`` (:meth:`FlowRunQueue.claim_runs`).
  PostgreSQL selects with ``FOR UPDATE SKIP LOCKED``; SQLite has one writer, whose ``BEGIN
  IMMEDIATE`` serialises claimers (see :mod:`outbound.adapters.db.engine`).
* **Holding.** Every later write of the worker first locks the run and checks that the worker
  still holds its lease (:meth:`FlowRunQueue.lock_if_leased`): a run canceled meanwhile, or
  taken over by another worker after the lease expired, is left alone.
* **Giving back.** The lease ends when the run waits (:meth:`~FlowRunQueue.release_run`),
  ends (:meth:`~FlowRunQueue.finish_run`) or fails an attempt
  (:meth:`~FlowRunQueue.record_failure`: retried later, failed after :data:`MAX_FAILURES`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Event, Flow, FlowRun, FlowRunBatch, FlowRunRow, new_id
from outbound.adapters.queue.webhooks import NewEvent, emit
from outbound.domain.flow_runs import FlowRunStatus
from outbound.domain.webhooks import FLOW_RUN_COMPLETED

__all__ = [
    "ACTIVE_RUN_STATUSES",
    "MAX_FAILURES",
    "MAX_RECORDED_ERRORS",
    "FlowRunQueue",
    "add_errors",
    "new_run",
]

ACTIVE_RUN_STATUSES = (FlowRunStatus.PENDING.value, FlowRunStatus.RUNNING.value)
MAX_RECORDED_ERRORS = 100
MAX_FAILURES = 5
# A failed attempt is retried after this many seconds times the failures in a row.
RETRY_STEP_SECONDS = 30

_RUNNING = FlowRunStatus.RUNNING.value
_PENDING = FlowRunStatus.PENDING.value


def new_run(
    flow: Flow,
    *,
    trigger: str,
    fire_key: str,
    source: str,
    due_at: datetime,
    now: datetime,
    event_id: int | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The row of a run an event or a schedule starts, for :meth:`FlowRunQueue.insert_runs`;
    the run keeps the flow's definition as it is now."""
    return {
        "id": new_id(),
        "org_id": flow.org_id,
        "flow_id": flow.id,
        "trigger": trigger,
        "fire_key": fire_key,
        "event_id": event_id,
        "source": source,
        "params": {"definition": flow.definition, **(params or {})},
        "status": _PENDING,
        "wait_reason": None,
        "due_at": due_at,
        "cursor": None,
        "exhausted": False,
        "total": None,
        "scanned": 0,
        "matched": 0,
        "queued": 0,
        "skipped": 0,
        "rejected": 0,
        "batches": 0,
        "error_count": 0,
        "errors": [],
        "failures": 0,
        "lease_owner": None,
        "lease_until": None,
        "created_at": now,
        "started_at": None,
        "finished_at": None,
        "updated_at": now,
    }


def add_errors(run: FlowRun, errors: Sequence[dict[str, Any]]) -> None:
    """Count ``errors`` on the run, keeping the first :data:`MAX_RECORDED_ERRORS` of them."""
    if not errors:
        return
    run.error_count += len(errors)
    kept = list(run.errors or [])
    room = MAX_RECORDED_ERRORS - len(kept)
    if room > 0:
        run.errors = [*kept, *errors[:room]]


class FlowRunQueue:
    """Queue operations on the ``flow_runs`` table, for the worker ``worker_id``."""

    def __init__(self, db: Database, worker_id: str, lease: timedelta) -> None:
        self._db = db
        self.worker_id = worker_id
        self._lease = lease

    # --- creating runs -------------------------------------------------------------------

    @staticmethod
    def insert_runs(session: Session, rows: list[dict[str, Any]]) -> int:
        """Insert runs; one whose (flow, fire_key) exists already is left out. Returns how
        many were inserted."""
        if not rows:
            return 0
        insert = postgresql.insert if session.get_bind().dialect.name != "sqlite" else sqlite.insert
        inserted = session.execute(
            insert(FlowRun)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[FlowRun.flow_id, FlowRun.fire_key])
            .returning(FlowRun.id)
        ).all()
        return len(inserted)

    def claim_due_flows(self, session: Session, now: datetime, limit: int) -> Sequence[Flow]:
        """Lock up to ``limit`` enabled scheduled flows whose ``next_fire_at`` has passed, in
        the caller's transaction (which starts their runs and moves ``next_fire_at`` on)."""
        return (
            session.execute(
                self._db.for_update(
                    sa.select(Flow)
                    .where(
                        Flow.enabled,
                        Flow.trigger_type == "scheduled",
                        Flow.next_fire_at.is_not(None),
                        Flow.next_fire_at <= now,
                    )
                    .order_by(Flow.next_fire_at)
                    .limit(limit),
                    skip_locked=True,
                )
            )
            .scalars()
            .all()
        )

    # --- the lease -----------------------------------------------------------------------

    def anything_due(self, now: datetime) -> bool:
        """Whether an event is unseen, a scheduled flow's time has come or a run is due: one
        read, so that an idle engine opens no write transaction (on SQLite, the single
        writer's turn) and makes one look instead of three."""
        events = sa.select(Event.id).where(Event.processed_at.is_(None))
        flows = sa.select(Flow.id).where(
            Flow.enabled,
            Flow.trigger_type == "scheduled",
            Flow.next_fire_at.is_not(None),
            Flow.next_fire_at <= now,
        )
        runs = sa.select(FlowRun.id).where(
            FlowRun.status.in_(ACTIVE_RUN_STATUSES),
            FlowRun.due_at <= now,
            sa.or_(FlowRun.lease_until.is_(None), FlowRun.lease_until < now),
        )
        with self._db.read() as session:
            return bool(
                session.execute(
                    sa.select(sa.or_(events.exists(), flows.exists(), runs.exists()))
                ).scalar()
            )

    def claim_runs(self, now: datetime, limit: int = 1, *, run_id: str | None = None) -> list[str]:
        """Take the lease of due runs (or of one given run, when it is due)."""
        with self._db.transaction() as session:
            query = sa.select(FlowRun.id).where(
                FlowRun.status.in_(ACTIVE_RUN_STATUSES),
                FlowRun.due_at <= now,
                sa.or_(FlowRun.lease_until.is_(None), FlowRun.lease_until < now),
            )
            if run_id is not None:
                query = query.where(FlowRun.id == run_id)
            ids = list(
                session.execute(
                    self._db.for_update(
                        query.order_by(FlowRun.due_at).limit(limit), skip_locked=True
                    )
                ).scalars()
            )
            if ids:
                session.execute(
                    sa.update(FlowRun)
                    .where(FlowRun.id.in_(ids))
                    .values(
                        status=_RUNNING,
                        lease_owner=self.worker_id,
                        lease_until=now + self._lease,
                        started_at=sa.func.coalesce(FlowRun.started_at, now),
                        wait_reason=None,
                        updated_at=now,
                    )
                )
            return ids

    def lock_if_leased(self, session: Session, run_id: str) -> FlowRun | None:
        """The run, locked in ``session``, if this worker still holds its lease; ``None`` when
        it was canceled or taken over meanwhile (then nothing may be written for it)."""
        query = self._db.for_update(sa.select(FlowRun).where(FlowRun.id == run_id))
        run = session.execute(query).scalar_one_or_none()
        if run is None or run.status != _RUNNING or run.lease_owner != self.worker_id:
            return None
        return run

    def renew_lease(self, run_id: str, now: datetime) -> FlowRun | None:
        """Extend the lease from ``now``; the run as it is stored, or ``None`` if this worker
        no longer holds it."""
        with self._db.transaction() as session:
            run = self.lock_if_leased(session, run_id)
            if run is not None:
                run.lease_until = now + self._lease
            return run

    def release_run(self, run_id: str, now: datetime, wait: tuple[datetime, str] | None) -> None:
        """Give the lease back: the run is due again now, or at ``wait``'s time for its
        reason (a spent quota, a batch still in flight)."""
        with self._db.transaction() as session:
            run = self.lock_if_leased(session, run_id)
            if run is None:
                return
            run.lease_owner = None
            run.lease_until = None
            run.due_at, run.wait_reason = wait if wait is not None else (now, None)
            run.updated_at = now

    def finish_run(
        self, run_id: str, now: datetime, status: FlowRunStatus, error: str | None = None
    ) -> None:
        """End the run with ``status`` (and ``error``); its uploaded rows are deleted."""
        with self._db.transaction() as session:
            run = self.lock_if_leased(session, run_id)
            if run is None:
                return
            run.status = status.value
            run.finished_at = now
            run.updated_at = now
            run.lease_owner = None
            run.lease_until = None
            run.wait_reason = None
            if error is not None:
                add_errors(run, [{"at": None, "field": None, "message": error}])
            session.execute(sa.delete(FlowRunRow).where(FlowRunRow.run_id == run_id))
            if status is FlowRunStatus.COMPLETED:
                emit(session, [_completed_event(run, now)])

    def record_failure(self, run_id: str, now: datetime, message: str) -> None:
        """An attempt failed unexpectedly: retry the run later, or fail it after
        :data:`MAX_FAILURES` failures in a row."""
        with self._db.transaction() as session:
            run = self.lock_if_leased(session, run_id)
            if run is None:
                return
            run.failures += 1
            add_errors(run, [{"at": None, "field": None, "message": message}])
            run.lease_owner = None
            run.lease_until = None
            run.updated_at = now
            if run.failures >= MAX_FAILURES:
                run.status = FlowRunStatus.FAILED.value
                run.finished_at = now
                session.execute(sa.delete(FlowRunRow).where(FlowRunRow.run_id == run_id))
            else:
                run.due_at = now + timedelta(seconds=RETRY_STEP_SECONDS * run.failures)
                run.wait_reason = f"retrying after an error ({run.failures}/{MAX_FAILURES})"

    # --- batches -------------------------------------------------------------------------

    def pending_batch(self, run_id: str) -> FlowRunBatch | None:
        """The run's first batch written down but not sent yet (a run resumes with it)."""
        with self._db.read() as session:
            return session.execute(
                sa.select(FlowRunBatch)
                .where(FlowRunBatch.run_id == run_id, FlowRunBatch.status == "pending")
                .order_by(FlowRunBatch.seq)
                .limit(1)
            ).scalar_one_or_none()


def _completed_event(run: FlowRun, now: datetime) -> NewEvent:
    """``flow_run.completed``: the run's counts once its last batch was accepted."""
    return NewEvent(
        org_id=run.org_id,
        type=FLOW_RUN_COMPLETED,
        occurred_at=now,
        ordering_key=run.id,
        data={
            "flow_run_id": run.id,
            "flow_id": run.flow_id,
            "status": run.status,
            "trigger": run.trigger,
            "total": run.total,
            "scanned": run.scanned,
            "matched": run.matched,
            "queued": run.queued,
            "skipped": run.skipped,
            "rejected": run.rejected,
            "batches": run.batches,
            "error_count": run.error_count,
            "started_at": run.started_at.isoformat().replace("+00:00", "Z")
            if run.started_at
            else None,
            "finished_at": now.isoformat().replace("+00:00", "Z"),
        },
    )
