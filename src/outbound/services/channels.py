"""Channels: provisioned senders with write-only, encrypted credentials."""

from __future__ import annotations

import re
from collections.abc import Collection
from secrets import token_urlsafe
from typing import Any

import phonenumbers
import sqlalchemy as sa

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Channel, OutboundConfiguration
from outbound.adapters.providers.base import WebhookAuth
from outbound.adapters.providers.registry import adapter_for
from outbound.adapters.secrets import SecretBox
from outbound.clock import Clock
from outbound.domain.channels import ChannelType
from outbound.domain.numbers import normalize_number
from outbound.errors import (
    ConflictError,
    InvalidNumberError,
    InvalidRequestError,
    NotFoundError,
    SecretKeyError,
)
from outbound.schemas import ChannelCreate, ChannelOut, ChannelUpdate, Page
from outbound.services.audit import diff, record_audit, snapshot
from outbound.services.auth import Principal
from outbound.services.outbound_text import queue_text_message
from outbound.services.pagination import fetch_page
from outbound.services.webhooks import webhook_url
from outbound.texts import N_

__all__ = [
    "ChannelService",
    "channel_out",
]

_ALPHANUMERIC_SENDER_MAX = 11
_CHANNEL_TYPE_NAMES = {"sms": "SMS", "whatsapp": "WhatsApp"}


def channel_out(channel: Channel, public_base_url: str | None = None) -> ChannelOut:
    """A channel as the API shows it: credentials hidden, its webhook URL spelled out."""
    by_token = adapter_for(channel.provider).webhook_auth is WebhookAuth.TOKEN
    token = channel.webhook_token if by_token else None
    return ChannelOut.model_validate(
        {
            **{c: getattr(channel, c) for c in ChannelOut.model_fields if hasattr(channel, c)},
            "has_credentials": channel.credentials_encrypted is not None,
            "credential_fields": list(channel.credential_fields or []),
            "webhook_url": webhook_url(public_base_url, channel.id, token=token),
        }
    )


_MESSAGING_SERVICE = re.compile(r"MG[0-9a-fA-F]{32}")
_AUDITED = (
    "name",
    "type",
    "provider",
    "sender",
    "base_url",
    "credential_fields",
    "options",
    "rate_per_second",
)


def _audited(channel: Channel) -> dict[str, Any]:
    """What the audit log compares; the credentials only by their ciphertext (never shown)."""
    return {**snapshot(channel, _AUDITED), "credentials": channel.credentials_encrypted}


def _normalise_sender(channel_type: str, sender: str, provider: str = "") -> str:
    """E.164 for numbers; SMS may also use an alphanumeric sender ID (1-11 characters), and a
    Twilio channel a Messaging Service SID (MG...)."""
    candidate = sender.strip()
    if provider == "twilio" and _MESSAGING_SERVICE.fullmatch(candidate):
        return candidate
    if candidate.startswith("+") or candidate.isdigit():
        try:
            parsed = phonenumbers.parse(candidate if candidate.startswith("+") else "+" + candidate)
        except phonenumbers.NumberParseException as exc:
            raise InvalidRequestError(
                N_("sender is not a valid phone number"), field="sender"
            ) from exc
        if not phonenumbers.is_possible_number(parsed):
            raise InvalidRequestError(N_("sender is not a valid phone number"), field="sender")
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if (
        channel_type == ChannelType.SMS
        and 1 <= len(candidate) <= _ALPHANUMERIC_SENDER_MAX
        and all(ch.isascii() and (ch.isalnum() or ch == " ") for ch in candidate)
        and any(ch.isalpha() for ch in candidate)
    ):
        return candidate
    raise InvalidRequestError(
        N_(
            "sender must be an E.164 number (+15551234567) or an alphanumeric sender ID of 1-11 "
            "characters"
        )
        if channel_type == "sms"
        else N_("sender must be an E.164 number (+15551234567)"),
        field="sender",
    )


