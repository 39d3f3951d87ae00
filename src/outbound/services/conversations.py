"""Conversations, as agents read them: filtered lists, and one conversation with its context.

One conversation shows what an agent needs to answer: the outbound message the customer
answered (its text, configuration, template and flow run), the contact (consent, language), every
message both ways with its status in time order, the internal notes and the history of changes.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.hints import read_through
from outbound.adapters.db.models import (
    Contact,
    Conversation,
    ConversationEvent,
    ConversationNote,
    FlowRunBatch,
    InboundMessage,
    Message,
    Recipient,
)
from outbound.domain.conversations import CONVERSATION_STATUSES, LIVE_STATUSES
from outbound.errors import InvalidRequestError, NotFoundError
from outbound.schemas import (
    AnsweredMessage,
    ContactSummary,
    ConversationEntry,
    ConversationOut,
    HistoryEntry,
    NoteEntry,
    Page,
)
from outbound.services.pagination import fetch_page
from outbound.texts import N_

__all__ = [
    "CONVERSATION_STATUSES",
    "LIVE_STATUSES",
    "ConversationEntry",
    "ConversationOut",
    "ConversationService",
    "open_conversations",
]


class ConversationService:
    """Lists conversations and shows one with its context, messages, notes and history."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def list(
        self,
        org_id: str,
        status: str | None,
        cursor: str | None,
        limit: int,
        *,
        queue_id: str | None = None,
        assigned_to: str | None = None,
        channel_id: str | None = None,
        customer_number: str | None = None,
        offered_to: str | None = None,
        available_to: str | None = None,
        queue_ids: Collection[str] | None = None,
    ) -> Page[ConversationOut]:
        """A page of the organisation's conversations, newest first, of the statuses given
        (comma-separated) and the other filters: ``offered_to`` a user, ``available_to`` a
        user (offered to none or to them), in one of ``queue_ids``."""
        query: sa.Select[Any] = sa.select(Conversation).where(Conversation.org_id == org_id)
        if status is not None:
            wanted = [s.strip() for s in status.split(",") if s.strip()]
            unknown = [s for s in wanted if s not in CONVERSATION_STATUSES]
            if unknown or not wanted:
                raise InvalidRequestError(
                    N_(
                        "must be one or more of %(statuses)s",
                        statuses=", ".join(CONVERSATION_STATUSES),
                    ),
                    field="status",
                )
            query = query.where(Conversation.status.in_(wanted))
            if set(wanted) <= set(LIVE_STATUSES):
                # SQLite keeps no statistics: given an order and a limit it reads the
                # organisation's conversations newest first through every closed one.
                query = read_through(query, Conversation, "ix_conversations_org_status")
        if queue_id is not None:
            query = query.where(Conversation.queue_id == queue_id)
        if assigned_to is not None:
            query = query.where(Conversation.assigned_to == assigned_to)
        if channel_id is not None:
            query = query.where(Conversation.channel_id == channel_id)
        if customer_number is not None:
            query = query.where(Conversation.customer_number == customer_number)
        if offered_to is not None:
            query = query.where(Conversation.offered_to == offered_to)
        if available_to is not None:
            query = query.where(
                sa.or_(Conversation.offered_to.is_(None), Conversation.offered_to == available_to)
            )
        if queue_ids is not None:
            query = query.where(Conversation.queue_id.in_(queue_ids))
        return fetch_page(
            self._db,
            query,
            Conversation.created_at,
            Conversation.id,
            cursor,
            limit,
            ConversationOut.model_validate,
        )

    def get(self, org_id: str, conversation_id: str) -> ConversationOut:
        with self._db.read() as session:
            conversation = session.execute(
                sa.select(Conversation).where(
                    Conversation.id == conversation_id, Conversation.org_id == org_id
                )
            ).scalar_one_or_none()
            if conversation is None:
                raise NotFoundError(
                    N_("no conversation %(conversation)r", conversation=conversation_id)
                )
            result = ConversationOut.model_validate(conversation)
            result.messages = self._messages(session, org_id, conversation)
            result.answered = self._answered(session, conversation)
            result.contact = self._contact(session, conversation)
            result.consent = self._consent(session, conversation)
            result.notes = [
                NoteEntry.model_validate(n)
                for n in session.execute(
                    sa.select(ConversationNote)
                    .where(ConversationNote.conversation_id == conversation.id)
                    .order_by(ConversationNote.created_at, ConversationNote.id)
                ).scalars()
            ]
            result.history = [
                HistoryEntry.model_validate(e)
                for e in session.execute(
                    sa.select(ConversationEvent)
                    .where(ConversationEvent.conversation_id == conversation.id)
                    .order_by(ConversationEvent.id)
                ).scalars()
            ]
        return result

    def _messages(
        self, session: Session, org_id: str, conversation: Conversation
    ) -> builtins.list[ConversationEntry]:
        entries = [
            ConversationEntry(
                direction="inbound", id=m.id, body=m.body, at=m.received_at, keyword=m.keyword
            )
            for m in session.execute(
                sa.select(InboundMessage).where(InboundMessage.conversation_id == conversation.id)
            ).scalars()
        ]
        # The outbound side: the message the customer answered, what was sent within the
        # conversation, and what was sent this customer on this channel since it began. Each
        # is read by its own index (conversation, number and time, primary key) and their ids
        # joined: as one OR of them, or under the organisation's id, SQLite reads every
        # message of the organisation (a conversation's messages are its organisation's).
        answered = conversation.answered_message_id
        if answered is None:
            answered = session.execute(
                sa.select(InboundMessage.in_reply_to)
                .where(InboundMessage.conversation_id == conversation.id)
                .order_by(InboundMessage.received_at)
                .limit(1)
            ).scalar_one_or_none()
        parts = [
            sa.select(Message.id).where(Message.conversation_id == conversation.id),
            sa.select(Message.id).where(
                Message.org_id == org_id,
                Message.to_number == conversation.customer_number,
                Message.channel_id == conversation.channel_id,
                Message.created_at >= conversation.created_at,
                Message.conversation_id.is_(None),
            ),
        ]
        if answered is not None:
            parts.append(
                sa.select(Message.id).where(Message.id == answered, Message.org_id == org_id)
            )
        entries += [
            ConversationEntry(
                direction="outbound",
                id=m.id,
                body=m.body,
                at=m.created_at,
                status=m.status,
                sent_by_user_id=m.sent_by_user_id,
                error_code=m.error_code,
                encoding=m.encoding,
                segments=m.segments,
            )
            for m in session.execute(
                sa.select(Message).where(Message.id.in_(sa.union(*parts)))
            ).scalars()
        ]
        # At the same instant: what we sent, then the customer's answer, then the agent's.
        entries.sort(
            key=lambda e: (
                e.at,
                1 if e.direction == "inbound" else 2 if e.sent_by_user_id else 0,
            )
        )
        return entries

    def _answered(self, session: Session, conversation: Conversation) -> AnsweredMessage | None:
        message_id = conversation.answered_message_id
        if message_id is None:
            return None
        message = session.get(Message, message_id)
        if message is None:
            return None
        flow_run_id = None
        if message.request_id is not None:
            flow_run_id = session.execute(
                sa.select(FlowRunBatch.run_id)
                .where(FlowRunBatch.request_id == message.request_id)
                .limit(1)
            ).scalar_one_or_none()
        return AnsweredMessage(
            id=message.id,
            body=message.body,
            configuration_id=message.configuration_id,
            template_id=message.template_id,
            flow_run_id=flow_run_id,
            regarding_object_id=message.regarding_object_id,
            locale=message.locale,
            created_at=message.created_at,
        )

    def _contact(self, session: Session, conversation: Conversation) -> ContactSummary | None:
        if conversation.contact_id is None:
            return None
        contact = session.get(Contact, conversation.contact_id)
        if contact is None:
            return None
        return ContactSummary(
            id=contact.id,
            name=contact.name,
            preferred_language=contact.preferred_language,
            time_zone=contact.time_zone,
        )

    def _consent(self, session: Session, conversation: Conversation) -> dict[str, Any]:
        row = session.execute(
            sa.select(Recipient).where(
                Recipient.channel_id == conversation.channel_id,
                Recipient.number == conversation.customer_number,
            )
        ).scalar_one_or_none()
        if row is None:
            return {"opted_out": False, "last_inbound_at": None}
        return {
            "opted_out": row.opted_out,
            "changed_at": row.consent_changed_at,
            "last_inbound_at": row.last_inbound_at,
        }


