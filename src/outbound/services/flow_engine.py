"""The flow engine: events and schedules become runs; runs become send requests.

Each worker process runs one engine as a loop beside its dispatcher. A round (:meth:`tick`)
does, in order: the hourly purge of old events when it is due, the new events, the due
schedules (:mod:`outbound.services.flow_triggers`), then one turn of one due run
(:mod:`outbound.services.flow_runs`, which reads recipients through
:mod:`outbound.services.flow_sources`). The statements that claim events and runs are in
:mod:`outbound.adapters.queue.events` and :mod:`outbound.adapters.queue.flow_runs`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import timedelta

from outbound.adapters.db.engine import Database
from outbound.adapters.queue.events import EventQueue
from outbound.adapters.queue.flow_runs import FlowRunQueue
from outbound.clock import Clock
from outbound.config import (
    DEFAULT_EVENT_RETENTION_DAYS,
    DEFAULT_IDEMPOTENCY_STALE_SECONDS,
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_CONTACTS_PER_REQUEST,
    DEFAULT_WORKER_POLL_INTERVAL,
)
from outbound.services.flow_runs import FlowRunner, ProgressCallback
from outbound.services.flow_triggers import EVENTS_PER_TICK, SCHEDULES_PER_TICK, FlowTriggers
from outbound.services.sending import SendService

__all__ = ["BATCHES_PER_TURN", "FlowEngine"]

log = logging.getLogger(__name__)

# Batches a run may send before letting other due runs (events, schedules) have a turn.
BATCHES_PER_TURN = 20
# The lease of a run is never shorter than this, whatever OUTBOUND_LEASE_SECONDS says.
MIN_LEASE_SECONDS = 5.0
MIN_IDLE_SECONDS = 0.5


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:flows"


class FlowEngine:
    """Turns events and schedules into runs, and runs into send requests.

    Idle, it looks again every ``poll_interval`` seconds (at least ``MIN_IDLE_SECONDS``); a
    run is leased for ``lease_seconds`` (at least ``MIN_LEASE_SECONDS``). The other keyword
    arguments go to its parts: :class:`~outbound.services.flow_triggers.FlowTriggers` and
    :class:`~outbound.services.flow_runs.FlowRunner`.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        sending: SendService,
        *,
        worker_id: str | None = None,
        batches_per_turn: int = BATCHES_PER_TURN,
        poll_interval: float = DEFAULT_WORKER_POLL_INTERVAL,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        event_retention_days: float = DEFAULT_EVENT_RETENTION_DAYS,
        max_contacts_per_request: int = DEFAULT_MAX_CONTACTS_PER_REQUEST,
        idempotency_stale_seconds: float = DEFAULT_IDEMPOTENCY_STALE_SECONDS,
    ) -> None:
        self.worker_id = worker_id or _worker_id()
        self._idle = max(poll_interval, MIN_IDLE_SECONDS)
        self._batches_per_turn = batches_per_turn
        lease = timedelta(seconds=max(lease_seconds, MIN_LEASE_SECONDS))
        runs = FlowRunQueue(db, self.worker_id, lease)
        self._runs = runs
        self._clock = clock
        self.triggers = FlowTriggers(
            db, clock, EventQueue(db), runs, event_retention_days=event_retention_days
        )
        self.runner = FlowRunner(
            db,
            clock,
            sending,
            runs,
            max_contacts_per_request=max_contacts_per_request,
            idempotency_stale_seconds=idempotency_stale_seconds,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; a batch in flight finishes first."""
        while not stop.is_set():
            try:
                busy = await asyncio.to_thread(self.tick)
            except Exception:
                log.exception("flow engine tick failed")
                busy = False
            if not busy:
                try:
                    await asyncio.wait_for(stop.wait(), self._idle)
                except TimeoutError:
                    pass

    def tick(self) -> bool:
        """One round: events, schedules, then one turn of one due run. True if it did work."""
        self.triggers.purge_if_due()
        if not self._runs.anything_due(self._clock.now()):
            return False
        events = self.triggers.process_events()
        fired = self.triggers.fire_schedules()
        claimed = self.runner.claim()
        for run_id in claimed:
            self.runner.execute(run_id, max_batches=self._batches_per_turn)
        return bool(events or fired or claimed)

    def run_until_idle(self, max_ticks: int = 10_000) -> None:
        """Tick until nothing is due (tests, the demo, the command line)."""
        for _ in range(max_ticks):
            if not self.tick():
                return

    # --- one step at a time (the command line, tests) -------------------------------------

    def process_events(self, limit: int = EVENTS_PER_TICK) -> int:
        """Start a run for each automatic flow each new event matches; returns events seen."""
        return self.triggers.process_events(limit)

    def fire_schedules(self, limit: int = SCHEDULES_PER_TICK) -> int:
        """Start the runs of scheduled flows whose time has come; returns runs started."""
        return self.triggers.fire_schedules(limit)

    def purge_events(self) -> int:
        """Delete the events every flow has seen, past their retention; returns how many."""
        return self.triggers.purge_events()

    def claim(self, limit: int = 1, *, run_id: str | None = None) -> list[str]:
        """Take the lease of due runs (or of one given run, when it is due)."""
        return self.runner.claim(limit, run_id=run_id)

    def execute(
        self,
        run_id: str,
        *,
        max_batches: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Work on a claimed run: until it ends, waits, or has sent ``max_batches``."""
        self.runner.execute(run_id, max_batches=max_batches, progress=progress)
