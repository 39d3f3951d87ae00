"""Consent per number and channel, and the WhatsApp customer-service window.

Consent is withdrawn by STOP-style keywords and by a provider's "unsubscribed recipient" error,
restored by START; each change is recorded with its source and time. Later sends to a withdrawn
number are skipped (``opted_out``) even when the request says ``optin: true``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.models import ConsentEvent, Recipient

__all__ = [
    "WHATSAPP_WINDOW",
    "numbers_in_window",
    "opted_out_numbers",
    "record_consent",
    "touch_inbound",
]

WHATSAPP_WINDOW = timedelta(hours=24)


def _recipient(
    session: Session, org_id: str, channel_id: str, number: str, now: datetime
) -> Recipient:
    row = session.execute(
        sa.select(Recipient).where(Recipient.channel_id == channel_id, Recipient.number == number)
    ).scalar_one_or_none()
    if row is None:
        row = Recipient(
            org_id=org_id, channel_id=channel_id, number=number, opted_out=False, updated_at=now
        )
        session.add(row)
        session.flush()
    return row


def record_consent(
    session: Session,
    *,
    org_id: str,
    channel_id: str,
    number: str,
    opted_out: bool,
    source: str,
    detail: str | None,
    now: datetime,
) -> bool:
    """Set consent for a number on a channel; True when it changed (and was recorded)."""
    row = _recipient(session, org_id, channel_id, number, now)
    if row.opted_out == opted_out:
        return False
    row.opted_out = opted_out
    row.consent_changed_at = now
    row.updated_at = now
    session.add(
        ConsentEvent(
            org_id=org_id,
            channel_id=channel_id,
            number=number,
            action="opt_out" if opted_out else "opt_in",
            source=source,
            detail=detail,
            occurred_at=now,
        )
    )
    return True


def touch_inbound(
    session: Session, *, org_id: str, channel_id: str, number: str, now: datetime
) -> None:
    """Remember that the number wrote to us now (opens the WhatsApp window)."""
    row = _recipient(session, org_id, channel_id, number, now)
    row.last_inbound_at = now
    row.updated_at = now


def opted_out_numbers(session: Session, channel_id: str, numbers: Iterable[str]) -> set[str]:
    wanted = list(set(numbers))
    if not wanted:
        return set()
    return set(
        session.execute(
            sa.select(Recipient.number).where(
                Recipient.channel_id == channel_id,
                Recipient.number.in_(wanted),
                Recipient.opted_out.is_(True),
            )
        ).scalars()
    )


def numbers_in_window(
    session: Session, channel_id: str, numbers: Iterable[str], now: datetime
) -> set[str]:
    """Numbers that wrote to this channel within the last 24 hours."""
    wanted = list(set(numbers))
    if not wanted:
        return set()
    return set(
        session.execute(
            sa.select(Recipient.number).where(
                Recipient.channel_id == channel_id,
                Recipient.number.in_(wanted),
                Recipient.last_inbound_at >= now - WHATSAPP_WINDOW,
            )
        ).scalars()
    )
