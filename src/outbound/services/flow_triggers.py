"""What starts flow runs: events and schedules; and the purge of the events flows have seen.

Both are safe with several workers on one PostgreSQL database:

* **Events.** Unprocessed events are claimed (:class:`~outbound.adapters.queue.events.EventQueue`);
  each automatic flow whose event and conditions match gets one run, keyed ``event:<id>`` so
  an event starts at most one run per flow. A flow with a delay gets a run due that long after
  the event, which looks at the record again when it is due.
* **Schedules.** Flows whose ``next_fire_at`` has passed are claimed the same way; each due
  time starts one run keyed ``schedule:<time>`` (a unique key, so two workers cannot both fire
  it), and times missed while the service was down are caught up or skipped as the flow says.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Flow
from outbound.adapters.queue.events import EventQueue
from outbound.adapters.queue.flow_runs import FlowRunQueue, new_run
from outbound.clock import Clock
from outbound.config import DEFAULT_EVENT_RETENTION_DAYS
from outbound.domain.flows import (
    FlowDefinition,
    due_fire_times,
    evaluate_conditions,
    matches_event,
)
from outbound.services.flow_sources import event_context

__all__ = ["EVENTS_PER_TICK", "PURGE_CHUNK", "PURGE_INTERVAL", "FlowTriggers"]

log = logging.getLogger(__name__)

EVENTS_PER_TICK = 500
SCHEDULES_PER_TICK = 50
PURGE_INTERVAL = timedelta(hours=1)
PURGE_CHUNK = 5_000


class FlowTriggers:
    """Turns new events and due schedules into runs, and purges old events."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        events: EventQueue,
        runs: FlowRunQueue,
        *,
        event_retention_days: float = DEFAULT_EVENT_RETENTION_DAYS,
    ) -> None:
        self._db = db
        self._clock = clock
        self._events = events
        self._runs = runs
        self._event_retention = timedelta(days=event_retention_days)
        self._next_purge: datetime | None = None

    # --- events --------------------------------------------------------------------------

    def process_events(self, limit: int = EVENTS_PER_TICK) -> int:
        """Start a run for each automatic flow each new event matches; returns events seen."""
        now = self._clock.now()
        with self._db.transaction() as session:
            events = self._events.claim_events(session, limit)
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
                        new_run(
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
            self._runs.insert_runs(session, runs)
            self._events.mark_processed(session, events, now)
            return len(events)

    # --- schedules -----------------------------------------------------------------------

    def fire_schedules(self, limit: int = SCHEDULES_PER_TICK) -> int:
        """Start the runs of scheduled flows whose time has come; returns runs started."""
        now = self._clock.now()
        started = 0
        with self._db.transaction() as session:
            for flow in self._runs.claim_due_flows(session, now, limit):
                assert flow.next_fire_at is not None
                definition = FlowDefinition.from_dict(flow.definition)
                times, next_at = due_fire_times(definition.trigger, flow.next_fire_at, now)
                rows = [
                    new_run(
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
                started += self._runs.insert_runs(session, rows)
                if not times:
                    log.info("flow %s: missed schedule skipped (on_missed: skip)", flow.id)
                flow.next_fire_at = next_at
                if times:
                    flow.last_fired_at = now
        return started

    # --- purge ---------------------------------------------------------------------------

    def purge_events(self) -> int:
        """Delete the events every flow has seen, past their retention; returns how many."""
        horizon = self._clock.now() - self._event_retention
        return self._events.delete_processed(horizon, PURGE_CHUNK)

    def purge_if_due(self) -> None:
        """Purge old events at most once per :data:`PURGE_INTERVAL`."""
        now = self._clock.now()
        if self._next_purge is None or now >= self._next_purge:
            self._next_purge = now + PURGE_INTERVAL
            deleted = self.purge_events()
            if deleted:
                log.info("deleted %d events past their retention", deleted)
