"""Inbound replies: stored with their raw payload, matched, turned into conversations.

A reply is matched to the customer by number and to the outbound message it answers (the
latest one sent to that number on that channel). STOP-style keywords withdraw consent, START
restores it, HELP is answered with the channel's help text; any other reply opens or continues
the customer's conversation on that channel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import (
    Channel,
    InboundMessage,
    Message,
)
from outbound.adapters.db.stages import in_stage
from outbound.adapters.providers.base import InboundReport
from outbound.adapters.queue.rollups import count_reply
from outbound.adapters.queue.webhooks import NewEvent, emit
from outbound.clock import Clock
from outbound.config import DEFAULT_MAX_ATTEMPTS, DEFAULT_REGION
from outbound.domain.consent import Keyword, classify_keyword
from outbound.domain.numbers import mask_number, normalize_number
from outbound.domain.webhooks import MESSAGE_INBOUND
from outbound.errors import InvalidNumberError
from outbound.services.assignment import AssignmentService
from outbound.services.consent import record_consent, touch_inbound
from outbound.services.intake import ConversationIntake
from outbound.services.outbound_text import queue_text_message

__all__ = ["DEFAULT_HELP_TEXT", "InboundResult", "InboundService"]

log = logging.getLogger(__name__)

DEFAULT_HELP_TEXT = "Reply STOP to unsubscribe, START to subscribe again."
_SENT_STATUSES = ("sending", "sent", "delivered", "undelivered")


@dataclass(frozen=True)
class InboundResult:
    inbound_id: str
    duplicate: bool = False
    keyword: Keyword | None = None
    conversation_id: str | None = None
    in_reply_to: str | None = None
    help_reply_id: str | None = None


class InboundService:
    """Receives customers' messages for one channel at a time.

    Senders' numbers without a country code are read in ``default_region``; a HELP answer
    may be tried ``max_attempts`` times.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        intake: ConversationIntake,
        assignment: AssignmentService,
        default_region: str = DEFAULT_REGION,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self._db = db
        self._clock = clock
        self._default_region = default_region
        self._max_attempts = max_attempts
        self._intake = intake
        self._assignment = assignment

    def _answered_before(self, session: Session, message_id: str) -> bool:
        """Whether a customer's message already answered this message (so it is counted as
        replied already). The message's row is locked first (PostgreSQL), so that two
        replies received at once count it once."""
        session.execute(self._db.for_update(sa.select(Message.id).where(Message.id == message_id)))
        return (
            session.execute(
                sa.select(InboundMessage.id)
                .where(InboundMessage.in_reply_to == message_id)
                .limit(1)
            ).first()
            is not None
        )

    @in_stage("inbound")
    def receive(self, channel: Channel, incoming: InboundReport) -> InboundResult:
        now = self._clock.now()
        try:
            number = normalize_number(incoming.from_number, self._default_region)
        except InvalidNumberError:
            # Keep it anyway: a reply from a short code or an odd sender is still a reply.
            number = incoming.from_number.removeprefix("whatsapp:").strip()
        keyword = classify_keyword(incoming.body)
        with self._db.transaction() as session:
            existing = session.execute(
                sa.select(InboundMessage.id, InboundMessage.conversation_id).where(
                    InboundMessage.channel_id == channel.id,
                    InboundMessage.provider_message_id == incoming.provider_message_id,
                )
            ).one_or_none()
            if existing is not None:
                return InboundResult(
                    existing.id, duplicate=True, conversation_id=existing.conversation_id
                )
            touch_inbound(
                session, org_id=channel.org_id, channel_id=channel.id, number=number, now=now
            )
            replied_to = session.execute(
                sa.select(Message)
                .where(
                    # A message that failed over went out through this channel too.
                    sa.or_(
                        Message.channel_id == channel.id,
                        Message.sent_via_channel_id == channel.id,
                    ),
                    Message.to_number == number,
                    Message.status.in_(_SENT_STATUSES),
                )
                .order_by(Message.created_at.desc(), Message.id.desc())
                .limit(1)
            ).scalar_one_or_none()
            inbound = InboundMessage(
                org_id=channel.org_id,
                channel_id=channel.id,
                provider=incoming.provider,
                provider_message_id=incoming.provider_message_id,
                from_number=number,
                to_number=incoming.to_number,
                body=incoming.body,
                keyword=keyword.value if keyword else None,
                raw=dict(incoming.raw),
                in_reply_to=replied_to.id if replied_to else None,
                received_at=incoming.received_at or now,
            )
            if replied_to is not None and not self._answered_before(session, replied_to.id):
                count_reply(session, replied_to.id)
            session.add(inbound)
            help_reply_id = None
            conversation_id = None
            queue_to_assign = None
            if keyword in (Keyword.OPT_OUT, Keyword.OPT_IN):
                changed = record_consent(
                    session,
                    org_id=channel.org_id,
                    channel_id=channel.id,
                    number=number,
                    opted_out=keyword is Keyword.OPT_OUT,
                    source="keyword",
                    detail=incoming.body.strip()[:200],
                    now=now,
                )
                log.info(
                    "consent %s for %s on channel %s (%s)",
                    keyword.value,
                    mask_number(number),
                    channel.id,
                    "changed" if changed else "unchanged",
                )
            elif keyword is Keyword.HELP:
                help_reply_id = self._queue_help(session, channel, number, now)
            else:
                intake = self._intake.on_customer_message(
                    session, channel, number, incoming.body, replied_to, now
                )
                conversation_id = intake.conversation_id
                inbound.conversation_id = conversation_id
                queue_to_assign = intake.queue_to_assign
            session.flush()
            emit(session, [_inbound_event(inbound, keyword, now)])
        if queue_to_assign is not None:
            # After the commit: the routing sweep assigns it anyway, this only saves the wait.
            try:
                self._assignment.assign_queue(queue_to_assign)
            except Exception:
                log.exception("assigning queue %s after a reply failed", queue_to_assign)
        return InboundResult(
            inbound.id,
            keyword=keyword,
            conversation_id=conversation_id,
            in_reply_to=inbound.in_reply_to,
            help_reply_id=help_reply_id,
        )

    def _queue_help(self, session: Session, channel: Channel, number: str, now: datetime) -> str:
        text = str((channel.options or {}).get("help_text") or DEFAULT_HELP_TEXT)
        return queue_text_message(
            session,
            channel,
            number,
            text,
            reason="help_reply",
            now=now,
            max_attempts=self._max_attempts,
        )


def _inbound_event(inbound: InboundMessage, keyword: Keyword | None, now: datetime) -> NewEvent:
    """``message.inbound``: the customer's message as the integrator's systems get it."""
    return NewEvent(
        org_id=inbound.org_id,
        type=MESSAGE_INBOUND,
        occurred_at=now,
        ordering_key=inbound.conversation_id,
        data={
            "inbound_message_id": inbound.id,
            "channel_id": inbound.channel_id,
            "provider": inbound.provider,
            "provider_message_id": inbound.provider_message_id,
            "from": inbound.from_number,
            "to": inbound.to_number,
            "body": inbound.body,
            "keyword": keyword.value if keyword else None,
            "in_reply_to": inbound.in_reply_to,
            "conversation_id": inbound.conversation_id,
            "received_at": inbound.received_at.isoformat().replace("+00:00", "Z"),
        },
    )
