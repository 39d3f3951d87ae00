"""Flows: definitions applied from documents, and the runs that execute them.

A flow is saved from a YAML or JSON document (validated with errors that name the field and
line), keyed by its name within the organisation: applying a document again updates the flow.
Runs are created here (on demand, with an optional uploaded list) and executed by the
:class:`~outbound.services.flow_engine.FlowEngine` (claimed and resumed by
:mod:`outbound.services.flow_runs`).
"""

from __future__ import annotations

import builtins
import csv
import logging
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import (
    Flow,
    FlowRun,
    FlowRunBatch,
    FlowRunRow,
    OutboundConfiguration,
)
from outbound.adapters.queue.flow_runs import ACTIVE_RUN_STATUSES
from outbound.clock import Clock
from outbound.domain.flow_runs import FlowRunStatus
from outbound.domain.flows import (
    FieldError,
    FlowDefinition,
    FlowDefinitionError,
    next_fire_after,
    parse_flow_document,
)
from outbound.errors import ConflictError, InvalidRequestError, NotFoundError
from outbound.schemas import FlowOut, FlowRunError, FlowRunIn, FlowRunOut, Page
from outbound.services.pagination import fetch_page
from outbound.services.public_ids import IdKind, public_id
from outbound.texts import N_

__all__ = [
    "MAX_UPLOAD_ROWS",
    "FlowService",
    "flow_out",
    "resolve_configuration",
    "run_out",
]

log = logging.getLogger(__name__)

MAX_UPLOAD_ROWS = 5_000_000
MAX_CSV_COLUMNS = 200
_UPLOAD_CHUNK = 1_000
# A run whose list is still being uploaded is not due until the upload ends.
_UPLOADING = "uploading the list"


def flow_out(flow: Flow) -> FlowOut:
    return FlowOut(
        id=flow.id,
        name=flow.name,
        description=flow.description,
        trigger_type=flow.trigger_type,
        event_type=flow.event_type,
        configuration_id=flow.configuration_id,
        enabled=flow.enabled,
        version=flow.version,
        next_fire_at=flow.next_fire_at,
        last_fired_at=flow.last_fired_at,
        definition=flow.definition,
        source=flow.source,
        created_at=flow.created_at,
        updated_at=flow.updated_at,
    )


