"""Provider webhooks: verify, then feed delivery reports and inbound messages to their paths.

One URL per channel, ``/webhooks/{channel_id}``. Twilio and TeleSign calls are verified by
their signatures; Event Grid (ACS) signs nothing, so its URL carries the channel's secret
token (``?token=``), as does the sandbox's. A call that fails verification stores nothing.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from collections.abc import Mapping

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Channel
from outbound.adapters.providers import acs, telesign, twilio
from outbound.adapters.providers.base import (
    InboundReport,
    StatusReport,
    WebhookEvents,
    WebhookReply,
)
from outbound.adapters.secrets import SecretBox
from outbound.domain.statuses import MessageStatus
from outbound.errors import NotFoundError, WebhookSignatureError
from outbound.services.inbound import InboundService
from outbound.services.statuses import StatusService

__all__ = ["WebhookService", "log_unmatched"]

log = logging.getLogger(__name__)

# New credentials take effect on webhooks within this many seconds.
CHANNEL_CACHE_SECONDS = 5.0
CHANNEL_CACHE_SIZE = 10_000


def _token_ok(channel: Channel, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(channel.webhook_token, token or "")


def _sandbox_events(body: bytes) -> WebhookEvents:
    """The sandbox's own webhook: ``{"from", "body"}`` for an inbound message, or
    ``{"provider_message_id", "status"}`` for a status report (used by the demo and tests)."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise WebhookSignatureError("sandbox webhook body is not JSON") from exc
    if not isinstance(data, dict):
        return WebhookEvents()
    if data.get("from") and "body" in data:
        return WebhookEvents(
            inbound=[
                InboundReport(
                    provider="sandbox",
                    # Without an id each call is a new message (no deduplication).
                    provider_message_id=str(data.get("id") or f"SBXIN{uuid.uuid4().hex}"),
                    from_number=str(data["from"]),
                    to_number=data.get("to"),
                    body=str(data["body"]),
                    raw=data,
                )
            ]
        )
    if data.get("provider_message_id") and data.get("status"):
        try:
            status = MessageStatus(str(data["status"]))
        except ValueError:
            return WebhookEvents(reply=WebhookReply(status=400, body=b'{"error":"bad status"}'))
        return WebhookEvents(
            statuses=[
                StatusReport(
                    provider="sandbox",
                    provider_message_id=str(data["provider_message_id"]),
                    status=status,
                    error_code=data.get("error_code"),
                    error_message=data.get("error_message"),
                    raw=data,
                )
            ]
        )
    return WebhookEvents()


def log_unmatched(events: WebhookEvents, matched: list[bool]) -> None:
    for report, found in zip(events.statuses, matched, strict=True):
        if not found:
            log.info(
                "%s status report for unknown message %s",
                report.provider,
                report.provider_message_id,
            )


class WebhookService:
    """Verifies and applies one webhook call for one channel."""

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

    def verify(
        self,
        channel_id: str,
        *,
        url: str,
        token: str | None,
        headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[Channel, WebhookEvents]:
        """Raises NotFoundError (no channel) or WebhookSignatureError (refused: 403)."""
        channel, credentials = self._channel(channel_id)
        return channel, self._verify_and_parse(channel, credentials, url, token, headers, body)

    def verify_cached(
        self,
        channel_id: str,
        *,
        url: str,
        token: str | None,
        headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[Channel, WebhookEvents] | None:
        """As :meth:`verify`, without I/O: ``None`` when the channel is not in the cache."""
        cached = self._cache.get(channel_id)
        if cached is None or cached[0] <= time.monotonic():
            return None
        channel, credentials = cached[1], cached[2]
        return channel, self._verify_and_parse(channel, credentials, url, token, headers, body)

    def _channel(self, channel_id: str) -> tuple[Channel, Mapping[str, str]]:
        """The channel and its credentials, cached briefly: providers call back in bursts
        (two callbacks per message), and each would otherwise read and decrypt them again."""
        now = time.monotonic()
        cached = self._cache.get(channel_id)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        with self._db.read() as session:
            channel = session.get(Channel, channel_id)
        if channel is None:
            raise NotFoundError("no such webhook")
        credentials = (
            self._secrets.decrypt(channel.credentials_encrypted)
            if channel.credentials_encrypted
            else {}
        )
        if len(self._cache) > CHANNEL_CACHE_SIZE:
            self._cache.clear()
        self._cache[channel_id] = (now + CHANNEL_CACHE_SECONDS, channel, credentials)
        return channel, credentials

    def receive(self, channel: Channel, events: WebhookEvents) -> None:
        """Store the inbound messages of a verified call."""
        for inbound in events.inbound:
            self._inbound.receive(channel, inbound)

    def handle(
        self,
        channel_id: str,
        *,
        url: str,
        token: str | None,
        headers: Mapping[str, str],
        body: bytes,
    ) -> WebhookReply:
        """Verify and apply one call synchronously (status reports in one transaction)."""
        channel, events = self.verify(channel_id, url=url, token=token, headers=headers, body=body)
        if events.statuses:
            matched = self._statuses.apply_many(events.statuses, channel_id=channel.id)
            log_unmatched(events, matched)
        self.receive(channel, events)
        return events.reply

    @staticmethod
    def _verify_and_parse(
        channel: Channel,
        credentials: Mapping[str, str],
        url: str,
        token: str | None,
        headers: Mapping[str, str],
        body: bytes,
    ) -> WebhookEvents:
        if channel.provider == "twilio":
            return twilio.parse_twilio_webhook(url, headers, body, credentials["auth_token"])
        if channel.provider == "telesign":
            return telesign.parse_telesign_webhook(
                headers, body, credentials["customer_id"], credentials["api_key"]
            )
        if not _token_ok(channel, token):
            raise WebhookSignatureError("missing or wrong webhook token")
        if channel.provider == "acs":
            return acs.parse_event_grid(body)
        return _sandbox_events(body)
