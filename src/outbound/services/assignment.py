"""Assignment: waiting conversations go to the agents of their queue, within capacity.

One pass over a queue reads its waiting conversations (highest priority, then longest waiting
first) and its members, lets :func:`outbound.domain.assignment.choose_agent` pick, and then
assigns each conversation in a short transaction of its own that

1. locks the agent's row (PostgreSQL ``FOR UPDATE``; on SQLite the single writer does it),
2. reads the agent's presence and used capacity again, under that lock, and
3. compare-and-sets the conversation (``WHERE id = … AND version = … AND status = 'open'``).

So with any number of API and worker processes a conversation is never assigned twice (the
compare-and-set), never to an agent offline or out of the queue, and never over capacity (the
agent lock serialises every assignment to one agent). An agent found unable to take more
under the lock (filled by another process, gone offline, out of the queue) is left out for the
rest of the pass, which tries the next one; a conversation changed meanwhile is left to the
next pass. Passes run when a conversation opens, when an agent becomes available or
frees capacity, when a member joins a queue, and on the routing sweep.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import (
    Conversation,
    ConversationEvent,
    Queue,
    QueueMember,
    User,
)
from outbound.clock import Clock
from outbound.domain import assignment as rules
from outbound.domain.presence import is_online
from outbound.services.conversation_log import compare_and_set, record_change

__all__ = ["AssignmentService", "PassResult", "used_capacity"]

log = logging.getLogger(__name__)

PASS_LIMIT = 100
ASSIGNED = "assigned"
OFFERED = "offered"
LOST_AGENT = "lost_agent"
LOST_CONVERSATION = "lost_conversation"
CAPACITY_STATUSES = ("active", "wrap_up")


@dataclass(frozen=True)
class PassResult:
    """What one assignment pass did."""

    assigned: int = 0
    offered: int = 0
    skipped: int = 0


def used_capacity(session: Session, user_ids: Iterable[str], now: datetime) -> dict[str, int]:
    """Units each agent uses now: active conversations, wrap-ups still held, open offers."""
    ids = list(set(user_ids))
    used: dict[str, int] = defaultdict(int)
    if not ids:
        return used
    held = sa.or_(
        Conversation.status == "active",
        sa.and_(Conversation.status == "wrap_up", Conversation.wrap_up_until > now),
    )
    for user_id, count in session.execute(
        sa.select(Conversation.assigned_to, sa.func.count())
        .where(Conversation.assigned_to.in_(ids), held)
        .group_by(Conversation.assigned_to)
    ):
        if user_id is not None:
            used[user_id] += count
    for user_id, count in session.execute(
        sa.select(Conversation.offered_to, sa.func.count())
        .where(Conversation.offered_to.in_(ids), Conversation.status == "open")
        .group_by(Conversation.offered_to)
    ):
        if user_id is not None:
            used[user_id] += count
    return used


class AssignmentService:
    """Runs assignment passes over queues."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        presence_timeout: timedelta,
        max_declines: int = rules.DEFAULT_MAX_DECLINES,
    ) -> None:
        self._db = db
        self._clock = clock
        self._presence_timeout = presence_timeout
        self._max_declines = max_declines

    def workload(self, org_id: str) -> dict[str, int]:
        """Units each user of the organisation uses now (see :func:`used_capacity`)."""
        with self._db.read() as session:
            ids = session.execute(sa.select(User.id).where(User.org_id == org_id)).scalars()
            return dict(used_capacity(session, ids, self._clock.now()))

    def longest_waits(self, org_id: str) -> dict[str, datetime]:
        """Per queue, since when its longest-waiting conversation has waited."""
        with self._db.read() as session:
            rows = session.execute(
                sa.select(Conversation.queue_id, sa.func.min(Conversation.waiting_since))
                .where(
                    Conversation.org_id == org_id,
                    Conversation.status == "open",
                    Conversation.queue_id.is_not(None),
                )
                .group_by(Conversation.queue_id)
            ).all()
        return {
            queue_id: since
            for queue_id, since in rows
            if queue_id is not None and since is not None
        }

    def assign_org(self, org_id: str) -> PassResult:
        """One pass over every queue of an organisation that has conversations waiting."""
        with self._db.read() as session:
            queue_ids = list(
                session.execute(
                    sa.select(Queue.id)
                    .where(Queue.org_id == org_id)
                    .order_by(Queue.priority.desc(), Queue.name)
                ).scalars()
            )
        return self._sum(self.assign_queue(queue_id) for queue_id in queue_ids)

    def assign_for_agent(self, user_id: str) -> PassResult:
        """Passes over the queues an agent belongs to (they became available or freed room)."""
        with self._db.read() as session:
            queue_ids = list(
                session.execute(
                    sa.select(QueueMember.queue_id)
                    .join(Queue, Queue.id == QueueMember.queue_id)
                    .where(QueueMember.user_id == user_id)
                    .order_by(Queue.priority.desc(), Queue.name)
                ).scalars()
            )
        return self._sum(self.assign_queue(queue_id) for queue_id in queue_ids)

    def assign_waiting(self) -> PassResult:
        """One pass over every queue, of every organisation, with conversations waiting."""
        with self._db.read() as session:
            queue_ids = list(
                session.execute(
                    sa.select(Queue.id)
                    .join(Conversation, Conversation.queue_id == Queue.id)
                    .where(Conversation.status == "open", Conversation.offered_to.is_(None))
                    .group_by(Queue.id, Queue.priority)
                    .order_by(Queue.priority.desc())
                ).scalars()
            )
        return self._sum(self.assign_queue(queue_id) for queue_id in queue_ids)

    def assign_queue(self, queue_id: str) -> PassResult:
        now = self._clock.now()
        with self._db.read() as session:
            queue = session.get(Queue, queue_id)
            if queue is None or queue.assignment_method == "manual":
                return PassResult()
            waiting = list(
                session.execute(
                    sa.select(Conversation)
                    .where(
                        Conversation.queue_id == queue_id,
                        Conversation.status == "open",
                        Conversation.offered_to.is_(None),
                    )
                    .order_by(
                        Conversation.priority.desc(),
                        Conversation.waiting_since,
                        Conversation.created_at,
                        Conversation.id,
                    )
                    .limit(PASS_LIMIT)
                ).scalars()
            )
            if not waiting:
                return PassResult()
            rows = session.execute(
                sa.select(User, QueueMember)
                .join(QueueMember, QueueMember.user_id == User.id)
                .where(QueueMember.queue_id == queue_id)
                .order_by(User.id)
            ).all()
            members = [user for user, _ in rows]
            rounds = {user.id: (m.last_assigned_at, m.assignments) for user, m in rows}
            used = used_capacity(session, (m.id for m in members), now)
            declines = self._declines(session, [c.id for c in waiting])
            for obj in [queue, *waiting, *members, *(m for _, m in rows)]:
                session.expunge(obj)
        assigned = offered = skipped = 0
        # Agents found unable to take more in this pass (another process filled them, they
        # went offline or left the queue since the pass read them).
        lost: set[str] = set()
        for conversation in waiting:
            outcome = None
            while outcome is None:
                states = [
                    self._state(
                        member,
                        used.get(member.id, 0),
                        rounds[member.id],
                        declines.get((conversation.id, member.id), 0),
                        now,
                        lost=member.id in lost,
                    )
                    for member in members
                ]
                choice = rules.choose_agent(
                    rules.AssignmentMethod(queue.assignment_method),
                    states,
                    required_skills=conversation.required_skills or (),
                    required_language=conversation.required_language,
                    affinity_agent_id=conversation.affinity_user_id,
                    max_declines=self._max_declines,
                )
                if choice.agent_id is None:
                    break
                outcome = self._assign(queue, conversation, choice.agent_id, now)
                if outcome == LOST_AGENT:
                    lost.add(choice.agent_id)
                    outcome = None
                elif outcome == LOST_CONVERSATION:
                    break
            if outcome not in (ASSIGNED, OFFERED):
                skipped += 1
                continue
            agent_id = choice.agent_id or ""
            used[agent_id] = used.get(agent_id, 0) + 1
            _, count = rounds[agent_id]
            rounds[agent_id] = (now, count + 1)
            if outcome == OFFERED:
                offered += 1
            else:
                assigned += 1
        return PassResult(assigned=assigned, offered=offered, skipped=skipped)

    def _assign(
        self, queue: Queue, conversation: Conversation, agent_id: str, now: datetime
    ) -> str:
        """Assign or offer one conversation to one agent, if still possible.

        Returns :data:`ASSIGNED` or :data:`OFFERED`; :data:`LOST_AGENT` when the agent can no
        longer take it (try another), :data:`LOST_CONVERSATION` when the conversation changed
        meanwhile (leave it to the next pass)."""
        with self._db.transaction() as session:
            agent_query = sa.select(User).where(User.id == agent_id)
            agent_query = self._db.for_update(agent_query)
            agent = session.execute(agent_query).scalar_one_or_none()
            if agent is None or not agent.active:
                return LOST_AGENT
            if not is_online(agent.presence, agent.last_seen_at, now, self._presence_timeout):
                return LOST_AGENT
            member = session.get(QueueMember, (queue.id, agent_id))
            if member is None:
                return LOST_AGENT
            if used_capacity(session, [agent_id], now).get(agent_id, 0) + 1 > agent.capacity:
                return LOST_AGENT
            offer = queue.offer_timeout_seconds
            values: dict[str, Any] = {}
            if offer:
                values |= {
                    "offered_to": agent_id,
                    "offer_expires_at": now + timedelta(seconds=offer),
                }
            else:
                values |= {"status": "active", "assigned_to": agent_id, "assigned_at": now}
            done = compare_and_set(
                session,
                conversation,
                values,
                now,
                Conversation.status == "open",
                Conversation.offered_to.is_(None),
            )
            if not done:
                return LOST_CONVERSATION
            agent.last_assigned_at = now
            session.execute(
                sa.update(QueueMember)
                .where(QueueMember.queue_id == queue.id, QueueMember.user_id == agent_id)
                .values(last_assigned_at=now, assignments=QueueMember.assignments + 1)
            )
            record_change(
                session,
                conversation,
                kind="offered" if offer else "assigned",
                now=now,
                to_status="open" if offer else "active",
                to_user_id=agent_id,
                reason=f"queue {queue.name}",
            )
            return OFFERED if offer else ASSIGNED

    def _declines(
        self, session: Session, conversation_ids: Sequence[str]
    ) -> dict[tuple[str, str], int]:
        result: dict[tuple[str, str], int] = {}
        if not conversation_ids:
            return result
        for conversation_id, user_id, count in session.execute(
            sa.select(
                ConversationEvent.conversation_id,
                ConversationEvent.from_user_id,
                sa.func.count(),
            )
            .where(
                ConversationEvent.conversation_id.in_(conversation_ids),
                ConversationEvent.kind.in_(("declined", "offer_expired", "reassigned")),
            )
            .group_by(ConversationEvent.conversation_id, ConversationEvent.from_user_id)
        ):
            if user_id is not None:
                result[(conversation_id, user_id)] = count
        return result

    def _state(
        self,
        member: User,
        used: int,
        rounds: tuple[datetime | None, int],
        declines: int,
        now: datetime,
        *,
        lost: bool = False,
    ) -> rules.AgentState:
        """An agent as the choice sees them; "last assigned" and the count are this queue's.
        ``lost``: found unable to take more during this pass (seen as offline)."""
        return rules.AgentState(
            user_id=member.id,
            online=not lost
            and member.active
            and is_online(member.presence, member.last_seen_at, now, self._presence_timeout),
            member=True,
            capacity=member.capacity,
            used=used,
            skills=frozenset(member.skills or ()),
            languages=frozenset(member.languages or ()),
            last_assigned_at=rounds[0],
            assignments_total=rounds[1],
            last_capacity_release_at=member.last_released_at,
            declines=declines,
        )

    @staticmethod
    def _sum(results: Iterable[PassResult]) -> PassResult:
        assigned = offered = skipped = 0
        for r in results:
            assigned += r.assigned
            offered += r.offered
            skipped += r.skipped
        return PassResult(assigned=assigned, offered=offered, skipped=skipped)
