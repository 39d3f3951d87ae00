"""The flow engine: events and schedules become runs; runs become send requests.

Three duties, each safe with several workers on one PostgreSQL database:

* **Events.** Unprocessed events are claimed (``FOR UPDATE SKIP LOCKED``); each automatic flow
  whose event and conditions match gets one run, keyed ``event:<id>`` so an event starts at
  most one run per flow. A flow with a delay gets a run due that long after the event, which
  looks at the record again when it is due.
* **Schedules.** Flows whose ``next_fire_at`` has passed are claimed the same way; each due
  time starts one run keyed ``schedule:<time>`` (a unique key, so two workers cannot both fire
  it), and times missed while the service was down are caught up or skipped as the flow says.
* **Runs.** A run is claimed under a lease. Its recipients are read in key order from a
  checkpoint (the cursor), never all at once; each batch of at most 100 contacts is written
  down *before* it is sent and sent with an idempotency key of its own, so a run interrupted
  at any point resumes without sending anything twice. When the organisation's hourly quota
  is spent the run waits until it refills.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import (
    Case,
    Contact,
    Event,
    Flow,
    FlowRun,
    FlowRunBatch,
    FlowRunRow,
    Organization,
    OutboundConfiguration,
)
from outbound.clock import Clock
from outbound.config import Settings
from outbound.domain.contacts import case_record, contact_record
from outbound.domain.flows import (
    Condition,
    FlowDefinition,
    MappingError,
    due_fire_times,
    evaluate_conditions,
    matches_event,
    render_recipient,
)
from outbound.errors import ConflictError, RateLimitedError, RequestError
from outbound.flow_schemas import FlowRunOut, FlowRunStatus
from outbound.schemas import ContactItem, SendIn
from outbound.services.flows import ACTIVE_RUN_STATUSES, conditions_of, run_out
from outbound.services.sending import SendService

__all__ = ["BATCH_SIZE", "FlowEngine", "contact_from_row"]

log = logging.getLogger(__name__)

BATCH_SIZE = 100
PAGE_SIZE = 500
MAX_RECORDED_ERRORS = 100
MAX_FAILURES = 5
EVENTS_PER_TICK = 500
# Batches a run may send before letting other due runs (events, schedules) have a turn.
BATCHES_PER_TURN = 20
# Records read at most between two checkpoints of a run.
SCAN_LIMIT = 5_000
PURGE_INTERVAL = timedelta(hours=1)
PURGE_CHUNK = 5_000

_RUNNING = FlowRunStatus.RUNNING.value
_PENDING = FlowRunStatus.PENDING.value
_TRUE = {"true", "yes", "y", "1", "on"}

ProgressCallback = Callable[[FlowRunOut], None]


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:flows"


def _truthy(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


def contact_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """A contact-shaped view of an uploaded row, so a flow's default mapping reads it too.

    Columns: ``mobile_phone`` (or ``phone``), ``whatsapp_number``, ``name``,
    ``preferred_language`` (or ``locale``/``language``), ``time_zone`` (or ``timezone``),
    ``consent_sms``/``consent_whatsapp`` (or ``optin``, for both); every column stays readable
    as ``record.<column>``.
    """
    phone = row.get("mobile_phone") or row.get("phone") or row.get("tocontactid")
    optin = row.get("optin")
    return {
        "id": row.get("id") or row.get("external_id"),
        "name": row.get("name"),
        "mobile_phone": phone,
        "whatsapp_number": row.get("whatsapp_number") or phone,
        "preferred_language": row.get("preferred_language")
        or row.get("locale")
        or row.get("language"),
        "time_zone": row.get("time_zone") or row.get("timezone"),
        "consent": {
            "sms": _truthy(row.get("consent_sms", optin)) or False,
            "whatsapp": _truthy(row.get("consent_whatsapp", optin)) or False,
        },
        "custom": row,
    }


class FlowEngine:
    """Turns events and schedules into runs, and runs into send requests."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        sending: SendService,
        *,
        worker_id: str | None = None,
        batches_per_turn: int = BATCHES_PER_TURN,
    ) -> None:
        self._db = db
        self._clock = clock
        self._settings = settings
        self._sending = sending
        self.worker_id = worker_id or _worker_id()
        self._batches_per_turn = batches_per_turn
        self._lease = timedelta(seconds=max(settings.lease_seconds, 5.0))
        self._next_purge: datetime | None = None

    # --- the loop ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; a batch in flight finishes first."""
        idle = max(self._settings.worker_poll_interval, 0.5)
        while not stop.is_set():
            try:
                busy = await asyncio.to_thread(self.tick)
            except Exception:
                log.exception("flow engine tick failed")
                busy = False
            if not busy:
                try:
                    await asyncio.wait_for(stop.wait(), idle)
                except TimeoutError:
                    pass

    def tick(self) -> bool:
        """One round: events, schedules, then one turn of one due run. True if it did work."""
        self._purge_if_due()
        events = self.process_events()
        fired = self.fire_schedules()
        claimed = self.claim()
        for run_id in claimed:
            self.execute(run_id, max_batches=self._batches_per_turn)
        return bool(events or fired or claimed)

    def purge_events(self) -> int:
        """Delete the events every flow has seen, past their retention; returns how many."""
        now = self._clock.now()
        horizon = now - timedelta(days=self._settings.event_retention_days)
        deleted = 0
        while True:
            with self._db.transaction() as session:
                ids = list(
                    session.execute(
                        sa.select(Event.id)
                        .where(
                            Event.processed_at.is_not(None),
                            Event.processed_at < horizon,
                            # A delayed run still to come reads its event when it is due.
                            ~sa.exists().where(
                                FlowRun.event_id == Event.id,
                                FlowRun.status.in_(ACTIVE_RUN_STATUSES),
                            ),
                        )
                        .order_by(Event.id)
                        .limit(PURGE_CHUNK)
                    ).scalars()
                )
                if ids:
                    session.execute(sa.delete(Event).where(Event.id.in_(ids)))
            deleted += len(ids)
            if len(ids) < PURGE_CHUNK:
                return deleted

    def _purge_if_due(self) -> None:
        now = self._clock.now()
        if self._next_purge is None or now >= self._next_purge:
            self._next_purge = now + PURGE_INTERVAL
            deleted = self.purge_events()
            if deleted:
                log.info("deleted %d events past their retention", deleted)

    def run_until_idle(self, max_ticks: int = 10_000) -> None:
        """Tick until nothing is due (tests, the demo, the command line)."""
        for _ in range(max_ticks):
            if not self.tick():
                return

    def _skip_locked(self, query: sa.Select[Any]) -> sa.Select[Any]:
        return query if self._db.is_sqlite else query.with_for_update(skip_locked=True)

    def _insert_ignore(self, session: Session, rows: list[dict[str, Any]]) -> int:
        """Insert runs; one whose (flow, fire_key) exists already is left out."""
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

    def _new_run(
        self,
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
        from outbound.adapters.db.models import new_id

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

    # --- events --------------------------------------------------------------------------

    def process_events(self, limit: int = EVENTS_PER_TICK) -> int:
        """Start a run for each automatic flow each new event matches; returns events seen."""
        now = self._clock.now()
        with self._db.transaction() as session:
            events = (
                session.execute(
                    self._skip_locked(
                        sa.select(Event)
                        .where(Event.processed_at.is_(None))
                        .order_by(Event.id)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
            if not events:
                return 0
            flows_by_org: dict[str, list[tuple[Flow, FlowDefinition]]] = {}
            orgs = {e.org_id for e in events}
            for flow in session.execute(
                sa.select(Flow).where(
                    Flow.org_id.in_(orgs), Flow.trigger_type == "automatic", Flow.enabled
                )
            ).scalars():
                definition = FlowDefinition.from_dict(flow.definition)
                flows_by_org.setdefault(flow.org_id, []).append((flow, definition))
            runs: list[dict[str, Any]] = []
            contexts: dict[int, dict[str, Any]] = {}
            for event in events:
                for flow, definition in flows_by_org.get(event.org_id, []):
                    pattern = definition.trigger.event
                    if pattern is None or not matches_event(pattern, event.type):
                        continue
                    context = contexts.get(event.id)
                    if context is None:
                        context = contexts[event.id] = event_context(event, session)
                    if not evaluate_conditions(definition.conditions, context, now):
                        continue
                    delay = timedelta(seconds=definition.trigger.delay_seconds or 0)
                    runs.append(
                        self._new_run(
                            flow,
                            trigger="event",
                            fire_key=f"event:{event.id}",
                            source="event",
                            due_at=event.occurred_at + delay,
                            now=now,
                            event_id=event.id,
                            params={"delayed": bool(delay)},
                        )
                    )
            self._insert_ignore(session, runs)
            session.execute(
                sa.update(Event)
                .where(Event.id.in_([e.id for e in events]))
                .values(processed_at=now)
            )
            return len(events)

    # --- schedules -----------------------------------------------------------------------

    def fire_schedules(self, limit: int = 50) -> int:
        """Start the runs of scheduled flows whose time has come; returns runs started."""
        now = self._clock.now()
        started = 0
        with self._db.transaction() as session:
            flows = (
                session.execute(
                    self._skip_locked(
                        sa.select(Flow)
                        .where(
                            Flow.enabled,
                            Flow.trigger_type == "scheduled",
                            Flow.next_fire_at.is_not(None),
                            Flow.next_fire_at <= now,
                        )
                        .order_by(Flow.next_fire_at)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
            for flow in flows:
                assert flow.next_fire_at is not None
                definition = FlowDefinition.from_dict(flow.definition)
                times, next_at = due_fire_times(definition.trigger, flow.next_fire_at, now)
                rows = [
                    self._new_run(
                        flow,
                        trigger="schedule",
                        fire_key=f"schedule:{when.isoformat()}",
                        source=definition.source_records or "contacts",
                        due_at=now,
                        now=now,
                        params={"scheduled_for": when.isoformat()},
                    )
                    for when in times
                ]
                started += self._insert_ignore(session, rows)
                missed = len(times) == 0
                if missed:
                    log.info("flow %s: missed schedule skipped (on_missed: skip)", flow.id)
                flow.next_fire_at = next_at
                if times:
                    flow.last_fired_at = now
        return started

    # --- runs ----------------------------------------------------------------------------

    def claim(self, limit: int = 1, *, run_id: str | None = None) -> list[str]:
        """Take the lease of due runs (or of one given run, when it is due)."""
        now = self._clock.now()
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
                    self._skip_locked(query.order_by(FlowRun.due_at).limit(limit))
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

    def _held(self, session: Session, run_id: str) -> FlowRun | None:
        """The run, locked, if this worker still holds its lease (not canceled meanwhile)."""
        query = sa.select(FlowRun).where(FlowRun.id == run_id)
        if not self._db.is_sqlite:
            query = query.with_for_update()
        run = session.execute(query).scalar_one_or_none()
        if run is None or run.status != _RUNNING or run.lease_owner != self.worker_id:
            return None
        return run

    def _renew(self, run_id: str) -> FlowRun | None:
        now = self._clock.now()
        with self._db.transaction() as session:
            run = self._held(session, run_id)
            if run is not None:
                run.lease_until = now + self._lease
            return run

    def execute(
        self,
        run_id: str,
        *,
        max_batches: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Work on a claimed run: until it ends, waits, or has sent ``max_batches``."""
        sent = 0
        try:
            while True:
                run = self._renew(run_id)
                if run is None:
                    return  # canceled, or the lease was lost to another worker
                if progress is not None:
                    progress(run_out(run))
                if run.total is None:
                    self._count(run)
                with self._db.read() as session:
                    pending = session.execute(
                        sa.select(FlowRunBatch)
                        .where(FlowRunBatch.run_id == run_id, FlowRunBatch.status == "pending")
                        .order_by(FlowRunBatch.seq)
                        .limit(1)
                    ).scalar_one_or_none()
                if pending is not None:
                    if not self._send(run, pending):
                        return
                    sent += 1
                elif run.exhausted:
                    self._finish(run_id, FlowRunStatus.COMPLETED)
                    return
                else:
                    self._prepare_batch(run)
                if max_batches is not None and sent >= max_batches:
                    self._release(run_id, None)
                    return
        except Exception as exc:
            log.exception("flow run %s failed", run_id)
            self._failed_attempt(run_id, exc)
        finally:
            if progress is not None:
                with self._db.read() as session:
                    final = session.get(FlowRun, run_id)
                    if final is not None:
                        progress(run_out(final))

    def _release(self, run_id: str, wait: tuple[datetime, str] | None) -> None:
        now = self._clock.now()
        with self._db.transaction() as session:
            run = self._held(session, run_id)
            if run is None:
                return
            run.lease_owner = None
            run.lease_until = None
            run.due_at, run.wait_reason = wait if wait is not None else (now, None)
            run.updated_at = now

    def _finish(self, run_id: str, status: FlowRunStatus, error: str | None = None) -> None:
        now = self._clock.now()
        with self._db.transaction() as session:
            run = self._held(session, run_id)
            if run is None:
                return
            run.status = status.value
            run.finished_at = now
            run.updated_at = now
            run.lease_owner = None
            run.lease_until = None
            run.wait_reason = None
            if error is not None:
                _add_errors(run, [{"at": None, "field": None, "message": error}])
            session.execute(sa.delete(FlowRunRow).where(FlowRunRow.run_id == run_id))

    def _failed_attempt(self, run_id: str, exc: Exception) -> None:
        now = self._clock.now()
        try:
            with self._db.transaction() as session:
                run = self._held(session, run_id)
                if run is None:
                    return
                run.failures += 1
                message = f"{type(exc).__name__}: {exc}"[:500]
                _add_errors(run, [{"at": None, "field": None, "message": message}])
                run.lease_owner = None
                run.lease_until = None
                run.updated_at = now
                if run.failures >= MAX_FAILURES:
                    run.status = FlowRunStatus.FAILED.value
                    run.finished_at = now
                    session.execute(sa.delete(FlowRunRow).where(FlowRunRow.run_id == run_id))
                else:
                    run.due_at = now + timedelta(seconds=30 * run.failures)
                    run.wait_reason = f"retrying after an error ({run.failures}/{MAX_FAILURES})"
        except Exception:
            log.exception("could not record the failure of flow run %s", run_id)

    # --- recipients ----------------------------------------------------------------------

    def _definition(self, run: FlowRun, session: Session) -> FlowDefinition:
        stored = (run.params or {}).get("definition")
        if stored is None:
            flow = session.get(Flow, run.flow_id)
            assert flow is not None
            stored = flow.definition
        return FlowDefinition.from_dict(stored)

    def _count(self, run: FlowRun) -> None:
        """Records in the run's source when it starts (for progress)."""
        with self._db.read() as session:
            if run.source == "event":
                total = 1
            elif run.source == "csv":
                total = session.execute(
                    sa.select(sa.func.count())
                    .select_from(FlowRunRow)
                    .where(FlowRunRow.run_id == run.id)
                ).scalar_one()
            else:
                definition = self._definition(run, session)
                query = self._source_query(run, definition)
                total = session.execute(
                    sa.select(sa.func.count()).select_from(query.subquery())
                ).scalar_one()
        with self._db.transaction() as session:
            held = self._held(session, run.id)
            if held is not None and held.total is None:
                held.total = int(total)
        run.total = int(total)

    def _conditions(self, run: FlowRun, definition: FlowDefinition) -> list[Condition]:
        return [*definition.conditions, *conditions_of(run)]

    def _source_query(self, run: FlowRun, definition: FlowDefinition) -> sa.Select[Any]:
        """The run's records as a query, with the simple conditions pushed down to SQL."""
        if run.source == "cases":
            query = sa.select(Case.id).where(Case.org_id == run.org_id)
            for condition in self._conditions(run, definition):
                if condition.field in {"case.status", "record.status"}:
                    if condition.op == "eq" and isinstance(condition.value, str):
                        query = query.where(Case.status == condition.value)
                    elif condition.op == "in" and isinstance(condition.value, list):
                        query = query.where(Case.status.in_([str(v) for v in condition.value]))
            return query
        return sa.select(Contact.id).where(Contact.org_id == run.org_id)

    def _pages(
        self, session: Session, run: FlowRun, definition: FlowDefinition
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """The run's records after its cursor, in key order, as flow contexts."""
        base = {
            "params": (run.params or {}).get("values", {}),
            "run": {"id": run.id, "trigger": run.trigger},
        }
        if run.source == "event":
            if run.cursor is None:
                context = self._event_run_context(session, run)
                if context is not None:
                    yield "event", {**base, **context}
            return
        after = run.cursor
        while True:
            page: list[tuple[str, dict[str, Any]]] = []
            if run.source == "csv":
                start = int(after) if after is not None else 0
                rows = session.execute(
                    sa.select(FlowRunRow.seq, FlowRunRow.data)
                    .where(FlowRunRow.run_id == run.id, FlowRunRow.seq > start)
                    .order_by(FlowRunRow.seq)
                    .limit(PAGE_SIZE)
                ).all()
                for seq, data in rows:
                    page.append((str(seq), {**base, "record": data, "row": data, **_row_ctx(data)}))
            elif run.source == "cases":
                ids = self._source_query(run, definition).order_by(Case.id).limit(PAGE_SIZE)
                if after is not None:
                    ids = ids.where(Case.id > after)
                case_rows = session.execute(
                    sa.select(Case, Contact)
                    .outerjoin(Contact, Contact.id == Case.contact_id)
                    .where(Case.id.in_(ids.scalar_subquery()))
                    .order_by(Case.id)
                ).all()
                for case, contact in case_rows:
                    record = case_record(case)
                    page.append(
                        (
                            case.id,
                            {
                                **base,
                                "case": record,
                                "record": record,
                                "contact": contact_record(contact) if contact else None,
                            },
                        )
                    )
            else:
                query = (
                    sa.select(Contact)
                    .where(Contact.org_id == run.org_id)
                    .order_by(Contact.id)
                    .limit(PAGE_SIZE)
                )
                if after is not None:
                    query = query.where(Contact.id > after)
                for contact in session.execute(query).scalars():
                    record = contact_record(contact)
                    page.append((contact.id, {**base, "contact": record, "record": record}))
            yield from page
            if len(page) < PAGE_SIZE:
                return
            after = page[-1][0]

    def _event_run_context(self, session: Session, run: FlowRun) -> dict[str, Any] | None:
        event = session.get(Event, run.event_id) if run.event_id is not None else None
        if event is None:
            return None
        if not (run.params or {}).get("delayed"):
            return event_context(event, session)
        # A delayed run looks at the record as it is now ("if it is still resolved").
        context = event_context(event, session)
        if event.record_type == "case" and event.record_id:
            case = session.execute(
                sa.select(Case).where(Case.org_id == event.org_id, Case.id == event.record_id)
            ).scalar_one_or_none()
            if case is None:
                return None
            contact = session.get(Contact, case.contact_id) if case.contact_id else None
            record = case_record(case)
            context.update(
                case=record,
                record=record,
                contact=contact_record(contact) if contact is not None else None,
            )
        elif event.record_type == "contact" and event.record_id:
            found = session.execute(
                sa.select(Contact).where(
                    Contact.org_id == event.org_id, Contact.id == event.record_id
                )
            ).scalar_one_or_none()
            if found is None:
                return None
            record = contact_record(found)
            context.update(contact=record, record=record)
        return context

    def _prepare_batch(self, run: FlowRun) -> None:
        """Read recipients from the cursor on, and write the next batch down (not sent yet)."""
        now = self._clock.now()
        with self._db.read() as session:
            definition = self._definition(run, session)
            flow = session.get(Flow, run.flow_id)
            config = (
                session.get(OutboundConfiguration, flow.configuration_id)
                if flow is not None
                else None
            )
            org = session.get(Organization, run.org_id)
            limit = min(
                BATCH_SIZE,
                (org.max_contacts_per_request if org else None)
                or self._settings.max_contacts_per_request,
            )
            channel_type = config.channel_type if config is not None else "sms"
            conditions = self._conditions(run, definition)
            items: list[dict[str, Any]] = []
            errors: list[dict[str, Any]] = []
            scanned = matched = rejected = 0
            cursor = run.cursor
            exhausted = True
            for key, context in self._pages(session, run, definition):
                if scanned >= SCAN_LIMIT:
                    # Few records match: checkpoint now (with a smaller batch, or none) rather
                    # than read the whole source in one go.
                    exhausted = False
                    break
                scanned += 1
                cursor = key
                if not evaluate_conditions(conditions, context, now):
                    continue
                matched += 1
                try:
                    item = render_recipient(definition.recipient, context, channel_type)
                    ContactItem.model_validate(item)
                except MappingError as exc:
                    rejected += 1
                    errors.append(
                        {"at": _label(key, context), "field": exc.field, "message": exc.message}
                    )
                    continue
                except ValidationError as exc:
                    rejected += 1
                    first = exc.errors()[0]
                    field = ".".join(str(p) for p in first.get("loc", ()))
                    errors.append(
                        {"at": _label(key, context), "field": field, "message": first["msg"]}
                    )
                    continue
                items.append(item)
                if len(items) >= limit:
                    exhausted = False
                    break
        if run.source == "event":
            cursor, exhausted = "event", True
        with self._db.transaction() as session:
            held = self._held(session, run.id)
            if held is None:
                return
            held.cursor = cursor
            held.exhausted = exhausted
            held.scanned += scanned
            held.matched += matched
            held.rejected += rejected
            held.updated_at = now
            _add_errors(held, errors)
            if items:
                held.batches += 1
                session.add(
                    FlowRunBatch(
                        run_id=run.id,
                        seq=held.batches,
                        status="pending",
                        contacts=items,
                        created_at=now,
                    )
                )

    def _send(self, run: FlowRun, batch: FlowRunBatch) -> bool:
        """Send one written-down batch; False when the run must stop for now."""
        with self._db.read() as session:
            flow = session.get(Flow, run.flow_id)
        if flow is None:
            self._finish(run.id, FlowRunStatus.FAILED, "the flow was deleted")
            return False
        contacts = [ContactItem.model_validate(c) for c in batch.contacts or []]
        request = SendIn(configuration_id=flow.configuration_id, contacts=contacts)
        now = self._clock.now()
        try:
            out = self._sending.send(
                run.org_id, request, idempotency_key=f"flow-run:{run.id}:{batch.seq}"
            )
        except RateLimitedError as exc:
            self._release(
                run.id,
                (
                    now + timedelta(seconds=max(1, exc.retry_after)),
                    f"hourly request quota reached; resuming in {exc.retry_after} s",
                ),
            )
            return False
        except ConflictError as exc:
            if exc.code == "idempotency_key_in_use":
                # An earlier attempt of this batch is still in flight (or died mid-request):
                # its key resolves once it completes or goes stale.
                stale = self._settings.idempotency_stale_seconds
                self._release(run.id, (now + timedelta(seconds=stale), exc.message))
                return False
            self._finish(run.id, FlowRunStatus.FAILED, exc.message)
            return False
        except RequestError as exc:
            self._finish(run.id, FlowRunStatus.FAILED, f"{exc.field or 'request'}: {exc.message}")
            return False
        errors = [
            {
                # The number as the send took it (or as the record gave it, when unusable).
                "at": r.to or contacts[r.index].tocontactid,
                "field": "tocontactid" if r.reason.startswith("invalid_number") else "contact",
                "message": r.reason,
            }
            for r in out.results
            if r.status == "rejected" and r.reason
        ]
        with self._db.transaction() as session:
            held = self._held(session, run.id)
            if held is None:
                # Canceled while sending: what was sent is recorded on the batch regardless.
                held_batch = session.get(FlowRunBatch, (run.id, batch.seq))
                if held_batch is not None:
                    held_batch.status, held_batch.request_id = "sent", out.request_id
                return False
            stored = session.get(FlowRunBatch, (run.id, batch.seq))
            if stored is None or stored.status != "pending":
                return True
            stored.status = "sent"
            stored.request_id = out.request_id
            stored.queued, stored.skipped, stored.rejected = out.queued, out.skipped, out.rejected
            stored.sent_at = self._clock.now()
            stored.contacts = None
            held.queued += out.queued
            held.skipped += out.skipped
            held.rejected += out.rejected
            held.failures = 0  # the limit counts failures in a row
            held.updated_at = stored.sent_at
            _add_errors(held, errors)
        return True


def _add_errors(run: FlowRun, errors: Sequence[dict[str, Any]]) -> None:
    if not errors:
        return
    run.error_count += len(errors)
    kept = list(run.errors or [])
    room = MAX_RECORDED_ERRORS - len(kept)
    if room > 0:
        run.errors = [*kept, *errors[:room]]


def _label(key: str, context: dict[str, Any]) -> str:
    if "row" in context:
        return f"row {int(key) + 1}"
    if key == "event":
        event = context.get("event") or {}
        return f"event {event.get('id')}"
    return key


def _row_ctx(row: dict[str, Any]) -> dict[str, Any]:
    return {"contact": contact_from_row(row)}


def event_context(event: Event, session: Session | None = None) -> dict[str, Any]:
    """What a flow sees of an event: ``event``, and the records its data carries."""
    data = dict(event.data or {})
    context: dict[str, Any] = {
        "event": {
            "id": event.id,
            "type": event.type,
            "record_type": event.record_type,
            "record_id": event.record_id,
            "source": event.source,
            "occurred_at": event.occurred_at.isoformat(),
        },
        **data,
    }
    if "record" not in context:
        context["record"] = data.get("case") or data.get("contact")
    record = context.get("record")
    if (
        session is not None
        and context.get("contact") is None
        and isinstance(record, dict)
        and isinstance(record.get("contact_id"), str)
    ):
        # Another system's record may name one of our contacts.
        contact = session.execute(
            sa.select(Contact).where(
                Contact.org_id == event.org_id, Contact.id == record["contact_id"]
            )
        ).scalar_one_or_none()
        if contact is not None:
            context["contact"] = contact_record(contact)
    return context
