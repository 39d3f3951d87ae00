"""The record of every conversation change, and the live update that tells of it.

Each change writes one ``conversation_events`` row (who, when, from, to, why) and one
``stream_events`` row in the transaction of the change, so that what the history shows and what
the event stream sends can never disagree, in any process.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import affected
from outbound.adapters.db.models import Conversation, ConversationEvent, StreamEvent
from outbound.adapters.queue.webhooks import NewEvent, emit

# The channel stream readers LISTEN on (outbound.services.stream).
NOTIFY_CHANNEL = "outbound_stream"

__all__ = [
    "NOTIFY_CHANNEL",
    "compare_and_set",
    "conversation_summary",
    "publish",
    "record_change",
]


def conversation_summary(conversation: Conversation) -> dict[str, Any]:
    """What a live update says of a conversation (no message text: the stream is a signal)."""
    return {
        "id": conversation.id,
        "status": conversation.status,
        "queue_id": conversation.queue_id,
        "assigned_to": conversation.assigned_to,
        "offered_to": conversation.offered_to,
        "channel_id": conversation.channel_id,
        "priority": conversation.priority,
    }


def compare_and_set(
    session: Session,
    conversation: Conversation,
    values: dict[str, Any],
    now: datetime,
    *conditions: Any,
) -> bool:
    """Change a conversation only if nobody changed it since it was read (its ``version``),
    and only while ``conditions`` hold; the version grows by one. False when it moved on."""
    result = session.execute(
        sa.update(Conversation)
        .where(
            Conversation.id == conversation.id,
            Conversation.version == conversation.version,
            *conditions,
        )
        .values(**values, version=conversation.version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return affected(result) == 1


def publish(
    session: Session,
    org_id: str,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    *,
    user_id: str | None = None,
) -> None:
    """Queue a live update for the organisation (or for one user) in the caller's transaction."""
    session.add(
        StreamEvent(org_id=org_id, user_id=user_id, kind=kind, payload=payload, created_at=now)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Delivered at commit, once per transaction (PostgreSQL folds identical ones).
        session.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})


def record_change(
    session: Session,
    conversation: Conversation,
    *,
    kind: str,
    now: datetime,
    actor_user_id: str | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    from_user_id: str | None = None,
    to_user_id: str | None = None,
    from_queue_id: str | None = None,
    to_queue_id: str | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> ConversationEvent:
    """Write one change of a conversation and its live update, in the caller's transaction.

    ``conversation`` gives the ids; the caller has already changed (or compare-and-set) the row.
    """
    event = ConversationEvent(
        org_id=conversation.org_id,
        conversation_id=conversation.id,
        kind=kind,
        actor_user_id=actor_user_id,
        from_status=from_status,
        to_status=to_status,
        from_user_id=from_user_id,
        to_user_id=to_user_id,
        from_queue_id=from_queue_id,
        to_queue_id=to_queue_id,
        reason=reason[:500] if reason else None,
        detail=detail,
        occurred_at=now,
    )
    session.add(event)
    payload = {
        "conversation_id": conversation.id,
        "change": kind,
        "status": to_status or conversation.status,
        "assigned_to": to_user_id if kind in {"assigned", "accepted", "transferred"} else None,
        "offered_to": to_user_id if kind == "offered" else None,
        "from_user_id": from_user_id,
        "queue_id": to_queue_id or conversation.queue_id,
        "actor_user_id": actor_user_id,
        "reason": event.reason,
    }
    publish(session, conversation.org_id, f"conversation.{kind}", payload, now)
    emit(
        session,
        [
            NewEvent(
                org_id=conversation.org_id,
                type=f"conversation.{kind}",
                occurred_at=now,
                ordering_key=conversation.id,
                data={
                    **payload,
                    "from_status": from_status,
                    "channel_id": conversation.channel_id,
                    "customer_number": conversation.customer_number,
                    "contact_id": conversation.contact_id,
                    "occurred_at": now.isoformat().replace("+00:00", "Z"),
                },
            )
        ],
    )
    return event