def open_conversations(
    session: Session,
    *,
    org_id: str,
    channel_id: str,
    configuration_id: str | None,
    numbers: Iterable[str],
    now: datetime,
) -> dict[str, str]:
    """Each number's live conversation on the channel (its id), opened now where it has none.

    For configurations that open a conversation when a message is sent (``on_send``): such a
    conversation waits in no queue until the customer answers, when routing puts it in one
    (:mod:`outbound.services.intake`). A number with several live conversations continues the
    latest.
    """
    wanted = set(numbers)
    if not wanted:
        return {}
    found = session.execute(
        sa.select(Conversation.customer_number, Conversation.id)
        .where(
            Conversation.channel_id == channel_id,
            Conversation.customer_number.in_(wanted),
            Conversation.status.in_(LIVE_STATUSES),
        )
        .order_by(Conversation.created_at)
    )
    # In creation order: the latest of a number's conversations is the one kept.
    existing = {number: conversation_id for number, conversation_id in found}
    for number in sorted(wanted - existing.keys()):
        conversation = Conversation(
            org_id=org_id,
            channel_id=channel_id,
            configuration_id=configuration_id,
            customer_number=number,
            status="open",
            created_at=now,
            updated_at=now,
            last_message_at=now,
        )
        session.add(conversation)
        session.flush()
        existing[number] = conversation.id
    return existing
