"""A customer writes: open, continue, wake or reopen their conversation, and route a new one.

Called by the inbound path inside the transaction that stores the customer's message, so that a
message is never stored without its conversation (nor the reverse). It returns the queue whose
assignment pass should run once that transaction has committed.

- No live conversation: a new one opens and is routed (rules, fallback queue, overflow). If the
  organisation reopens closed conversations and this customer had one on this channel, it is
  reopened instead. Either way the last agent who had the customer is remembered (affinity).
- ``waiting`` (the agent answered, or snoozed it): back to ``active`` with the same agent.
- ``open``, ``active``, ``wrap_up``: the message joins it; the first unanswered message starts
  the wait that queues are ordered by.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.models import (
    Channel,
    Conversation,
    Message,
    Organization,
    Queue,
    Template,
)
from outbound.domain.locales import choose_text
from outbound.domain.queues import parse_weekly_hours, within_hours
from outbound.domain.templates import render
from outbound.errors import MissingPlaceholderError
from outbound.services.conversation_log import record_change
from outbound.services.outbound_text import queue_text_message
from outbound.services.routing import Reply, RoutingService, reply_facts

__all__ = ["ConversationIntake", "IntakeResult", "queue_open"]

LIVE = ("open", "active", "waiting", "wrap_up")


@dataclass(frozen=True)
class IntakeResult:
    conversation_id: str
    opened: bool
    queue_to_assign: str | None


def queue_open(queue: Queue, now: datetime) -> bool:
    """Whether a queue's operating hours (None: always) include ``now``."""
    if not queue.hours:
        return True
    return within_hours(parse_weekly_hours(queue.hours), queue.time_zone or "UTC", now)


