"""Provider webhooks: verify, then feed delivery reports and inbound messages to their paths.

One URL per channel, ``/webhooks/{channel_id}``. Each adapter says how its calls are
authenticated (:class:`~outbound.adapters.providers.base.WebhookAuth`) and reads them: Twilio
and TeleSign calls are verified by their signatures in the adapter's parser; Event Grid (ACS)
signs nothing, so its URL carries the channel's secret token (``?token=``), checked here, as
does the sandbox's. A call that fails verification stores nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import logging
import time
from collections.abc import Mapping
from typing import Any

import anyio.to_thread

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Channel
from outbound.adapters.providers.base import WebhookAuth, WebhookEvents, WebhookReply
from outbound.adapters.providers.registry import adapter_for
from outbound.adapters.secrets import SecretBox
from outbound.domain.texts import storable
from outbound.errors import NotFoundError, WebhookSignatureError
from outbound.services.inbound import InboundService
from outbound.services.statuses import StatusService
from outbound.texts import N_

__all__ = ["WEBHOOK_PATH_PREFIX", "WebhookService", "webhook_url"]

log = logging.getLogger(__name__)

WEBHOOK_PATH_PREFIX = "/webhooks/"
# New credentials take effect on webhooks within this many seconds.
CHANNEL_CACHE_SECONDS = 5.0
CHANNEL_CACHE_SIZE = 10_000


def webhook_url(public_base_url: str | None, channel_id: str, *, token: str | None = None) -> str:
    """The URL a provider calls for one channel, the one place it is written.

    Relative when the service has no public base URL; with ``token`` (the channel's secret, for
    providers that sign nothing) in its query.
    """
    url = (public_base_url or "").rstrip("/") + WEBHOOK_PATH_PREFIX + channel_id
    return url if token is None else f"{url}?token={token}"


def _token_ok(channel: Channel, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(channel.webhook_token, token or "")


def _log_unmatched(events: WebhookEvents, matched: list[bool]) -> None:
    for report, found in zip(events.statuses, matched, strict=True):
        if not found:
            log.info(
                "%s status report for unknown message %s",
                report.provider,
                report.provider_message_id,
            )


class WebhookService:
    """Verifies one webhook call for one channel, then hands on what it reports."""

    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        statuses: StatusService,
        inbound: InboundService,
    ) -> None:
        self._db = db
        self._secrets = secrets
        self._statuses = statuses
        self._inbound = inbound
        self._cache: dict[str, tuple[float, Channel, Mapping[str, str]]] = {}

    async def handle(
        self,
        channel_id: str,
        *,
        url: str,
        token: str | None,
        headers: Mapping[str, str],
        body: bytes,
    ) -> WebhookReply:
        """Verify one call, report its statuses, store its inbound messages; what to answer.

        ``url`` is the URL the provider called, as it signed it. Raises
        :class:`~outbound.errors.NotFoundError` (no such channel) or
        :class:`~outbound.errors.WebhookSignatureError` (refused), and then stores nothing.
        """
        # A known channel is checked right here (an HMAC over a small body); only a channel
        # not seen for a while is read from the database, in a thread.
        verified = self._verify_cached(channel_id, url, token, headers, body)
        if verified is None:
            verified = await anyio.to_thread.run_sync(
                self._verify, channel_id, url, token, headers, body
            )
        channel, events = verified
        if events.statuses:
            # Concurrent callbacks share write transactions (see StatusService.report).
            matched = await asyncio.gather(
                *(self._statuses.report(r, channel_id=channel.id) for r in events.statuses)
            )
            _log_unmatched(events, list(matched))
        if events.inbound:
            await anyio.to_thread.run_sync(self._receive, channel, events)
        return events.reply

    def _verify(
        self,
        channel_id: str,
        url: str,
        token: str | None,
        headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[Channel, WebhookEvents]:
        channel, credentials = self._channel(channel_id)
        return channel, self._verify_and_parse(channel, credentials, url, token, headers, body)

    def _verify_cached(
        self,
        channel_id: str,
        url: str,
        token: str | None,
        headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[Channel, WebhookEvents] | None:
        """As :meth:`_verify`, without I/O: ``None`` when the channel is not in the cache."""
        cached = self._cache.get(channel_id)
        if cached is None or cached[0] <= time.monotonic():
            return None
        channel, credentials = cached[1], cached[2]
        return channel, self._verify_and_parse(channel, credentials, url, token, headers, body)

    def _channel(self, channel_id: str) -> tuple[Channel, Mapping[str, str]]:
        """The channel and its credentials, cached briefly: providers call back in bursts
        (two callbacks per message), and each would otherwise read and decrypt them again."""
        if "\x00" in channel_id:  # no such id, and PostgreSQL text cannot even hold it
            raise NotFoundError(N_("no such webhook"))
        now = time.monotonic()
        cached = self._cache.get(channel_id)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        with self._db.read() as session:
            channel = session.get(Channel, channel_id)
        if channel is None:
            raise NotFoundError(N_("no such webhook"))
        credentials = (
            self._secrets.decrypt(channel.credentials_encrypted)
            if channel.credentials_encrypted
            else {}
        )
        if len(self._cache) > CHANNEL_CACHE_SIZE:
            self._cache.clear()
        self._cache[channel_id] = (now + CHANNEL_CACHE_SECONDS, channel, credentials)
        return channel, credentials

    def _receive(self, channel: Channel, events: WebhookEvents) -> None:
        for inbound in events.inbound:
            self._inbound.receive(channel, inbound)

    @staticmethod
    def _verify_and_parse(
        channel: Channel,
        credentials: Mapping[str, str],
        url: str,
        token: str | None,
        headers: Mapping[str, str],
        body: bytes,
    ) -> WebhookEvents:
        adapter = adapter_for(channel.provider)
        if adapter.webhook_auth is WebhookAuth.TOKEN and not _token_ok(channel, token):
            raise WebhookSignatureError("missing or wrong webhook token")
        return _storable(adapter.parse_webhook(url, headers, body, credentials))


def _storable(events: WebhookEvents) -> WebhookEvents:
    """What a provider sent, made storable: its callbacks cannot be refused (the customer's
    message would be lost), so NUL and half surrogate pairs are dropped or replaced instead."""

    def clean(report: Any) -> Any:
        changes = {}
        for f in dataclasses.fields(report):
            value = getattr(report, f.name)
            if isinstance(value, str | Mapping | list):
                made = storable(value)
                if made is not value and made != value:
                    changes[f.name] = made
        # A report that was storable already (nearly all) is kept as it is.
        return dataclasses.replace(report, **changes) if changes else report

    if not events.statuses and not events.inbound:
        return events
    statuses = [clean(r) for r in events.statuses]
    inbound = [clean(r) for r in events.inbound]
    kept = [*events.statuses, *events.inbound]
    if all(a is b for a, b in zip(statuses + inbound, kept, strict=True)):
        return events
    return dataclasses.replace(events, statuses=statuses, inbound=inbound)
