"""The sandbox provider: no account, no network; simulates acceptance and delivery.

It accepts every message, answers with a provider id derived from the message id (so a retried
send is the same provider message, as with a provider that offers idempotency), and after a
delay reports ``delivered`` -- or ``undelivered`` at the configured failure rate -- through the
same :class:`StatusReporter` the webhooks use. A channel's ``options`` may override
``delivery_delay`` (seconds) and ``failure_rate`` (0..1), and set ``send_latency`` (seconds the
simulated API call takes, like a provider across the internet).

Like Twilio and TeleSign it answers a status look-up (:meth:`SandboxProvider.fetch_status`):
a report it could not make (no message matched it, however often it tried) is kept and
given to the status checks; a message whose report is still to come has no status yet. It
knows only the messages this process sent: any other is unknown to it, as a provider's 404.

Its webhook (:func:`parse_sandbox_webhook`) lets the demo and tests play the customer and the
provider: the channel's URL carries its secret token, as the sandbox signs nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections.abc import Mapping
from typing import ClassVar

from outbound.adapters.providers.base import (
    ChannelInfo,
    InboundReport,
    OutgoingMessage,
    ProviderAdapter,
    ProviderDeps,
    SendResult,
    StatusReport,
    StatusReporter,
    WebhookAuth,
    WebhookEvents,
    WebhookReply,
)
from outbound.domain.statuses import MessageStatus
from outbound.errors import (
    PermanentProviderError,
    UnknownProviderMessageError,
    WebhookSignatureError,
)

__all__ = ["ADAPTER", "SANDBOX_UNDELIVERED_CODE", "SandboxProvider", "parse_sandbox_webhook"]

log = logging.getLogger(__name__)

SANDBOX_UNDELIVERED_CODE = "30003"  # Twilio's "unreachable destination handset", for realism
_NAMESPACE = uuid.UUID("6f1d9a8e-5d0b-4c55-9d5e-0c9a4cf2a611")
# A report can outrun the dispatcher's record of the send; try again a few times.
_REPORT_RETRIES = 20
_REPORT_RETRY_DELAY = 0.25


class SandboxProvider:
    """Simulated provider for demos and tests."""

    name = "sandbox"
    credential_fields: ClassVar[tuple[str, ...]] = ()
    channel_types: ClassVar[frozenset[str]] = frozenset({"sms", "whatsapp"})
    max_body: ClassVar[int] = 2000
    webhook_auth: ClassVar[WebhookAuth] = WebhookAuth.TOKEN

    def __init__(
        self,
        reporter: StatusReporter,
        *,
        delivery_delay: float = 0.5,
        failure_rate: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self._reporter = reporter
        self._delay = delivery_delay
        self._failure_rate = failure_rate
        self._rng = rng or random.Random()
        self._tasks: set[asyncio.Task[None]] = set()
        # Provider ids whose report is still to come, and the reports that matched nothing.
        self._coming: set[str] = set()
        self._unreported: dict[str, StatusReport] = {}

    @classmethod
    def create(cls, deps: ProviderDeps) -> SandboxProvider:
        return cls(
            deps.reporter,
            delivery_delay=deps.settings.sandbox_delivery_delay,
            failure_rate=deps.settings.sandbox_failure_rate,
        )

    @staticmethod
    def parse_webhook(
        url: str, headers: Mapping[str, str], body: bytes, credentials: Mapping[str, str]
    ) -> WebhookEvents:
        return parse_sandbox_webhook(body)

    async def send(self, message: OutgoingMessage) -> SendResult:
        if not message.body and not message.send_as_template:
            raise PermanentProviderError("empty message body", code="sandbox_empty_body")
        provider_id = "SBX" + uuid.uuid5(_NAMESPACE, message.id).hex
        options = message.channel.options
        delay = float(options.get("delivery_delay", self._delay))
        failure_rate = float(options.get("failure_rate", self._failure_rate))
        fails = self._rng.random() < failure_rate
        latency = float(options.get("send_latency", 0.0))
        if latency > 0:
            await asyncio.sleep(latency)
        self._coming.add(provider_id)
        task = asyncio.get_running_loop().create_task(self._report_later(provider_id, delay, fails))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return SendResult(provider_message_id=provider_id, status=MessageStatus.SENT)

    async def _report_later(self, provider_id: str, delay: float, fails: bool) -> None:
        await asyncio.sleep(delay)
        report = StatusReport(
            provider=self.name,
            provider_message_id=provider_id,
            status=MessageStatus.UNDELIVERED if fails else MessageStatus.DELIVERED,
            error_code=SANDBOX_UNDELIVERED_CODE if fails else None,
            error_message="sandbox: simulated delivery failure" if fails else None,
        )
        try:
            for _ in range(_REPORT_RETRIES):
                try:
                    if await self._reporter.report(report):
                        return
                except Exception:  # a report must never kill the loop; log and try again
                    log.exception("sandbox status report failed for %s", provider_id)
                await asyncio.sleep(_REPORT_RETRY_DELAY)
            log.warning("sandbox status report for %s matched no message", provider_id)
            self._unreported[provider_id] = report
        finally:
            self._coming.discard(provider_id)

    async def fetch_status(
        self, channel: ChannelInfo, provider_message_id: str
    ) -> StatusReport | None:
        """The report this process could not make for the message, ``None`` while it is
        still to come; a message it did not send is unknown."""
        report = self._unreported.get(provider_message_id)
        if report is not None:
            return report
        if provider_message_id in self._coming:
            return None
        raise UnknownProviderMessageError(
            f"the sandbox of this process did not send {provider_message_id}",
            code="sandbox_unknown_message",
        )

    async def drain(self) -> None:
        """Wait until every pending delivery report has been made."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)


def parse_sandbox_webhook(body: bytes) -> WebhookEvents:
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


ADAPTER: type[ProviderAdapter] = SandboxProvider
