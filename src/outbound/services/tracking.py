"""Tracking: one message with its history, filtered lists, and a record's timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Message, MessageEvent
from outbound.domain.numbers import normalize_number
from outbound.domain.statuses import MessageStatus
from outbound.errors import InvalidNumberError, InvalidRequestError, NotFoundError
from outbound.schemas import MessageEventOut, MessageOut, Page
from outbound.services.pagination import fetch_page
from outbound.texts import N_

__all__ = ["MessageFilter", "TrackingService", "message_out"]


def message_out(message: Message, history: list[MessageEvent] | None = None) -> MessageOut:
    data: dict[str, Any] = {
        c: getattr(message, c) for c in MessageOut.model_fields if hasattr(message, c)
    }
    data["to"] = message.to_number
    data["from_"] = message.from_number
    data["history"] = (
        [MessageEventOut.model_validate(e) for e in history] if history is not None else None
    )
    return MessageOut.model_validate(data)


class MessageFilter:
    """Filters of ``GET /v1/messages``, validated."""

    def __init__(
        self,
        *,
        configuration_id: str | None = None,
        status: str | None = None,
        to: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        request_id: str | None = None,
        default_region: str | None = None,
        channel_id: str | None = None,
        error_code: str | None = None,
    ) -> None:
        if status is not None and status not in {s.value for s in MessageStatus}:
            raise InvalidRequestError(
                N_(
                    "unknown status %(status)r; one of: %(statuses)s",
                    status=status,
                    statuses=", ".join(s.value for s in MessageStatus),
                ),
                field="status",
            )
        for name, value in (("created_after", created_after), ("created_before", created_before)):
            if value is not None and value.tzinfo is None:
                raise InvalidRequestError(
                    N_("give a time zone (e.g. 2026-11-25T10:00:00Z)"), field=name
                )
        self.configuration_id = configuration_id
        self.status = status
        self.to: str | None = None
        if to is not None:
            try:
                self.to = normalize_number(to, default_region)
            except InvalidNumberError as exc:
                raise InvalidRequestError(exc.reason, field="to") from exc
        self.created_after = created_after
        self.created_before = created_before
        self.request_id = request_id
        self.channel_id = channel_id
        self.error_code = error_code

    def apply(self, query: sa.Select[Any]) -> sa.Select[Any]:
        if self.configuration_id is not None:
            query = query.where(Message.configuration_id == self.configuration_id)
        if self.status is not None:
            query = query.where(Message.status == self.status)
        if self.to is not None:
            query = query.where(Message.to_number == self.to)
        if self.created_after is not None:
            query = query.where(Message.created_at >= self.created_after)
        if self.created_before is not None:
            query = query.where(Message.created_at < self.created_before)
        if self.request_id is not None:
            query = query.where(Message.request_id == self.request_id)
        if self.channel_id is not None:
            query = query.where(Message.channel_id == self.channel_id)
        if self.error_code is not None:
            query = query.where(Message.error_code == self.error_code)
        return query


class TrackingService:
    """Read side of messages."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, org_id: str, message_id: str) -> MessageOut:
        with self._db.read() as session:
            message = session.execute(
                sa.select(Message).where(Message.id == message_id, Message.org_id == org_id)
            ).scalar_one_or_none()
            if message is None:
                raise NotFoundError(N_("no message %(message)r", message=message_id))
            history = list(
                session.execute(
                    sa.select(MessageEvent)
                    .where(MessageEvent.message_id == message.id)
                    .order_by(MessageEvent.occurred_at, MessageEvent.id)
                ).scalars()
            )
        return message_out(message, history)

    def _page(self, query: sa.Select[Any], cursor: str | None, limit: int) -> Page[MessageOut]:
        return fetch_page(
            self._db, query, Message.created_at, Message.id, cursor, limit, message_out
        )

    def list(
        self, org_id: str, filters: MessageFilter, cursor: str | None, limit: int
    ) -> Page[MessageOut]:
        query = filters.apply(sa.select(Message).where(Message.org_id == org_id))
        return self._page(query, cursor, limit)

    def timeline(
        self, org_id: str, regarding_object_id: str, cursor: str | None, limit: int
    ) -> Page[MessageOut]:
        """Messages linked to a record, for configurations that show in the timeline."""
        query = sa.select(Message).where(
            Message.org_id == org_id,
            Message.regarding_object_id == regarding_object_id,
            Message.entity_relationship_name.is_not(None),
            Message.show_in_timeline.is_(True),
        )
        return self._page(query, cursor, limit)
