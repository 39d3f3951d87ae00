"""Conversations: opened by replies (or sends), and their read side (agent routing builds on
these)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Conversation, InboundMessage, Message
from outbound.errors import InvalidRequestError, NotFoundError
from outbound.schemas import Page
from outbound.services.pagination import fetch_page

__all__ = ["ConversationEntry", "ConversationOut", "ConversationService", "open_conversations"]


class ConversationEntry(BaseModel):
    """One message of a conversation, either direction."""

    direction: Literal["inbound", "outbound"]
    id: str
    body: str | None
    at: datetime
    status: str | None = None
    keyword: str | None = None


class ConversationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    channel_id: str
    configuration_id: str | None
    customer_number: str
    status: str
    assigned_to: str | None
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime
    messages: list[ConversationEntry] | None = None


class ConversationService:
    """Lists conversations and shows one with its messages in time order."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def list(
        self, org_id: str, status: str | None, cursor: str | None, limit: int
    ) -> Page[ConversationOut]:
        if status is not None and status not in {"open", "closed"}:
            raise InvalidRequestError("status must be open or closed", field="status")
        query: sa.Select[Any] = sa.select(Conversation).where(Conversation.org_id == org_id)
        if status is not None:
            query = query.where(Conversation.status == status)
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
                raise NotFoundError(f"no conversation {conversation_id!r}")
            inbound = session.execute(
                sa.select(InboundMessage).where(InboundMessage.conversation_id == conversation.id)
            ).scalars()
            entries = [
                ConversationEntry(
                    direction="inbound",
                    id=m.id,
                    body=m.body,
                    at=m.received_at,
                    keyword=m.keyword,
                )
                for m in inbound
            ]
            # The outbound side: what we sent this customer on this channel since the thread
            # began (the message that started it included), and replies sent within it.
            first_reply = session.execute(
                sa.select(InboundMessage.in_reply_to)
                .where(InboundMessage.conversation_id == conversation.id)
                .order_by(InboundMessage.received_at)
                .limit(1)
            ).scalar_one_or_none()
            outbound_filter = sa.or_(
                Message.conversation_id == conversation.id,
                Message.id == first_reply,
                sa.and_(
                    Message.channel_id == conversation.channel_id,
                    Message.to_number == conversation.customer_number,
                    Message.created_at >= conversation.created_at,
                ),
            )
            outbound = session.execute(
                sa.select(Message).where(Message.org_id == org_id, outbound_filter)
            ).scalars()
            entries += [
                ConversationEntry(
                    direction="outbound",
                    id=m.id,
                    body=m.body,
                    at=m.created_at,
                    status=m.status,
                )
                for m in outbound
            ]
        entries.sort(key=lambda e: (e.at, e.direction == "inbound"))
        result = ConversationOut.model_validate(conversation)
        result.messages = entries
        return result


def open_conversations(
    session: Session,
    *,
    org_id: str,
    channel_id: str,
    configuration_id: str | None,
    numbers: Iterable[str],
    now: datetime,
    touch: bool = False,
) -> dict[str, str]:
    """Each number's open conversation on the channel (its id), opened now where it has none.

    A number with several open conversations continues the latest. ``touch``: a customer's
    message arrives now, so a conversation that continues has its last message now.
    """
    wanted = set(numbers)
    if not wanted:
        return {}
    found = session.execute(
        sa.select(Conversation.customer_number, Conversation.id)
        .where(
            Conversation.channel_id == channel_id,
            Conversation.customer_number.in_(wanted),
            Conversation.status == "open",
        )
        .order_by(Conversation.created_at)
    )
    # In creation order: the latest of a number's conversations is the one kept.
    existing = {number: conversation_id for number, conversation_id in found}
    if touch and existing:
        session.execute(
            sa.update(Conversation)
            .where(Conversation.id.in_(list(existing.values())))
            .values(last_message_at=now, updated_at=now)
        )
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
