"""Executing a flow run: its recipients become send requests, a batch at a time.

A run is claimed under a lease (:class:`~outbound.adapters.queue.flow_runs.FlowRunQueue`).
Then each step of :meth:`FlowRunner.execute` does one thing:

1. Renew the lease; stop if the run is no longer this worker's (canceled, or taken over).
2. **Resume**: if a batch of the run is written down but not sent (``pending``), send it. This
   is how a run interrupted at any point carries on: a batch is written *before* it is sent
   and sent with an idempotency key of its own (``flow-run:<run>:<batch>``), so a batch whose
   send died is sent again as written, and one whose send completed is answered from the key
   without a second message.
3. Else, if the source is exhausted, the run is completed.
4. Else, **prepare** the next batch: read records after the checkpoint (the cursor, see
   :mod:`outbound.services.flow_sources`), keep those that meet the conditions, render each
   as a contact item, and write the batch (at most 100 contacts) with the new checkpoint.

When the organisation's hourly quota is spent the run waits until it refills.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import (
    Flow,
    FlowRun,
    FlowRunBatch,
    Organization,
    OutboundConfiguration,
)
from outbound.adapters.queue.flow_runs import FlowRunQueue, add_errors
from outbound.clock import Clock
from outbound.config import DEFAULT_IDEMPOTENCY_STALE_SECONDS, DEFAULT_MAX_CONTACTS_PER_REQUEST
from outbound.domain.flow_runs import FlowRunStatus
from outbound.domain.flows import FlowDefinition, evaluate_conditions, render_recipient
from outbound.errors import ConflictError, MappingError, RateLimitedError, RequestError
from outbound.schemas import ContactItem, FlowRunOut, SendIn, SendOut
from outbound.services.flow_sources import (
    count_records,
    record_pages,
    run_conditions,
    run_definition,
)
from outbound.services.flows import run_out
from outbound.services.sending import SendService

__all__ = ["BATCH_SIZE", "SCAN_LIMIT", "FlowRunner", "ProgressCallback"]

log = logging.getLogger(__name__)

BATCH_SIZE = 100
# Records read at most between two checkpoints of a run.
SCAN_LIMIT = 5_000

ProgressCallback = Callable[[FlowRunOut], None]


class FlowRunner:
    """Works on claimed runs: prepares their batches and sends them through the send API's
    service, resuming a run from its last written batch."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        sending: SendService,
        queue: FlowRunQueue,
        *,
        max_contacts_per_request: int = DEFAULT_MAX_CONTACTS_PER_REQUEST,
        idempotency_stale_seconds: float = DEFAULT_IDEMPOTENCY_STALE_SECONDS,
    ) -> None:
        self._db = db
        self._clock = clock
        self._sending = sending
        self._queue = queue
        self._max_contacts_per_request = max_contacts_per_request
        self._idempotency_stale_seconds = idempotency_stale_seconds

    def claim(self, limit: int = 1, *, run_id: str | None = None) -> list[str]:
        """Take the lease of due runs (or of one given run, when it is due)."""
        return self._queue.claim_runs(self._clock.now(), limit, run_id=run_id)

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
                run = self._queue.renew_lease(run_id, self._clock.now())
                if run is None:
                    return  # canceled, or the lease was lost to another worker
                if progress is not None:
                    progress(run_out(run, self._db))
                if run.total is None:
                    self._count(run)
                pending = self._queue.pending_batch(run_id)
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
            self._record_failure(run_id, exc)
        finally:
            if progress is not None:
                with self._db.read() as session:
                    final = session.get(FlowRun, run_id)
                    if final is not None:
                        progress(run_out(final, self._db))

    # --- the run's state -----------------------------------------------------------------

    def _release(self, run_id: str, wait: tuple[datetime, str] | None) -> None:
        self._queue.release_run(run_id, self._clock.now(), wait)

    def _finish(self, run_id: str, status: FlowRunStatus, error: str | None = None) -> None:
        self._queue.finish_run(run_id, self._clock.now(), status, error)

    def _record_failure(self, run_id: str, exc: Exception) -> None:
        now = self._clock.now()
        try:
            self._queue.record_failure(run_id, now, f"{type(exc).__name__}: {exc}"[:500])
        except Exception:
            log.exception("could not record the failure of flow run %s", run_id)

    def _count(self, run: FlowRun) -> None:
        """Records in the run's source when it starts (for progress)."""
        with self._db.read() as session:
            total = count_records(session, run)
        with self._db.transaction() as session:
            held = self._queue.lock_if_leased(session, run.id)
            if held is not None and held.total is None:
                held.total = total
        run.total = total

    # --- preparing a batch -------------------------------------------------------------

    def _prepare_batch(self, run: FlowRun) -> None:
        """Read recipients from the cursor on, and write the next batch down (not sent yet)."""
        now = self._clock.now()
        batch = self._read_batch(run, now)
        with self._db.transaction() as session:
            held = self._queue.lock_if_leased(session, run.id)
            if held is None:
                return
            held.cursor = batch.cursor
            held.exhausted = batch.exhausted
            held.scanned += batch.scanned
            held.matched += batch.matched
            held.rejected += batch.rejected
            held.updated_at = now
            add_errors(held, batch.errors)
            if batch.items:
                held.batches += 1
                session.add(
                    FlowRunBatch(
                        run_id=run.id,
                        seq=held.batches,
                        status="pending",
                        contacts=batch.items,
                        created_at=now,
                    )
                )

    def _read_batch(self, run: FlowRun, now: datetime) -> _Batch:
        """The recipients after the run's cursor that meet its conditions, up to one send
        request's worth or :data:`SCAN_LIMIT` records read."""
        with self._db.read() as session:
            definition = run_definition(run, session)
            limit, channel_type = self._batch_size_and_channel(session, run)
            conditions = run_conditions(run, definition)
            batch = _Batch(cursor=run.cursor)
            for key, context in record_pages(session, run, definition):
                if batch.scanned >= SCAN_LIMIT:
                    # Few records match: checkpoint now (with a smaller batch, or none) rather
                    # than read the whole source in one go.
                    batch.exhausted = False
                    break
                batch.scanned += 1
                batch.cursor = key
                if not evaluate_conditions(conditions, context, now):
                    continue
                batch.matched += 1
                item = _recipient(definition, key, context, channel_type, batch.errors)
                if item is None:
                    batch.rejected += 1
                    continue
                batch.items.append(item)
                if len(batch.items) >= limit:
                    batch.exhausted = False
                    break
        if run.source == "event":
            batch.cursor, batch.exhausted = "event", True
        return batch

    def _batch_size_and_channel(self, session: Session, run: FlowRun) -> tuple[int, str]:
        """How many contacts a batch of the run holds, and the channel type they are for."""
        flow = session.get(Flow, run.flow_id)
        config = (
            session.get(OutboundConfiguration, flow.configuration_id) if flow is not None else None
        )
        org = session.get(Organization, run.org_id)
        limit = min(
            BATCH_SIZE,
            (org.max_contacts_per_request if org else None) or self._max_contacts_per_request,
        )
        return limit, config.channel_type if config is not None else "sms"

    # --- sending a batch -----------------------------------------------------------------

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
                run.org_id,
                request,
                idempotency_key=f"flow-run:{run.id}:{batch.seq}",
                flow_run_id=run.id,
            )
        except RequestError as exc:
            self._refused(run.id, exc, now)
            return False
        return self._record_sent(run.id, batch.seq, out, _rejections(out, contacts))

    def _refused(self, run_id: str, exc: RequestError, now: datetime) -> None:
        """The send refused the batch: the run waits (quota spent, batch in flight) or fails."""
        if isinstance(exc, RateLimitedError):
            wait = now + timedelta(seconds=max(1, exc.retry_after))
            reason = f"hourly request quota reached; resuming in {exc.retry_after} s"
            self._release(run_id, (wait, reason))
        elif isinstance(exc, ConflictError) and exc.code == "idempotency_key_in_use":
            # An earlier attempt of this batch is still in flight (or died mid-request): its
            # key resolves once it completes or goes stale.
            stale = self._idempotency_stale_seconds
            self._release(run_id, (now + timedelta(seconds=stale), exc.message))
        elif isinstance(exc, ConflictError):
            self._finish(run_id, FlowRunStatus.FAILED, exc.message)
        else:
            self._finish(run_id, FlowRunStatus.FAILED, f"{exc.field or 'request'}: {exc.message}")

    def _record_sent(
        self, run_id: str, seq: int, out: SendOut, errors: list[dict[str, Any]]
    ) -> bool:
        """Mark the batch sent and add its outcomes to the run; False if the run was
        canceled or taken over meanwhile."""
        with self._db.transaction() as session:
            held = self._queue.lock_if_leased(session, run_id)
            if held is None:
                # Canceled while sending: what was sent is recorded on the batch regardless.
                held_batch = session.get(FlowRunBatch, (run_id, seq))
                if held_batch is not None:
                    held_batch.status, held_batch.request_id = "sent", out.request_id
                return False
            stored = session.get(FlowRunBatch, (run_id, seq))
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
            add_errors(held, errors)
        return True