class ConversationIntake:
    """Turns a customer's message into the state of their conversation."""

    def __init__(self, routing: RoutingService, *, max_attempts: int) -> None:
        self._routing = routing
        self._max_attempts = max_attempts

    def on_customer_message(
        self,
        session: Session,
        channel: Channel,
        number: str,
        text: str,
        replied_to: Message | None,
        now: datetime,
    ) -> IntakeResult:
        live = session.execute(
            sa.select(Conversation)
            .where(
                Conversation.channel_id == channel.id,
                Conversation.customer_number == number,
                Conversation.status.in_(LIVE),
            )
            .order_by(Conversation.created_at.desc())
            .limit(1)
            # PostgreSQL: an assignment racing this message waits, then its compare-and-set
            # sees the new version and leaves the conversation to the next pass.
            .with_for_update(of=Conversation)
        ).scalar_one_or_none()
        if live is not None and (live.queue_id is not None or live.assigned_to is not None):
            return self._continue(session, live, now)
        if live is not None:
            # Opened when a message was sent (the configuration's conversation mode) and
            # never routed: the customer's first answer routes it.
            reply = reply_facts(session, channel.org_id, channel, number, text, replied_to)
            live.status = "open"
            live.answered_message_id = live.answered_message_id or (
                replied_to.id if replied_to else None
            )
            live.last_message_at = live.updated_at = now
            live.version += 1
            session.flush()
            queue_id = self._route(session, live, reply, now)
            return IntakeResult(live.id, opened=False, queue_to_assign=queue_id)
        previous = session.execute(
            sa.select(Conversation)
            .where(
                Conversation.channel_id == channel.id,
                Conversation.customer_number == number,
                Conversation.status == "closed",
            )
            .order_by(Conversation.closed_at.desc(), Conversation.created_at.desc())
            .limit(1)
        ).scalar_one_or_none()
        org = session.get(Organization, channel.org_id)
        reply = reply_facts(session, channel.org_id, channel, number, text, replied_to)
        if previous is not None and org is not None and org.reopen_closed:
            former = previous.assigned_to
            previous.status = "open"
            previous.assigned_to = None
            previous.closed_at = None
            previous.wrap_up_until = None
            previous.affinity_user_id = former
            previous.version += 1
            previous.updated_at = previous.last_message_at = now
            session.flush()
            record_change(
                session,
                previous,
                kind="reopened",
                now=now,
                from_status="closed",
                to_status="open",
                from_user_id=former,
                reason="the customer wrote again",
            )
            queue_id = self._route(session, previous, reply, now)
            return IntakeResult(previous.id, opened=False, queue_to_assign=queue_id)
        conversation = Conversation(
            org_id=channel.org_id,
            channel_id=channel.id,
            configuration_id=replied_to.configuration_id if replied_to else None,
            customer_number=number,
            status="open",
            answered_message_id=replied_to.id if replied_to else None,
            affinity_user_id=previous.assigned_to if previous is not None else None,
            created_at=now,
            updated_at=now,
            last_message_at=now,
            version=1,
        )
        session.add(conversation)
        session.flush()
        record_change(session, conversation, kind="opened", now=now, to_status="open")
        queue_id = self._route(session, conversation, reply, now)
        return IntakeResult(conversation.id, opened=True, queue_to_assign=queue_id)

    def _continue(
        self, session: Session, conversation: Conversation, now: datetime
    ) -> IntakeResult:
        conversation.last_message_at = conversation.updated_at = now
        conversation.last_customer_message_at = now
        if conversation.waiting_since is None:
            conversation.waiting_since = now
        queue_to_assign = None
        if conversation.status == "waiting":
            conversation.status = "active"
            woke = conversation.snoozed_until is not None
            conversation.snoozed_until = None
            conversation.version += 1
            session.flush()
            record_change(
                session,
                conversation,
                kind="customer_replied",
                now=now,
                from_status="waiting",
                to_status="active",
                to_user_id=conversation.assigned_to,
                reason="woke from snooze" if woke else None,
            )
        else:
            conversation.version += 1
            session.flush()
            record_change(
                session,
                conversation,
                kind="customer_message",
                now=now,
                to_status=conversation.status,
            )
            if conversation.status == "open":
                queue_to_assign = conversation.queue_id
        return IntakeResult(conversation.id, opened=False, queue_to_assign=queue_to_assign)

    def _route(
        self, session: Session, conversation: Conversation, reply: Reply, now: datetime
    ) -> str | None:
        queue_id = self._routing.route_new(session, conversation, reply, now)
        if queue_id is None:
            return None
        queue = session.get(Queue, queue_id)
        if queue is None or not queue.overflow:
            return queue_id
        overflow = queue.overflow
        reason = None
        if overflow.get("outside_hours", True) and not queue_open(queue, now):
            reason = "outside the queue's hours"
        elif overflow.get("max_waiting"):
            waiting = session.execute(
                sa.select(sa.func.count())
                .select_from(Conversation)
                .where(
                    Conversation.queue_id == queue.id,
                    Conversation.status == "open",
                    Conversation.id != conversation.id,
                )
            ).scalar_one()
            if waiting >= overflow["max_waiting"]:
                reason = f"{waiting} conversations already waiting"
        if reason is None:
            return queue_id
        return self.overflow(session, conversation, queue, reason, now)

    def overflow(
        self,
        session: Session,
        conversation: Conversation,
        queue: Queue,
        reason: str,
        now: datetime,
    ) -> str | None:
        """Apply a queue's overflow action; returns the queue the conversation now waits in."""
        overflow = queue.overflow or {}
        conversation.overflowed_at = now
        if overflow.get("action") == "transfer" and overflow.get("queue_id"):
            target = session.get(Queue, overflow["queue_id"])
            if target is not None:
                conversation.queue_id = target.id
                conversation.version += 1
                session.flush()
                record_change(
                    session,
                    conversation,
                    kind="overflowed",
                    now=now,
                    to_status=conversation.status,
                    from_queue_id=queue.id,
                    to_queue_id=target.id,
                    reason=reason,
                )
                return target.id
        if overflow.get("action") == "auto_reply" and overflow.get("template_id"):
            message_id = self._auto_reply(session, conversation, overflow["template_id"], now)
            conversation.version += 1
            session.flush()
            record_change(
                session,
                conversation,
                kind="overflowed",
                now=now,
                to_status=conversation.status,
                reason=reason,
                detail={"auto_reply_message_id": message_id},
            )
        return queue.id

    def _auto_reply(
        self, session: Session, conversation: Conversation, template_id: str, now: datetime
    ) -> str | None:
        template = session.get(Template, template_id)
        channel = session.get(Channel, conversation.channel_id)
        if template is None or channel is None:
            return None
        answered = (
            session.get(Message, conversation.answered_message_id)
            if conversation.answered_message_id
            else None
        )
        chosen = choose_text(
            requested=answered.locale if answered else None,
            localizations=template.localizations,
            template_default_locale=template.default_locale,
            template_default_text=template.default_text,
            configuration_default_locale=None,
            fallbacks=template.fallbacks,
        )
        try:
            text = render(chosen.text, (answered.context if answered else None) or {})
        except MissingPlaceholderError:
            text = chosen.text
        return queue_text_message(
            session,
            channel,
            conversation.customer_number,
            text,
            reason="auto_reply",
            now=now,
            max_attempts=self._max_attempts,
            conversation_id=conversation.id,
            locale=chosen.locale,
            template_id=template.id,
            template_version=template.version,
        )
