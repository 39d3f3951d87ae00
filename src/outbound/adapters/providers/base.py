"""The provider port: what the dispatcher hands an adapter, and what it gets back.

An adapter only builds its request and parses the response; it raises
:class:`~outbound.errors.TransientProviderError` or
:class:`~outbound.errors.PermanentProviderError`, and the dispatcher decides nothing by
catching everything.

An adapter class is also where everything about its provider is written down
(:class:`ProviderAdapter`): the credentials a channel needs, the channel types it offers, its
body limit, how its webhook calls are authenticated and how they read. Services learn these
from :mod:`outbound.adapters.providers.registry`, never from a list of provider names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from outbound.domain.statuses import MessageStatus

if TYPE_CHECKING:
    from outbound.adapters.providers.http import HttpClient
    from outbound.clock import Clock
    from outbound.config import Settings

__all__ = [
    "ChannelInfo",
    "InboundReport",
    "OutgoingMessage",
    "Provider",
    "ProviderAdapter",
    "ProviderDeps",
    "SendLookup",
    "SendResult",
    "StatusLookup",
    "StatusReport",
    "StatusReporter",
    "WebhookAuth",
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


@runtime_checkable
class SendLookup(Protocol):
    """A provider whose sends can be found again: the dispatcher asks it, before sending a
    message again whose earlier attempt has an unknown outcome (its worker died), whether that
    attempt was accepted."""

    async def find_sent(self, message: OutgoingMessage, since: datetime) -> list[str] | None:
        """The provider ids of the messages it accepted for ``message`` (same recipient,
        sender and text) since ``since``, oldest first; ``None`` when such a message cannot
        be told apart (a template send); a ProviderError subclass when the look-up failed."""
        ...


@runtime_checkable
class StatusLookup(Protocol):
    """A provider that answers what became of one message it accepted (Twilio, TeleSign).

    Status callbacks are not retried by every provider: a report that arrives while the
    service is down is lost, and the message would stay ``sent``. The status checks
    (:mod:`outbound.services.status_checks`) ask such providers instead.
    """

    name: str

    async def fetch_status(
        self, channel: ChannelInfo, provider_message_id: str
    ) -> StatusReport | None:
        """The message's final status as a report (as its callback would have made it), or
        ``None`` while the provider has none yet.

        Raises a :class:`~outbound.errors.ProviderError` like a send: transient when the
        provider could not answer, permanent when it does not know the message (404).
        """
        ...


class WebhookAuth(StrEnum):
    """How a provider's webhook calls prove that they come from it."""

    SIGNATURE = "signature"
    """Each call is signed with the channel's credentials; the adapter's parser checks it."""
    TOKEN = "token"
    """The provider signs nothing: the channel's webhook URL carries its secret token."""


@dataclass(frozen=True)
class ProviderDeps:
    """What the composition root builds every adapter from (see :meth:`ProviderAdapter.create`)."""

    http: HttpClient
    clock: Clock
    reporter: StatusReporter
    settings: Settings
    status_callback: Callable[[str], str | None]
    """A channel id's webhook URL, for providers told where to report; None without one."""


class ProviderAdapter(Provider, Protocol):
    """An adapter class, with all that outbound knows of its provider.

    One module of :mod:`outbound.adapters.providers` per provider sets ``ADAPTER`` to its
    class; the registry finds it there. The facts are class attributes, read without an
    instance, so that a test double standing in for the adapter changes none of them.
    """

    credential_fields: ClassVar[tuple[str, ...]]
    """The credentials a channel on this provider cannot do without."""
    channel_types: ClassVar[frozenset[str]]
    """The channel types the provider offers: ``sms``, ``whatsapp``."""
    max_body: ClassVar[int]
    """The longest message body, in characters, the provider takes."""
    webhook_auth: ClassVar[WebhookAuth]
    """How its webhook calls are authenticated."""

    @classmethod
    def create(cls, deps: ProviderDeps) -> Provider:
        """The adapter the service sends through."""
        ...

    @staticmethod
    def parse_webhook(
        url: str, headers: Mapping[str, str], body: bytes, credentials: Mapping[str, str]
    ) -> WebhookEvents:
        """Read one webhook call made to ``url`` (as the provider called it).

        A signing provider's parser checks the signature with the channel's ``credentials``
        and raises :class:`~outbound.errors.WebhookSignatureError` when it does not match;
        a token provider's call has had its token checked already.
        """
        ...
