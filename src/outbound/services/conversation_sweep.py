"""The routing sweep: what time alone changes in conversations, then an assignment pass.

Run every few seconds by every worker (each step is a compare-and-set, so several workers
sweeping at once change each conversation once):

1. offers past their deadline are withdrawn (counted as a decline of that agent);
2. conversations whose agent has not answered within the queue's ``reassign_after_seconds`` go
   back to their queue, to be offered to someone else first;
3. wrap-ups past their hold close, and snoozed conversations whose time has come become active;
4. conversations waiting longer than their queue's overflow wait are sent on;
5. conversations idle too long close by themselves (30 days; 1 day in wrap-up);
6. every queue with conversations waiting gets an assignment pass;
7. live updates older than the stream's retention are deleted, and queues whose waiting count
   changed get a ``queue`` live update.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database, affected
from outbound.adapters.db.models import Conversation, Queue, StreamEvent, User
from outbound.clock import Clock
from outbound.services.assignment import AssignmentService
from outbound.services.conversation_log import compare_and_set, publish, record_change
from outbound.services.intake import ConversationIntake

__all__ = ["ConversationSweep", "SweepPolicy", "SweepResult"]

log = logging.getLogger(__name__)

STEP_LIMIT = 500


@dataclass(frozen=True)
class SweepPolicy:
    """How long things may last before the sweep acts (the settings give these)."""

    idle_close: timedelta = timedelta(days=30)
    idle_close_wrap_up: timedelta = timedelta(days=1)
    stream_retention: timedelta = timedelta(hours=1)


@dataclass
class SweepResult:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, count: int) -> None:
        if count:
            self.counts[name] = self.counts.get(name, 0) + count


class ConversationSweep:
    """One sweep at a time per process; safe to run in several processes."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        assignment: AssignmentService,
        intake: ConversationIntake,
        policy: SweepPolicy,
    ) -> None:
        self._db = db
        self._clock = clock
        self._assignment = assignment
        self._intake = intake
        self._policy = policy
        self._queue_lengths: dict[str, int] = {}

    def sweep(self) -> SweepResult:
        result = SweepResult()
        now = self._clock.now()
        result.add("offers_expired", self._expire_offers(now))
        result.add("reassigned", self._reassign_unanswered(now))
        result.add("wrap_ups_closed", self._end_wrap_ups(now))
        result.add("woken", self._wake_snoozed(now))
        result.add("overflowed", self._overflow_waits(now))
        result.add("auto_closed", self._auto_close(now))
        passed = self._assignment.assign_waiting()
        result.add("assigned", passed.assigned)
        result.add("offered", passed.offered)
        result.add("stream_purged", self._purge_stream(now))
        result.add("queue_updates", self._publish_queue_lengths(now))
        return result

    async def run(self, stop: asyncio.Event, interval: float) -> None:
        """Sweep every ``interval`` seconds until ``stop`` is set; errors are logged, not fatal."""
        while not stop.is_set():
            try:
                result = await asyncio.to_thread(self.sweep)
                if result.counts:
                    log.info("routing sweep: %s", result.counts)
            except Exception:
                log.exception("routing sweep failed; trying again in %.0f s", interval)
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass

    # --- steps ----------------------------------------------------------------------------

    def _due(self, where: Any) -> list[Conversation]:
        with self._db.read() as session:
            rows = list(
                session.execute(
                    sa.select(Conversation).where(where).order_by(Conversation.id).limit(STEP_LIMIT)
                ).scalars()
            )
            for row in rows:
                session.expunge(row)
            return rows

    def _change(
        self,
        conversation: Conversation,
        values: dict[str, Any],
        now: datetime,
        **change: Any,
    ) -> bool:
        """Compare-and-set one conversation and record the change; False if it moved on."""
        with self._db.transaction() as session:
            done = compare_and_set(session, conversation, values, now)
            if not done:
                return False
            record_change(session, conversation, now=now, **change)
            self._released(session, change, now)
        return True

    @staticmethod
    def _released(session: Session, change: dict[str, Any], now: datetime) -> None:
        user_id = change.get("from_user_id")
        if user_id and change.get("from_status") in {"active", "wrap_up"}:
            session.execute(sa.update(User).where(User.id == user_id).values(last_released_at=now))

    def _expire_offers(self, now: datetime) -> int:
        count = 0
        for c in self._due(
            sa.and_(
                Conversation.status == "open",
                Conversation.offered_to.is_not(None),
                Conversation.offer_expires_at <= now,
            )
        ):
            count += self._change(
                c,
                {"offered_to": None, "offer_expires_at": None},
                now,
                kind="offer_expired",
                from_status="open",
                to_status="open",
                from_user_id=c.offered_to,
                reason="not accepted in time",
            )
        return count

    def _reassign_unanswered(self, now: datetime) -> int:
        count = 0
        with self._db.read() as session:
            limits = {
                q.id: q.reassign_after_seconds
                for q in session.execute(
                    sa.select(Queue).where(Queue.reassign_after_seconds.is_not(None))
                ).scalars()
            }
        if not limits:
            return 0
        shortest = min(v for v in limits.values() if v is not None)
        for c in self._due(
            sa.and_(
                Conversation.status == "active",
                Conversation.waiting_since.is_not(None),
                Conversation.assigned_at <= now - timedelta(seconds=shortest),
                Conversation.waiting_since <= now - timedelta(seconds=shortest),
                Conversation.queue_id.in_(list(limits)),
            )
        ):
            limit = limits.get(c.queue_id or "")
            if limit is None or c.assigned_at is None or c.waiting_since is None:
                continue
            started = max(c.assigned_at, c.waiting_since)
            if started > now - timedelta(seconds=limit):
                continue
            count += self._change(
                c,
                {"status": "open", "assigned_to": None, "assigned_at": None},
                now,
                kind="reassigned",
                from_status="active",
                to_status="open",
                from_user_id=c.assigned_to,
                reason=f"no answer within {limit} s",
            )
        return count

    def _end_wrap_ups(self, now: datetime) -> int:
        count = 0
        for c in self._due(
            sa.and_(Conversation.status == "wrap_up", Conversation.wrap_up_until <= now)
        ):
            count += self._change(
                c,
                {"status": "closed", "closed_at": now, "waiting_since": None},
                now,
                kind="closed",
                from_status="wrap_up",
                to_status="closed",
                from_user_id=c.assigned_to,
                reason="wrap-up time over",
            )
        return count

    def _wake_snoozed(self, now: datetime) -> int:
        count = 0
        for c in self._due(
            sa.and_(Conversation.status == "waiting", Conversation.snoozed_until <= now)
        ):
            count += self._change(
                c,
                {"status": "active", "snoozed_until": None},
                now,
                kind="woke",
                from_status="waiting",
                to_status="active",
                to_user_id=c.assigned_to,
            )
        return count

    def _overflow_waits(self, now: datetime) -> int:
        with self._db.read() as session:
            queues = [
                q
                for q in session.execute(
                    sa.select(Queue).where(Queue.overflow.is_not(None))
                ).scalars()
                if (q.overflow or {}).get("max_wait_seconds")
            ]
            for q in queues:
                session.expunge(q)
        count = 0
        for queue in queues:
            wait = timedelta(seconds=int((queue.overflow or {})["max_wait_seconds"]))
            for c in self._due(
                sa.and_(
                    Conversation.queue_id == queue.id,
                    Conversation.status == "open",
                    Conversation.overflowed_at.is_(None),
                    Conversation.waiting_since <= now - wait,
                )
            ):
                with self._db.transaction() as session:
                    query = sa.select(Conversation).where(
                        Conversation.id == c.id, Conversation.version == c.version
                    )
                    query = self._db.for_update(query)
                    row = session.execute(query).scalar_one_or_none()
                    if row is None or row.status != "open":
                        continue
                    self._intake.overflow(
                        session,
                        row,
                        queue,
                        f"waited longer than {int(wait.total_seconds())} s",
                        now,
                    )
                    count += 1
        return count

    def _auto_close(self, now: datetime) -> int:
        count = 0
        idle = now - self._policy.idle_close
        idle_wrap = now - self._policy.idle_close_wrap_up
        for c in self._due(
            sa.or_(
                sa.and_(
                    Conversation.status.in_(("open", "active", "waiting")),
                    Conversation.last_message_at <= idle,
                    sa.or_(Conversation.snoozed_until.is_(None), Conversation.snoozed_until <= now),
                ),
                sa.and_(Conversation.status == "wrap_up", Conversation.updated_at <= idle_wrap),
            )
        ):
            count += self._change(
                c,
                {
                    "status": "closed",
                    "closed_at": now,
                    "offered_to": None,
                    "offer_expires_at": None,
                    "waiting_since": None,
                },
                now,
                kind="auto_closed",
                from_status=c.status,
                to_status="closed",
                from_user_id=c.assigned_to,
                reason="idle",
            )
        return count

    def _publish_queue_lengths(self, now: datetime) -> int:
        """A ``queue`` live update for each queue whose waiting count changed since the last
        sweep of this process (consoles show queue lengths without polling)."""
        with self._db.read() as session:
            rows = session.execute(
                sa.select(Queue.id, Queue.org_id, sa.func.count(Conversation.id))
                .join(
                    Conversation,
                    sa.and_(Conversation.queue_id == Queue.id, Conversation.status == "open"),
                    isouter=True,
                )
                .group_by(Queue.id, Queue.org_id)
            ).all()
        changed = [
            (queue_id, org_id, waiting)
            for queue_id, org_id, waiting in rows
            if self._queue_lengths.get(queue_id) != waiting
        ]
        if changed:
            with self._db.transaction() as session:
                for queue_id, org_id, waiting in changed:
                    publish(
                        session, org_id, "queue", {"queue_id": queue_id, "waiting": waiting}, now
                    )
        self._queue_lengths = {queue_id: waiting for queue_id, _, waiting in rows}
        return len(changed)

    def _purge_stream(self, now: datetime) -> int:
        with self._db.transaction() as session:
            return affected(
                session.execute(
                    sa.delete(StreamEvent).where(
                        StreamEvent.created_at < now - self._policy.stream_retention
                    )
                )
            )