def _check_credentials(provider: str, credentials: dict[str, str]) -> None:
    missing = [k for k in adapter_for(provider).credential_fields if not credentials.get(k)]
    if missing:
        raise InvalidRequestError(
            N_(
                "provider %(provider)r needs credentials: %(fields)s",
                provider=provider,
                fields=", ".join(missing),
            ),
            field=f"credentials.{missing[0]}",
        )


class ChannelService:
    """Create, read, update and delete an organisation's channels."""

    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        clock: Clock,
        available_providers: Collection[str],
        *,
        public_base_url: str | None = None,
    ) -> None:
        self._public = public_base_url
        self._db = db
        self._secrets = secrets
        self._clock = clock
        self._available = frozenset(available_providers)

    def create(
        self, org_id: str, data: ChannelCreate, *, by: Principal | None = None
    ) -> ChannelOut:
        if data.provider.value not in self._available:
            raise InvalidRequestError(
                N_(
                    "provider %(provider)r is not available in this version "
                    "(available: %(providers)s)",
                    provider=data.provider.value,
                    providers=", ".join(sorted(self._available)),
                ),
                field="provider",
            )
        if data.type.value not in adapter_for(data.provider.value).channel_types:
            offered = _CHANNEL_TYPE_NAMES.get(data.type.value, data.type.value)
            raise InvalidRequestError(
                N_(
                    "provider %(provider)r does not offer %(channel_type)s",
                    provider=data.provider.value,
                    channel_type=offered,
                ),
                field="provider",
            )
        if data.provider.value == "acs" and not data.base_url:
            raise InvalidRequestError(
                N_("an ACS channel needs base_url (the resource endpoint)"), field="base_url"
            )
        _check_credentials(data.provider.value, data.credentials)
        now = self._clock.now()
        channel = Channel(
            org_id=org_id,
            name=data.name,
            type=data.type.value,
            provider=data.provider.value,
            sender=_normalise_sender(data.type.value, data.sender, data.provider.value),
            base_url=data.base_url,
            credentials_encrypted=self._secrets.encrypt(data.credentials)
            if data.credentials
            else None,
            credential_fields=sorted(data.credentials),
            options=data.options,
            rate_per_second=data.rate_per_second,
            healthy=True,
            webhook_token=token_urlsafe(24),
            created_at=now,
            updated_at=now,
        )
        with self._db.transaction() as session:
            session.add(channel)
            session.flush()
            changes = diff({}, _audited(channel), secrets=["credentials"])
            record_audit(
                session, org_id, by, "channel.created", "channel", channel.id, now, changes=changes
            )
        return channel_out(channel, self._public)

    def _load(self, session: sa.orm.Session, org_id: str, channel_id: str) -> Channel:
        channel = session.execute(
            sa.select(Channel).where(Channel.id == channel_id, Channel.org_id == org_id)
        ).scalar_one_or_none()
        if channel is None:
            raise NotFoundError(N_("no channel %(channel)r", channel=channel_id))
        return channel

    def get(self, org_id: str, channel_id: str) -> ChannelOut:
        with self._db.read() as session:
            return channel_out(self._load(session, org_id, channel_id), self._public)

    def list(self, org_id: str, cursor: str | None, limit: int) -> Page[ChannelOut]:
        return fetch_page(
            self._db,
            sa.select(Channel).where(Channel.org_id == org_id),
            Channel.created_at,
            Channel.id,
            cursor,
            limit,
            lambda r: channel_out(r, self._public),
        )

    def update(
        self, org_id: str, channel_id: str, data: ChannelUpdate, *, by: Principal | None = None
    ) -> ChannelOut:
        with self._db.transaction() as session:
            channel = self._load(session, org_id, channel_id)
            before = _audited(channel)
            if data.name is not None:
                channel.name = data.name
            if data.sender is not None:
                channel.sender = _normalise_sender(channel.type, data.sender, channel.provider)
            if "base_url" in data.model_fields_set:
                if channel.provider == "acs" and not data.base_url:
                    raise InvalidRequestError(N_("an ACS channel needs base_url"), field="base_url")
                channel.base_url = data.base_url
            if data.credentials is not None:
                _check_credentials(channel.provider, data.credentials)
                channel.credentials_encrypted = (
                    self._secrets.encrypt(data.credentials) if data.credentials else None
                )
                channel.credential_fields = sorted(data.credentials)
                # New credentials deserve a new chance.
                channel.healthy = True
                channel.health_detail = None
            if data.options is not None:
                channel.options = data.options
            if "rate_per_second" in data.model_fields_set:
                channel.rate_per_second = data.rate_per_second
            channel.updated_at = now = self._clock.now()
            changes = diff(before, _audited(channel), secrets=["credentials"])
            record_audit(
                session, org_id, by, "channel.updated", "channel", channel.id, now, changes=changes
            )
        return channel_out(channel, self._public)

    def reencrypt_credentials(self) -> tuple[int, int]:
        """Re-encrypt every channel's credentials under the first secret key.

        Returns how many were re-encrypted and how many already were under that key. All or
        nothing: credentials that none of the keys opens leave every channel as it was.
        """
        rotated = current = 0
        by_org: dict[str, int] = {}
        with self._db.transaction() as session:
            channels = session.execute(
                self._db.for_update(
                    sa.select(Channel).where(Channel.credentials_encrypted.is_not(None))
                )
            ).scalars()
            for channel in channels:
                token = channel.credentials_encrypted or ""
                if self._secrets.is_current(token):
                    current += 1
                    continue
                try:
                    channel.credentials_encrypted = self._secrets.rotate(token)
                except SecretKeyError as exc:
                    raise SecretKeyError(
                        f"the credentials of channel {channel.id} open with none of the keys; "
                        "nothing was re-encrypted"
                    ) from exc
                rotated += 1
                by_org[channel.org_id] = by_org.get(channel.org_id, 0) + 1
            now = self._clock.now()
            for org_id, count in by_org.items():
                record_audit(
                    session,
                    org_id,
                    None,
                    "secret_key.rotated",
                    "secret_key",
                    None,
                    now,
                    changes={"channel_credentials_reencrypted": count},
                )
        return rotated, current

    def send_test(
        self,
        org_id: str,
        channel_id: str,
        to: str,
        text: str,
        *,
        default_region: str | None,
        max_attempts: int,
        user_id: str | None = None,
    ) -> str:
        """Queue ``text`` to ``to`` through the channel, as a test; returns the message id.

        The message goes through the outbox like any other (tracked, retried), with the
        reason ``channel_test``.
        """
        try:
            number = normalize_number(to, default_region)
        except InvalidNumberError as exc:
            raise InvalidRequestError(exc.reason, field="to") from exc
        if not text.strip():
            raise InvalidRequestError(N_("text must not be empty"), field="text")
        with self._db.transaction(urgent=True) as session:
            channel = self._load(session, org_id, channel_id)
            return queue_text_message(
                session,
                channel,
                number,
                text,
                reason="channel_test",
                now=self._clock.now(),
                max_attempts=max_attempts,
                sent_by_user_id=user_id,
            )

    def delete(self, org_id: str, channel_id: str, *, by: Principal | None = None) -> None:
        with self._db.transaction() as session:
            channel = self._load(session, org_id, channel_id)
            users = session.execute(
                sa.select(OutboundConfiguration.id, OutboundConfiguration.name).where(
                    sa.or_(
                        OutboundConfiguration.channel_id == channel.id,
                        OutboundConfiguration.fallback_channel_id == channel.id,
                    )
                )
            ).all()
            if users:
                names = ", ".join(f"{u.name} ({u.id})" for u in users)
                raise ConflictError(
                    N_(
                        "channel is used by outbound configurations: %(configurations)s",
                        configurations=names,
                    ),
                    code="channel_in_use",
                )
            changes = diff(_audited(channel), {}, secrets=["credentials"])
            record_audit(
                session,
                org_id,
                by,
                "channel.deleted",
                "channel",
                channel.id,
                self._clock.now(),
                changes=changes,
            )
            session.delete(channel)
