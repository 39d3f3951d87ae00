"""What sending a claimed batch needs besides the messages: channels, fallbacks, windows.

Loaded once per batch, in one read session, after the claim has committed (a provider call
never waits on a transaction): the channels of the batch and of its configurations' fallbacks
with their decrypted credentials, the approved WhatsApp templates' content SIDs, the contact
windows checked again just before sending, and the messages whose number has withdrawn consent
on their channel since they were accepted (one query for the batch).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Channel, OutboundConfiguration, Recipient, Template
from outbound.adapters.providers.base import ChannelInfo
from outbound.adapters.queue.outbox import ClaimedMessage
from outbound.adapters.secrets import SecretBox
from outbound.domain.windows import ContactWindow

__all__ = ["SendContext", "load_channels", "load_send_context"]


@dataclass(frozen=True)
class SendContext:
    """The catalogue a claimed batch is sent with."""

    channels: Mapping[str, ChannelInfo]
    content_sids: Mapping[str, str | None]
    # configuration id → its healthy fallback channel
    fallbacks: Mapping[str, ChannelInfo]
    # configuration id → its contact window
    windows: Mapping[str, ContactWindow] = field(default_factory=dict)
    # ids of the messages whose number withdrew consent on the message's channel
    withdrawn: frozenset[str] = frozenset()


def load_send_context(
    db: Database, secrets: SecretBox, claimed: Sequence[ClaimedMessage]
) -> SendContext:
    """The context of ``claimed``: a fallback is left out unless its channel is healthy."""
    config_ids = {m.configuration_id for m in claimed if m.configuration_id}
    template_ids = {m.template_id for m in claimed if m.send_as_template}
    zoned = {m.configuration_id for m in claimed if m.configuration_id and m.time_zone}
    with db.read() as session:
        windows: dict[str, ContactWindow] = {}
        if zoned:
            for config_id, start, end, days in session.execute(
                sa.select(
                    OutboundConfiguration.id,
                    OutboundConfiguration.window_start,
                    OutboundConfiguration.window_end,
                    OutboundConfiguration.window_days,
                ).where(
                    OutboundConfiguration.id.in_(zoned),
                    OutboundConfiguration.window_start.is_not(None),
                )
            ):
                if start is not None and end is not None:
                    windows[config_id] = ContactWindow.parse(start, end, days)
        fallback_of = {
            row.id: row.fallback_channel_id
            for row in session.execute(
                sa.select(
                    OutboundConfiguration.id, OutboundConfiguration.fallback_channel_id
                ).where(
                    OutboundConfiguration.id.in_(config_ids),
                    OutboundConfiguration.fallback_channel_id.is_not(None),
                )
            )
        }
        channel_ids = {m.channel_id for m in claimed} | set(fallback_of.values())
        channels = list(
            session.execute(sa.select(Channel).where(Channel.id.in_(channel_ids))).scalars()
        )
        withdrawn = _withdrawn(session, claimed)
        sids = {
            row.id: row.content_sid
            for row in session.execute(
                sa.select(Template.id, Template.content_sid).where(Template.id.in_(template_ids))
            )
        }
    infos = {c.id: _channel_info(c, secrets) for c in channels}
    fallbacks = {
        config_id: infos[channel_id]
        for config_id, channel_id in fallback_of.items()
        if channel_id in infos and infos[channel_id].healthy
    }
    return SendContext(
        channels=infos,
        content_sids=sids,
        fallbacks=fallbacks,
        windows=windows,
        withdrawn=withdrawn,
    )


def _withdrawn(session: Session, claimed: Sequence[ClaimedMessage]) -> frozenset[str]:
    """The claimed messages whose number has withdrawn consent on the message's channel."""
    numbers = {m.to_number for m in claimed}
    if not numbers:
        return frozenset()
    pairs = {
        (row.channel_id, row.number)
        for row in session.execute(
            sa.select(Recipient.channel_id, Recipient.number).where(
                Recipient.channel_id.in_({m.channel_id for m in claimed}),
                Recipient.number.in_(numbers),
                Recipient.opted_out.is_(True),
            )
        )
    }
    if not pairs:
        return frozenset()
    return frozenset(m.id for m in claimed if (m.channel_id, m.to_number) in pairs)


def load_channels(
    db: Database, secrets: SecretBox, channel_ids: Collection[str]
) -> dict[str, ChannelInfo]:
    """These channels (those that still exist) with their decrypted credentials, by id."""
    with db.read() as session:
        channels = list(
            session.execute(sa.select(Channel).where(Channel.id.in_(list(channel_ids)))).scalars()
        )
    return {c.id: _channel_info(c, secrets) for c in channels}


def _channel_info(channel: Channel, secrets: SecretBox) -> ChannelInfo:
    return ChannelInfo(
        id=channel.id,
        org_id=channel.org_id,
        type=channel.type,
        provider=channel.provider,
        sender=channel.sender,
        base_url=channel.base_url,
        credentials=secrets.decrypt(channel.credentials_encrypted)
        if channel.credentials_encrypted
        else {},
        options=dict(channel.options or {}),
        healthy=channel.healthy,
        rate_per_second=channel.rate_per_second,
    )
