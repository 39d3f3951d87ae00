"""API models of conversations: one with the messages both ways, what it answered, its contact,
notes and history."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from outbound.schemas.base import OutputModel

__all__ = [
    "AnsweredMessage",
    "ContactSummary",
    "ConversationEntry",
    "ConversationOut",
    "HistoryEntry",
    "NoteEntry",
]


class ConversationEntry(OutputModel):
    """One message of a conversation, either direction."""

    direction: Literal["inbound", "outbound"]
    id: str
    body: str | None
    at: datetime
    status: str | None = None
    keyword: str | None = None
    sent_by_user_id: str | None = None
    error_code: str | None = None
    encoding: str | None = None
    segments: int | None = None


class AnsweredMessage(OutputModel):
    """The outbound message whose answer opened the conversation."""

    id: str
    body: str | None
    configuration_id: str | None
    template_id: str | None
    flow_run_id: str | None
    regarding_object_id: str | None
    locale: str | None
    created_at: datetime


class ContactSummary(OutputModel):
    id: str
    name: str | None
    preferred_language: str | None
    time_zone: str | None


class NoteEntry(OutputModel):
    id: str
    user_id: str | None
    body: str
    created_at: datetime


class HistoryEntry(OutputModel):
    kind: str
    actor_user_id: str | None
    from_status: str | None
    to_status: str | None
    from_user_id: str | None
    to_user_id: str | None
    from_queue_id: str | None
    to_queue_id: str | None
    reason: str | None
    occurred_at: datetime


class ConversationOut(OutputModel):
    id: str
    channel_id: str
    configuration_id: str | None
    customer_number: str
    status: str
    queue_id: str | None = None
    priority: int = 0
    assigned_to: str | None
    offered_to: str | None = None
    offer_expires_at: datetime | None = None
    assigned_at: datetime | None = None
    waiting_since: datetime | None = None
    first_response_at: datetime | None = None
    snoozed_until: datetime | None = None
    wrap_up_until: datetime | None = None
    closed_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime
    messages: list[ConversationEntry] | None = None
    answered: AnsweredMessage | None = None
    contact: ContactSummary | None = None
    consent: dict[str, Any] | None = None
    notes: list[NoteEntry] | None = None
    history: list[HistoryEntry] | None = None
