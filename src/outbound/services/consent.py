"""Consent per number and channel, and the WhatsApp customer-service window.

Consent is withdrawn by STOP-style keywords, by a provider's "unsubscribed recipient" error and
by an admin (``PUT /v1/consent``), restored by START or an admin; each change is recorded with
its source, time and detail (the keyword, the error, the admin's note and who). Sends to a
withdrawn number are skipped (``consent_withdrawn``) even when the request says
``optin: true``, when accepted and again just before sending. :class:`ConsentService` reads a
number's consent and records an admin's change.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Channel, ConsentEvent, Recipient
from outbound.adapters.queue.webhooks import NewEvent, emit
from outbound.clock import Clock
from outbound.domain.channels import ChannelType
from outbound.domain.numbers import normalize_number
from outbound.domain.webhooks import CONSENT_CHANGED
from outbound.errors import InvalidNumberError, InvalidRequestError, NotFoundError
from outbound.schemas.consent import ConsentChange, ConsentChannel, ConsentOut, ConsentRecordIn
from outbound.texts import N_

__all__ = [
    "WHATSAPP_WINDOW",
    "ConsentService",
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
    actor: str | None = None,
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
            actor=actor,
        )
    )
    emit(
        session,
        [
            NewEvent(
                org_id=org_id,
                type=CONSENT_CHANGED,
                occurred_at=now,
                ordering_key=f"{channel_id}:{number}"[:64],
                data={
                    "channel_id": channel_id,
                    "number": number,
                    "action": "opt_out" if opted_out else "opt_in",
                    "opted_out": opted_out,
                    "source": source,
                    "detail": detail,
                    "occurred_at": now.isoformat().replace("+00:00", "Z"),
                },
            )
        ],
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


class ConsentService:
    """A number's consent on each channel of an organisation, and an admin's changes.

    Numbers are read in ``default_region`` when they have no country code.
    """

    def __init__(self, db: Database, clock: Clock, *, default_region: str) -> None:
        self._db = db
        self._clock = clock
        self._region = default_region

    def _number(self, raw: str, field: str) -> str:
        try:
            return normalize_number(raw, self._region)
        except InvalidNumberError as exc:
            raise InvalidRequestError(exc.reason, field=field) from exc

    def get(self, org_id: str, raw_number: str) -> ConsentOut:
        """The number's current state on every channel of the organisation, with history."""
        number = self._number(raw_number, "number")
        with self._db.read() as session:
            return self._read(session, org_id, number)

    def record(self, org_id: str, data: ConsentRecordIn, *, actor: str) -> ConsentOut:
        """Record consent given or withdrawn on one channel, or on every channel."""
        number = self._number(data.number, "number")
        now = self._clock.now()
        with self._db.transaction(urgent=True) as session:
            query = sa.select(Channel.id).where(Channel.org_id == org_id)
            if data.channel_id is not None:
                query = query.where(Channel.id == data.channel_id)
            channel_ids = list(session.execute(query.order_by(Channel.id)).scalars())
            if data.channel_id is not None and not channel_ids:
                raise NotFoundError(
                    N_("no channel %(channel)r", channel=data.channel_id), field="channel_id"
                )
            for channel_id in channel_ids:
                record_consent(
                    session,
                    org_id=org_id,
                    channel_id=channel_id,
                    number=number,
                    opted_out=data.state == "withdrawn",
                    source="admin",
                    detail=data.note,
                    now=now,
                    actor=actor,
                )
            session.flush()
            return self._read(session, org_id, number)

    @staticmethod
    def _read(session: Session, org_id: str, number: str) -> ConsentOut:
        channels = list(
            session.execute(
                sa.select(Channel).where(Channel.org_id == org_id).order_by(Channel.created_at)
            ).scalars()
        )
        recipients = {
            r.channel_id: r
            for r in session.execute(
                sa.select(Recipient).where(Recipient.org_id == org_id, Recipient.number == number)
            ).scalars()
        }
        history: dict[str, list[ConsentChange]] = {}
        for event in session.execute(
            sa.select(ConsentEvent)
            .where(ConsentEvent.org_id == org_id, ConsentEvent.number == number)
            .order_by(ConsentEvent.occurred_at, ConsentEvent.id)
        ).scalars():
            history.setdefault(event.channel_id, []).append(
                ConsentChange(
                    state="withdrawn" if event.action == "opt_out" else "given",
                    source=event.source,
                    detail=event.detail,
                    actor=event.actor,
                    occurred_at=event.occurred_at,
                )
            )
        out: list[ConsentChannel] = []
        for channel in channels:
            recipient = recipients.get(channel.id)
            out.append(
                ConsentChannel(
                    channel_id=channel.id,
                    channel_name=channel.name,
                    channel_type=ChannelType(channel.type),
                    state="withdrawn" if recipient is not None and recipient.opted_out else "given",
                    changed_at=recipient.consent_changed_at if recipient else None,
                    last_inbound_at=recipient.last_inbound_at if recipient else None,
                    history=history.get(channel.id, []),
                )
            )
        return ConsentOut(number=number, channels=out)
