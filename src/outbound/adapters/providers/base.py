"""The provider port: what the dispatcher hands an adapter, and what it gets back.

An adapter only builds its request and parses the response; it raises
:class:`~outbound.errors.TransientProviderError` or
:class:`~outbound.errors.PermanentProviderError`, and the dispatcher decides nothing by
catching everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from outbound.domain.statuses import MessageStatus

__all__ = [
    "ChannelInfo",
    "InboundReport",
    "OutgoingMessage",
    "Provider",
    "SendResult",
    "StatusReport",
    "StatusReporter",
    "WebhookEvents",
    "WebhookReply",
]


@dataclass(frozen=True)
class ChannelInfo:
    """A channel as an adapter needs it, with decrypted credentials."""

    id: str
    org_id: str
    type: str
    provider: str
    sender: str
    base_url: str | None
    credentials: Mapping[str, str]
    options: Mapping[str, Any]
    healthy: bool = True
    rate_per_second: float | None = None


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to send, already rendered."""

    id: str
    org_id: str
    channel: ChannelInfo
    to: str
    body: str
    attempt: int
    send_as_template: bool = False
    template_parameters: Mapping[str, str] | None = None
    content_sid: str | None = None
    first_attempt_at: datetime | None = None


@dataclass(frozen=True)
class SendResult:
    """The provider accepted the message."""

    provider_message_id: str
    status: MessageStatus = MessageStatus.SENT
    segments: int | None = None


@dataclass(frozen=True)
class StatusReport:
    """A status the provider reports for one of our messages (delivery receipt)."""

    provider: str
    provider_message_id: str
    status: MessageStatus
    occurred_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InboundReport:
    """A message a customer sent, as a provider delivered it."""

    provider: str
    provider_message_id: str
    from_number: str
    to_number: str | None
    body: str
    raw: Mapping[str, Any] = field(default_factory=dict)
    received_at: datetime | None = None


@dataclass(frozen=True)
class WebhookReply:
    """What to answer the provider's webhook call with."""

    status: int = 200
    content_type: str = "application/json"
    body: bytes = b"{}"


@dataclass(frozen=True)
class WebhookEvents:
    """What one verified webhook call carried."""

    statuses: list[StatusReport] = field(default_factory=list)
    inbound: list[InboundReport] = field(default_factory=list)
    reply: WebhookReply = field(default_factory=WebhookReply)


class StatusReporter(Protocol):
    """Where delivery receipts go: the same path for webhooks and the sandbox."""

    async def report(self, report: StatusReport) -> bool:
        """Apply a report; False when no message matches (yet)."""
        ...


class Provider(Protocol):
    """A provider adapter."""

    name: str

    async def send(self, message: OutgoingMessage) -> SendResult:
        """Send one message or raise a ProviderError subclass."""
        ...

    async def aclose(self) -> None:
        """Release connections and background tasks."""
        ...
