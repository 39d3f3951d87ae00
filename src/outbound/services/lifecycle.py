"""What people do to a conversation: accept, decline, transfer, snooze, close, reopen.

Every action reads the conversation, checks that the caller may act and that the action fits
its state (:mod:`outbound.domain.conversation_states`), then compare-and-sets the row on its
``version`` and records the change (:func:`~outbound.services.conversation_log.record_change`)
in the same transaction. Two people acting at once: one wins, the other gets 409 naming the
state the conversation is now in. Capacity that an action frees starts an assignment pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Conversation, Queue, QueueMember, User
from outbound.clock import Clock
from outbound.domain.conversation_states import ConversationAction as Action
from outbound.domain.conversation_states import ConversationState as State
from outbound.domain.conversation_states import allowed_actions, transition
from outbound.domain.presence import is_online
from outbound.errors import (
    ConflictError,
    InvalidRequestError,
    InvalidTransitionError,
    NotFoundError,
    PermissionDeniedError,
)
from outbound.services.assignment import AssignmentService, used_capacity
from outbound.services.conversation_log import compare_and_set, record_change
from outbound.texts import N_

__all__ = ["MAX_SNOOZE", "Actor", "LifecycleService", "state_of"]

MAX_SNOOZE = timedelta(days=30)


@dataclass(frozen=True)
class Actor:
    """Who acts: a user of the organisation, and whether they supervise others."""

    org_id: str
    user_id: str | None
    supervisor: bool


class LifecycleService:
    """The actions on one conversation."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        assignment: AssignmentService,
        *,
        presence_timeout: timedelta,
    ) -> None:
        self._db = db
        self._clock = clock
        self._assignment = assignment
        self._presence_timeout = presence_timeout

    # --- actions --------------------------------------------------------------------------

    def accept(self, actor: Actor, conversation_id: str) -> str:
        """Take a conversation offered to the caller, or pick one waiting in a queue of theirs."""
        user_id = self._need_user(actor)
        now = self._clock.now()
        with self._db.transaction() as session:
            conversation = self._load(session, actor, conversation_id)
            self._check(conversation, Action.ACCEPT if conversation.offered_to else Action.ASSIGN)
            if conversation.offered_to not in (None, user_id):
                raise ConflictError(
                    N_("this conversation is offered to another agent"), code="offered_elsewhere"
                )
            agent = self._lock_agent(session, user_id)
            if conversation.offered_to is None:
                member = session.get(QueueMember, (conversation.queue_id or "", user_id))
                if member is None and not actor.supervisor:
                    raise PermissionDeniedError(
                        N_("you are not a member of this conversation's queue")
                    )
                if used_capacity(session, [user_id], now).get(user_id, 0) + 1 > agent.capacity:
                    raise ConflictError(
                        N_("you have no free capacity; close or hand over a conversation first"),
                        code="no_capacity",
                    )
            self._set(
                session,
                conversation,
                status="active",
                assigned_to=user_id,
                assigned_at=now,
                offered_to=None,
                offer_expires_at=None,
            )
            agent.last_assigned_at = now
            record_change(
                session,
                conversation,
                kind="accepted",
                now=now,
                actor_user_id=user_id,
                from_status="open",
                to_status="active",
                to_user_id=user_id,
            )
        return conversation_id

    def decline(self, actor: Actor, conversation_id: str, reason: str | None = None) -> str:
        """Refuse an offer, or hand back an assigned conversation to its queue."""
        user_id = self._need_user(actor)
        now = self._clock.now()
        with self._db.transaction() as session:
            conversation = self._load(session, actor, conversation_id)
            if conversation.status == "open" and conversation.offered_to == user_id:
                self._set(session, conversation, offered_to=None, offer_expires_at=None)
                from_status = "open"
            elif conversation.status == "active" and conversation.assigned_to == user_id:
                self._set(session, conversation, status="open", assigned_to=None, assigned_at=None)
                from_status = "active"
                self._released(session, user_id, now)
            else:
                raise ConflictError(
                    N_("only the agent a conversation is offered or assigned to can decline it"),
                    code="not_yours",
                    details={"status": conversation.status},
                )
            record_change(
                session,
                conversation,
                kind="declined",
                now=now,
                actor_user_id=user_id,
                from_status=from_status,
                to_status="open",
                from_user_id=user_id,
                reason=reason,
            )
            queue_id = conversation.queue_id
        if queue_id:
            self._assignment.assign_queue(queue_id)
        return conversation_id

    def transfer(
        self,
        actor: Actor,
        conversation_id: str,
        *,
        to_user_id: str | None = None,
        to_queue_id: str | None = None,
        reason: str | None = None,
    ) -> str:
        """Hand a conversation to another agent (assigned at once) or to a queue (waits there)."""
        if (to_user_id is None) == (to_queue_id is None):
            raise InvalidRequestError(N_("give either user_id or queue_id"), field="user_id")
        now = self._clock.now()
        with self._db.transaction() as session:
            conversation = self._load(session, actor, conversation_id)
            self._check_owner(actor, conversation, "transfer")
            to_state = self._check(
                conversation,
                Action.TRANSFER_TO_QUEUE if to_queue_id is not None else Action.TRANSFER_TO_AGENT,
            )
            previous = conversation.assigned_to
            from_status = conversation.status
            from_queue = conversation.queue_id
            if to_queue_id is not None:
                queue = session.execute(
                    sa.select(Queue).where(Queue.org_id == actor.org_id, Queue.id == to_queue_id)
                ).scalar_one_or_none()
                if queue is None:
                    raise InvalidRequestError(
                        N_("no queue %(queue)r", queue=to_queue_id), field="queue_id"
                    )
                self._set(
                    session,
                    conversation,
                    status="open",
                    queue_id=queue.id,
                    assigned_to=None,
                    assigned_at=None,
                    offered_to=None,
                    offer_expires_at=None,
                    waiting_since=conversation.waiting_since or now,
                )
                to_status = "open"
            else:
                target = self._lock_agent(session, to_user_id or "", field="user_id")
                if target.org_id != actor.org_id or not target.active:
                    raise InvalidRequestError(
                        N_("no active user %(user)r", user=to_user_id), field="user_id"
                    )
                if not is_online(target.presence, target.last_seen_at, now, self._presence_timeout):
                    raise ConflictError(
                        N_("that agent is not available; transfer to their queue instead"),
                        code="agent_unavailable",
                    )
                held = used_capacity(session, [target.id], now).get(target.id, 0)
                if held + 1 > target.capacity:
                    raise ConflictError(N_("that agent has no free capacity"), code="no_capacity")
                # A conversation waiting for the customer waits for them with its new agent.
                to_status = "waiting" if to_state is State.WAITING else "active"
                self._set(
                    session,
                    conversation,
                    status=to_status,
                    assigned_to=target.id,
                    assigned_at=now,
                    offered_to=None,
                    offer_expires_at=None,
                )
                target.last_assigned_at = now
            if previous and previous != to_user_id and from_status in {"active", "wrap_up"}:
                self._released(session, previous, now)
            record_change(
                session,
                conversation,
                kind="transferred",
                now=now,
                actor_user_id=actor.user_id,
                from_status=from_status,
                to_status=to_status,
                from_user_id=previous,
                to_user_id=to_user_id,
                from_queue_id=from_queue,
                to_queue_id=to_queue_id or from_queue,
                reason=reason,
            )
        if to_queue_id is not None:
            self._assignment.assign_queue(to_queue_id)
        return conversation_id

    def snooze(self, actor: Actor, conversation_id: str, until: datetime) -> str:
        """Set a conversation aside until a time: it waits (no capacity) and comes back then,
        or as soon as the customer writes."""
        now = self._clock.now()
        if until.tzinfo is None:
            raise InvalidRequestError(N_("must carry a time zone"), field="until")
        if not now < until <= now + MAX_SNOOZE:
            raise InvalidRequestError(N_("must be in the future, within 30 days"), field="until")
        with self._db.transaction() as session:
            conversation = self._load(session, actor, conversation_id)
            self._check_owner(actor, conversation, "snooze")
            self._check(conversation, Action.SNOOZE)
            from_status = conversation.status
            self._set(session, conversation, status="waiting", snoozed_until=until)
            if from_status == "active":
                self._released(session, conversation.assigned_to, now)
            record_change(
                session,
                conversation,
                kind="snoozed",
                now=now,
                actor_user_id=actor.user_id,
                from_status=from_status,
                to_status="waiting",
                detail={"until": until.isoformat()},
            )
        return conversation_id

    def close(self, actor: Actor, conversation_id: str, *, wrap_up: bool = True) -> str:
        """Close a conversation, through wrap-up when its queue holds capacity for one."""
        now = self._clock.now()
        with self._db.transaction() as session:
            conversation = self._load(session, actor, conversation_id)
            self._check_owner(actor, conversation, "close")
            self._check(conversation, Action.CLOSE)
            from_status = conversation.status
            hold = 0
            if wrap_up and from_status == "active" and conversation.queue_id:
                queue = session.get(Queue, conversation.queue_id)
                hold = queue.wrap_up_seconds if queue is not None else 0
            if hold:
                self._set(
                    session,
                    conversation,
                    status="wrap_up",
                    wrap_up_until=now + timedelta(seconds=hold),
                )
                kind, to_status = "wrap_up", "wrap_up"
            else:
                self._set(
                    session,
                    conversation,
                    status="closed",
                    closed_at=now,
                    offered_to=None,
                    offer_expires_at=None,
                    snoozed_until=None,
                    waiting_since=None,
                )
                kind, to_status = "closed", "closed"
                if conversation.assigned_to and from_status in {"active", "wrap_up"}:
                    self._released(session, conversation.assigned_to, now)
            record_change(
                session,
                conversation,
                kind=kind,
                now=now,
                actor_user_id=actor.user_id,
                from_status=from_status,
                to_status=to_status,
                from_user_id=conversation.assigned_to,
            )
            freed = conversation.assigned_to if to_status == "closed" else None
        if freed:
            self.after_release(freed)
        return conversation_id

    def reopen(self, actor: Actor, conversation_id: str) -> str:
        """Open a closed conversation again: it waits in its queue, its former agent first."""
        now = self._clock.now()
        with self._db.transaction() as session:
            conversation = self._load(session, actor, conversation_id)
            self._check(conversation, Action.REOPEN)
            if not actor.supervisor and conversation.assigned_to != actor.user_id:
                raise PermissionDeniedError(N_("only its last agent or a supervisor may reopen it"))
            former = conversation.assigned_to
            self._set(
                session,
                conversation,
                status="open",
                assigned_to=None,
                closed_at=None,
                wrap_up_until=None,
                waiting_since=now,
                affinity_user_id=former,
            )
            record_change(
                session,
                conversation,
                kind="reopened",
                now=now,
                actor_user_id=actor.user_id,
                from_status="closed",
                to_status="open",
                from_user_id=former,
            )
            queue_id = conversation.queue_id
        if queue_id:
            self._assignment.assign_queue(queue_id)
        return conversation_id

    def after_release(self, user_id: str) -> None:
        """An agent freed capacity: run the passes of their queues."""
        self._assignment.assign_for_agent(user_id)

    # --- helpers --------------------------------------------------------------------------

    def _need_user(self, actor: Actor) -> str:
        if actor.user_id is None:
            raise PermissionDeniedError(
                N_("this API key belongs to no user; use a key created for a user (user_id)")
            )
        return actor.user_id

    def _load(self, session: Session, actor: Actor, conversation_id: str) -> Conversation:
        query = sa.select(Conversation).where(
            Conversation.id == conversation_id, Conversation.org_id == actor.org_id
        )
        query = self._db.for_update(query)
        conversation = session.execute(query).scalar_one_or_none()
        if conversation is None:
            raise NotFoundError(
                N_("no conversation %(conversation)r", conversation=conversation_id)
            )
        return conversation

    def _check_owner(self, actor: Actor, conversation: Conversation, action: str) -> None:
        if actor.supervisor:
            return
        if actor.user_id is None or conversation.assigned_to != actor.user_id:
            raise PermissionDeniedError(
                N_(
                    "only the assigned agent or a supervisor may %(action)s this conversation",
                    action=action,
                )
            )

    def _lock_agent(self, session: Session, user_id: str, *, field: str | None = None) -> User:
        query = sa.select(User).where(User.id == user_id)
        query = self._db.for_update(query)
        agent = session.execute(query).scalar_one_or_none()
        if agent is None:
            if field is not None:
                raise InvalidRequestError(N_("no user %(user)r", user=user_id), field=field)
            raise NotFoundError(N_("no user %(user)r", user=user_id))
        return agent

    def _released(self, session: Session, user_id: str | None, now: datetime) -> None:
        if user_id is not None:
            session.execute(sa.update(User).where(User.id == user_id).values(last_released_at=now))

    def _set(self, session: Session, conversation: Conversation, **values: Any) -> None:
        """Change the row if nobody changed it since it was read (else 409)."""
        now = self._clock.now()
        done = compare_and_set(session, conversation, values, now)
        if not done:
            raise ConflictError(
                N_("the conversation changed meanwhile; read it again"), code="conversation_changed"
            )
        values |= {"version": conversation.version + 1, "updated_at": now}
        for name, value in values.items():
            set_committed_value(conversation, name, value)

    @staticmethod
    def _check(conversation: Conversation, action: Action) -> State:
        """The state ``action`` leads to from where the conversation is (409 if none)."""
        current = state_of(conversation)
        try:
            return transition(current, action)
        except InvalidTransitionError as exc:
            raise ConflictError(
                N_(
                    "cannot %(action)s a conversation that is %(status)s",
                    action=action.value.replace("_", " "),
                    status=current.value,
                ),
                code="invalid_state",
                details={
                    "status": current.value,
                    "allowed": sorted(a.value for a in allowed_actions(current)),
                },
            ) from exc


def state_of(conversation: Conversation) -> State:
    """The lifecycle state of a stored conversation: ``offered`` and ``snoozed`` are ``open``
    and ``waiting`` rows with an offer or a snooze time."""
    if conversation.status == "open" and conversation.offered_to:
        return State.OFFERED
    if conversation.status == "waiting" and conversation.snoozed_until is not None:
        return State.SNOOZED
    return State(conversation.status)
