"""Queue a text to one customer outside a send request: agent answers, automatic replies, the
answer to HELP.

The message goes through the outbox like every other (durable, retried, tracked); its first
status is written with it, in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from outbound.adapters.db.models import Channel, Message, new_id
from outbound.adapters.queue.history import message_event, write_events
from outbound.domain.encoding import sms_info
from outbound.domain.numbers import region_of
from outbound.domain.statuses import MessageStatus

__all__ = ["queue_text_message"]


def queue_text_message(
    session: Session,
    channel: Channel,
    number: str,
    text: str,
    *,
    reason: str,
    now: datetime,
    max_attempts: int,
    conversation_id: str | None = None,
    locale: str | None = None,
    template_id: str | None = None,
    template_version: int | None = None,
    configuration_id: str | None = None,
    sent_by_user_id: str | None = None,
    send_as_template: bool = False,
    template_parameters: dict[str, Any] | None = None,
    content_sid: str | None = None,
    regarding: Message | None = None,
) -> str:
    """Write one queued message (and its first status) and return its id."""
    encoding = segments = None
    if channel.type == "sms":
        info = sms_info(text)
        encoding, segments = info.encoding.value, info.segments
    message_id = new_id()
    session.add(
        Message(
            id=message_id,
            org_id=channel.org_id,
            request_id=None,
            contact_index=0,
            configuration_id=configuration_id,
            channel_id=channel.id,
            template_id=template_id,
            template_version=template_version,
            channel_type=channel.type,
            provider=channel.provider,
            to_raw=number,
            to_number=number,
            country=region_of(number),
            from_number=channel.sender,
            locale=locale,
            body=text,
            encoding=encoding,
            segments=segments,
            send_as_template=send_as_template,
            template_parameters=template_parameters,
            content_sid=content_sid,
            regarding_object_id=regarding.regarding_object_id if regarding else None,
            entity_relationship_name=regarding.entity_relationship_name if regarding else None,
            show_in_timeline=regarding.show_in_timeline if regarding else False,
            status=MessageStatus.QUEUED.value,
            reason=reason,
            conversation_id=conversation_id,
            sent_by_user_id=sent_by_user_id,
            max_attempts=max_attempts,
            scheduled_at=now,
            created_at=now,
            updated_at=now,
        )
    )
    session.flush()
    write_events(
        session,
        [
            message_event(
                message_id, channel.org_id, MessageStatus.QUEUED, source=reason, occurred_at=now
            )
        ],
    )
    return message_id