@dataclass
class _Batch:
    """What one read of a run's source found: the next batch and the checkpoint after it."""

    cursor: str | None
    exhausted: bool = True
    scanned: int = 0
    matched: int = 0
    rejected: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def _recipient(
    definition: FlowDefinition,
    key: str,
    context: dict[str, Any],
    channel_type: str,
    errors: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """The contact item a record becomes; ``None``, with the reason added to ``errors``, when
    the record cannot be one."""
    try:
        item = render_recipient(definition.recipient, context, channel_type)
        ContactItem.model_validate(item)
    except MappingError as exc:
        errors.append({"at": _label(key, context), "field": exc.field, "message": exc.message})
        return None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        errors.append({"at": _label(key, context), "field": where, "message": first["msg"]})
        return None
    return item


def _rejections(out: SendOut, contacts: list[ContactItem]) -> list[dict[str, Any]]:
    """The run errors of the contacts the send rejected."""
    return [
        {
            # The number as the send took it (or as the record gave it, when unusable).
            "at": r.to or contacts[r.index].tocontactid,
            "field": "tocontactid" if r.reason.startswith("invalid_number") else "contact",
            "message": r.reason,
        }
        for r in out.results
        if r.status == "rejected" and r.reason
    ]


def _label(key: str, context: dict[str, Any]) -> str:
    if "row" in context:
        return f"row {int(key) + 1}"
    if key == "event":
        event = context.get("event") or {}
        return f"event {event.get('id')}"
    return key