def run_out(run: FlowRun, db: Database) -> FlowRunOut:
    progress: float | None = None
    if run.status == FlowRunStatus.COMPLETED.value:
        progress = 1.0
    elif run.total:
        progress = min(1.0, run.scanned / run.total)
    elif run.total == 0:
        progress = 1.0 if run.exhausted else 0.0
    return FlowRunOut(
        id=run.id,
        flow_id=run.flow_id,
        trigger=run.trigger,
        source=run.source,
        status=FlowRunStatus(run.status),
        wait_reason=run.wait_reason,
        due_at=run.due_at,
        event_id=(
            public_id(db, run.org_id, IdKind.EVENT, run.event_id)
            if run.event_id is not None
            else None
        ),
        scheduled_for=(run.params or {}).get("scheduled_for"),
        total=run.total,
        scanned=run.scanned,
        matched=run.matched,
        queued=run.queued,
        skipped=run.skipped,
        rejected=run.rejected,
        batches=run.batches,
        error_count=run.error_count,
        errors=[FlowRunError.model_validate(e) for e in (run.errors or [])],
        progress=progress,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


def resolve_configuration(
    session: Session, org_id: str, reference: str, *, line: int | None = None
) -> OutboundConfiguration:
    """A configuration of the organisation named by its id or, failing that, its name."""
    config = session.execute(
        sa.select(OutboundConfiguration).where(
            OutboundConfiguration.org_id == org_id, OutboundConfiguration.id == reference
        )
    ).scalar_one_or_none()
    if config is not None:
        return config
    named = (
        session.execute(
            sa.select(OutboundConfiguration).where(
                OutboundConfiguration.org_id == org_id, OutboundConfiguration.name == reference
            )
        )
        .scalars()
        .all()
    )
    if len(named) == 1:
        return named[0]
    message = (
        N_("several outbound configurations are named %(name)r; use its id", name=reference)
        if named
        else N_("no outbound configuration has the id or name %(reference)r", reference=reference)
    )
    raise FlowDefinitionError([FieldError("configuration", line, message)])


class FlowService:
    """Create, read, enable, disable and delete flows; start, read and cancel runs."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    # --- flows ---------------------------------------------------------------------------

    def validate(self, org_id: str, text: str) -> FlowDefinition:
        """Parse a document and check its references, without saving anything."""
        definition = parse_flow_document(text)
        with self._db.read() as session:
            resolve_configuration(session, org_id, definition.configuration, line=None)
        return definition

    def apply(self, org_id: str, text: str, *, source_format: str = "yaml") -> tuple[FlowOut, bool]:
        """Save a flow document; returns the flow and whether it was created (vs updated)."""
        definition = parse_flow_document(text)
        now = self._clock.now()
        trigger = definition.trigger
        if trigger.type == "scheduled" and trigger.at is not None and trigger.at <= now:
            raise FlowDefinitionError(
                [
                    FieldError(
                        "trigger.at",
                        None,
                        N_("%(at)s is in the past", at=trigger.at.isoformat()),
                    )
                ]
            )
        with self._db.transaction() as session:
            config = resolve_configuration(session, org_id, definition.configuration)
            flow = session.execute(
                sa.select(Flow).where(Flow.org_id == org_id, Flow.name == definition.name)
            ).scalar_one_or_none()
            stored = definition.to_dict()
            created = flow is None
            if flow is None:
                flow = Flow(
                    org_id=org_id,
                    name=definition.name,
                    version=1,
                    created_at=now,
                    last_fired_at=None,
                    next_fire_at=None,
                )
                session.add(flow)
                schedule_changed = True
            else:
                old_trigger = (flow.definition or {}).get("trigger")
                schedule_changed = old_trigger != stored.get("trigger") or (
                    definition.enabled and not flow.enabled
                )
                flow.version += 1
            flow.description = definition.description
            flow.trigger_type = trigger.type
            flow.event_type = trigger.event
            flow.configuration_id = config.id
            flow.definition = stored
            flow.source = text
            flow.source_format = source_format
            flow.enabled = definition.enabled
            flow.updated_at = now
            if trigger.type != "scheduled":
                flow.next_fire_at = None
            elif schedule_changed or flow.next_fire_at is None:
                # The first due time from now on; earlier times of a new schedule never fire.
                flow.next_fire_at = next_fire_after(trigger, now - timedelta(microseconds=1))
            session.flush()
            return flow_out(flow), created

    def _load(self, session: Session, org_id: str, reference: str) -> Flow:
        flow = session.execute(
            sa.select(Flow).where(
                Flow.org_id == org_id, sa.or_(Flow.id == reference, Flow.name == reference)
            )
        ).scalar_one_or_none()
        if flow is None:
            raise NotFoundError(N_("flow not found"), field="flow")
        return flow

    def get(self, org_id: str, reference: str) -> FlowOut:
        with self._db.read() as session:
            return flow_out(self._load(session, org_id, reference))

    def list(
        self, org_id: str, cursor: str | None, limit: int, *, trigger_type: str | None = None
    ) -> Page[FlowOut]:
        query = sa.select(Flow).where(Flow.org_id == org_id)
        if trigger_type is not None:
            query = query.where(Flow.trigger_type == trigger_type)
        return fetch_page(self._db, query, Flow.created_at, Flow.id, cursor, limit, flow_out)

    def set_enabled(self, org_id: str, reference: str, enabled: bool) -> FlowOut:
        now = self._clock.now()
        with self._db.transaction() as session:
            flow = self._load(session, org_id, reference)
            if flow.enabled != enabled:
                flow.enabled = enabled
                flow.updated_at = now
                if enabled and flow.trigger_type == "scheduled":
                    # Times that passed while the flow was disabled are not owed.
                    definition = FlowDefinition.from_dict(flow.definition)
                    flow.next_fire_at = next_fire_after(
                        definition.trigger, now - timedelta(microseconds=1)
                    )
            return flow_out(flow)

    def delete(self, org_id: str, reference: str) -> None:
        with self._db.transaction() as session:
            flow = self._load(session, org_id, reference)
            active = session.execute(
                sa.select(sa.func.count())
                .select_from(FlowRun)
                .where(FlowRun.flow_id == flow.id, FlowRun.status.in_(ACTIVE_RUN_STATUSES))
            ).scalar_one()
            if active:
                raise ConflictError(
                    N_(
                        "this flow has %(count)s run(s) in progress; cancel them first",
                        count=active,
                    ),
                    field="flow",
                    code="flow_has_active_runs",
                )
            run_ids = sa.select(FlowRun.id).where(FlowRun.flow_id == flow.id)
            session.execute(sa.delete(FlowRunRow).where(FlowRunRow.run_id.in_(run_ids)))
            session.execute(sa.delete(FlowRunBatch).where(FlowRunBatch.run_id.in_(run_ids)))
            session.execute(sa.delete(FlowRun).where(FlowRun.flow_id == flow.id))
            session.delete(flow)

    # --- runs ----------------------------------------------------------------------------

    def start_run(
        self,
        org_id: str,
        reference: str,
        data: FlowRunIn | None = None,
        *,
        csv_lines: Iterable[str] | None = None,
    ) -> FlowRunOut:
        """Start a run now: over the flow's records (with extra conditions) or an uploaded list.

        An uploaded list is streamed into the database in chunks, never held in memory; the
        run becomes due only once the whole list is stored.
        """
        data = data or FlowRunIn()
        now = self._clock.now()
        with self._db.read() as session:
            flow = self._load(session, org_id, reference)
        definition = FlowDefinition.from_dict(flow.definition)
        if flow.trigger_type == "automatic":
            raise ConflictError(
                N_(
                    "automatic flows run when their event happens; only instant and scheduled "
                    "flows can be run on demand"
                ),
                field="flow",
                code="flow_not_runnable",
            )
        if not flow.enabled:
            raise ConflictError(N_("this flow is disabled"), field="flow", code="flow_disabled")
        source = definition.source_records or "contacts"
        if source == "csv" and csv_lines is None:
            raise InvalidRequestError(
                N_(
                    "this flow sends to an uploaded list: send the CSV as the request body "
                    "(Content-Type: text/csv)"
                ),
                field="body",
                code="csv_required",
            )
        if source != "csv" and csv_lines is not None:
            raise InvalidRequestError(
                N_(
                    "this flow reads its recipients from %(source)s; it takes no uploaded list",
                    source=source,
                ),
                field="body",
            )
        for index, condition in enumerate(data.conditions):
            if condition.op not in {"exists", "missing"} and condition.value is None:
                raise InvalidRequestError(
                    N_("a value is required"), field=f"conditions[{index}].value"
                )
        extra = [c.model_dump() for c in data.conditions]
        run = FlowRun(
            org_id=org_id,
            flow_id=flow.id,
            trigger="manual",
            fire_key=None,
            event_id=None,
            source=source,
            params={
                "conditions": extra,
                "values": data.params,
                "flow_version": flow.version,
                # The run keeps the definition it started with, whatever happens to the flow.
                "definition": flow.definition,
            },
            status=FlowRunStatus.PENDING.value,
            wait_reason=_UPLOADING if csv_lines is not None else None,
            due_at=now + timedelta(days=3650) if csv_lines is not None else now,
            cursor=None,
            exhausted=False,
            total=None,
            scanned=0,
            matched=0,
            queued=0,
            skipped=0,
            rejected=0,
            batches=0,
            error_count=0,
            errors=[],
            failures=0,
            created_at=now,
            updated_at=now,
        )
        with self._db.transaction() as session:
            session.add(run)
        if csv_lines is None:
            return run_out(run, self._db)
        try:
            total = self._store_rows(run.id, csv_lines)
        except BaseException:
            self._discard(run.id)
            raise
        with self._db.transaction() as session:
            stored = session.get(FlowRun, run.id)
            assert stored is not None
            stored.total = total
            stored.wait_reason = None
            stored.due_at = self._clock.now()
            stored.updated_at = stored.due_at
            return run_out(stored, self._db)

    def _store_rows(self, run_id: str, lines: Iterable[str]) -> int:
        reader = csv.reader(_strip_bom(lines))
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise InvalidRequestError(
                N_("the list is empty: a header row is required"), field="body"
            )
        names = [h.strip() for h in header]
        if len(names) > MAX_CSV_COLUMNS:
            raise InvalidRequestError(
                N_("at most %(limit)s columns", limit=MAX_CSV_COLUMNS), field="body"
            )
        duplicates = sorted({n for n in names if n and names.count(n) > 1})
        if duplicates:
            raise InvalidRequestError(
                N_(
                    "duplicate column(s) in the header: %(columns)s",
                    columns=", ".join(duplicates),
                ),
                field="body",
            )
        chunk: builtins.list[dict[str, Any]] = []
        count = 0
        try:
            for values in reader:
                if not any(v.strip() for v in values):
                    continue
                count += 1
                if count > MAX_UPLOAD_ROWS:
                    raise InvalidRequestError(
                        N_("at most %(limit)s rows per list", limit=MAX_UPLOAD_ROWS), field="body"
                    )
                row = {name: value for name, value in zip(names, values, strict=False) if name}
                chunk.append({"run_id": run_id, "seq": count, "data": row})
                if len(chunk) >= _UPLOAD_CHUNK:
                    self._insert_rows(chunk)
                    chunk = []
        except csv.Error as exc:
            raise InvalidRequestError(
                N_(
                    "unreadable CSV near row %(row)s: %(error)s",
                    row=count + 2,
                    error=str(exc),
                ),
                field="body",
            ) from exc
        except UnicodeDecodeError as exc:
            raise InvalidRequestError(N_("the list must be UTF-8 text"), field="body") from exc
        self._insert_rows(chunk)
        return count

    def _insert_rows(self, rows: builtins.list[dict[str, Any]]) -> None:
        if rows:
            with self._db.transaction() as session:
                session.execute(sa.insert(FlowRunRow), rows)

    def _discard(self, run_id: str) -> None:
        with self._db.transaction() as session:
            session.execute(sa.delete(FlowRunRow).where(FlowRunRow.run_id == run_id))
            session.execute(sa.delete(FlowRun).where(FlowRun.id == run_id))

    def get_run(self, org_id: str, run_id: str) -> FlowRunOut:
        with self._db.read() as session:
            run = session.execute(
                sa.select(FlowRun).where(FlowRun.org_id == org_id, FlowRun.id == run_id)
            ).scalar_one_or_none()
            if run is None:
                raise NotFoundError(N_("flow run not found"), field="run_id")
            return run_out(run, self._db)

    def list_runs(
        self, org_id: str, reference: str, cursor: str | None, limit: int
    ) -> Page[FlowRunOut]:
        with self._db.read() as session:
            flow = self._load(session, org_id, reference)
        query = sa.select(FlowRun).where(FlowRun.org_id == org_id, FlowRun.flow_id == flow.id)
        return fetch_page(
            self._db,
            query,
            FlowRun.created_at,
            FlowRun.id,
            cursor,
            limit,
            lambda run: run_out(run, self._db),
        )

    def cancel_run(self, org_id: str, run_id: str) -> FlowRunOut:
        """Stop a run: batches already sent stay sent; nothing more is sent."""
        now = self._clock.now()
        with self._db.transaction() as session:
            run = session.execute(
                sa.select(FlowRun).where(FlowRun.org_id == org_id, FlowRun.id == run_id)
            ).scalar_one_or_none()
            if run is None:
                raise NotFoundError(N_("flow run not found"), field="run_id")
            if run.status not in ACTIVE_RUN_STATUSES:
                raise ConflictError(
                    N_("this run is already %(status)s", status=run.status),
                    field="run_id",
                    code="run_finished",
                )
            run.status = FlowRunStatus.CANCELED.value
            run.finished_at = now
            run.updated_at = now
            run.lease_owner = None
            run.lease_until = None
            run.wait_reason = None
            session.execute(sa.delete(FlowRunRow).where(FlowRunRow.run_id == run.id))
            return run_out(run, self._db)


def _strip_bom(lines: Iterable[str]) -> Iterator[str]:
    first = True
    for line in lines:
        if first:
            line = line.removeprefix("\ufeff")
            first = False
        yield line
