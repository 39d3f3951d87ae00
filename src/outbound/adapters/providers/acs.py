"""Azure Communication Services SMS: HMAC-SHA256 signed sends, repeatable per recipient.

Each send carries ``repeatabilityRequestId`` (derived from our message id) and
``repeatabilityFirstSent`` (the message's first attempt), so a retry after a lost response is
answered with the first outcome instead of a second SMS. ACS tracks a repeatable request for 5
minutes and refuses one whose first-sent time is older (412, "unsafe to re-execute"): a retry
later than ``REPEATABLE_FOR`` after the first attempt says it was first sent now, under the
same id, so that it is sent (and still answered with the first result while ACS remembers the
id) instead of failing. Delivery reports and inbound messages arrive through Event Grid.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

from outbound.adapters.providers.base import (
    InboundReport,
    OutgoingMessage,
    ProviderAdapter,
    ProviderDeps,
    SendResult,
    StatusReport,
    WebhookAuth,
    WebhookEvents,
    WebhookReply,
)
from outbound.adapters.providers.http import (
    HttpClient,
    HttpProvider,
    HttpRequest,
    HttpResponse,
)
from outbound.clock import Clock
from outbound.domain.statuses import MessageStatus
from outbound.errors import CredentialsError, PermanentProviderError, TransientProviderError

__all__ = [
    "ACS_API_VERSION",
    "ADAPTER",
    "REPEATABLE_FOR",
    "AcsProvider",
    "acs_authorization",
    "parse_event_grid",
    "repeatability_id",
]

ACS_API_VERSION = "2021-03-07"
USER_AGENT = "outbound/0.1 (acs adapter)"
_REPEATABILITY_NAMESPACE = uuid.UUID("0b8f3f44-83f5-4a55-9a6d-39cbbdb8a0d4")
# ACS tracks repeatable requests 5 minutes; a first-sent time this old is renewed, with a
# margin for the clocks and for the request's own time on the way.
REPEATABLE_FOR = timedelta(minutes=4)


def repeatability_id(message_id: str) -> str:
    """A stable GUID per message: every retry of one message carries the same id."""
    return str(uuid.uuid5(_REPEATABILITY_NAMESPACE, message_id))


def acs_authorization(
    access_key: str, *, method: str, path_and_query: str, host: str, date: str, body: bytes
) -> dict[str, str]:
    """The ``x-ms-date``, ``x-ms-content-sha256`` and ``Authorization`` headers."""
    content_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
    string_to_sign = f"{method}\n{path_and_query}\n{date};{host};{content_hash}"
    key = base64.b64decode(access_key, validate=True)
    signature = base64.b64encode(
        hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    ).decode()
    return {
        "x-ms-date": date,
        "x-ms-content-sha256": content_hash,
        "Authorization": (
            f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"
        ),
    }


class AcsProvider(HttpProvider):
    """Sends through ``POST {endpoint}/sms?api-version=2021-03-07``."""

    name = "acs"
    credential_fields: ClassVar[tuple[str, ...]] = ("access_key",)
    channel_types: ClassVar[frozenset[str]] = frozenset({"sms"})
    max_body: ClassVar[int] = 2048
    # Event Grid signs nothing.
    webhook_auth: ClassVar[WebhookAuth] = WebhookAuth.TOKEN

    def __init__(self, http: HttpClient, *, clock: Clock | None = None) -> None:
        super().__init__(http, clock=clock)

    @classmethod
    def create(cls, deps: ProviderDeps) -> AcsProvider:
        return cls(deps.http, clock=deps.clock)

    @staticmethod
    def parse_webhook(
        url: str, headers: Mapping[str, str], body: bytes, credentials: Mapping[str, str]
    ) -> WebhookEvents:
        return parse_event_grid(body)

    def build_request(self, message: OutgoingMessage) -> HttpRequest:
        channel = message.channel
        if not channel.base_url:
            raise PermanentProviderError("ACS channel has no endpoint", code="no_endpoint")
        endpoint = channel.base_url.rstrip("/")
        now = self.clock.now()
        first_sent = message.first_attempt_at or now
        if now - first_sent > REPEATABLE_FOR:
            first_sent = now
        payload = {
            "from": channel.sender,
            "smsRecipients": [
                {
                    "to": message.to,
                    "repeatabilityRequestId": repeatability_id(message.id),
                    "repeatabilityFirstSent": email.utils.format_datetime(first_sent, usegmt=True),
                }
            ],
            "message": message.body,
            "smsSendOptions": {"enableDeliveryReport": True, "tag": message.id},
        }
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        path_and_query = f"/sms?api-version={ACS_API_VERSION}"
        host = urlsplit(endpoint).netloc
        try:
            headers = acs_authorization(
                channel.credentials["access_key"],
                method="POST",
                path_and_query=path_and_query,
                host=host,
                date=email.utils.format_datetime(now, usegmt=True),
                body=body,
            )
        except (KeyError, binascii.Error, ValueError) as exc:
            raise CredentialsError(
                f"ACS access key unusable: {type(exc).__name__}", code="credentials"
            ) from exc
        headers.update(
            {
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
                "x-ms-client-request-id": str(uuid.uuid4()),
            }
        )
        return HttpRequest(method="POST", url=endpoint + path_and_query, headers=headers, body=body)

    def parse_response(self, message: OutgoingMessage, response: HttpResponse) -> SendResult:
        try:
            data: Any = json.loads(response.body or b"{}")
        except ValueError:
            data = {}
        if response.status == 202 and isinstance(data, dict):
            items = data.get("value") or []
            item = items[0] if items and isinstance(items[0], dict) else {}
            if item.get("successful") and item.get("messageId"):
                return SendResult(provider_message_id=str(item["messageId"]))
            status = int(item.get("httpStatusCode") or 500)
            text = str(item.get("errorMessage") or f"ACS refused the recipient ({status})")
            if status == 429 or status >= 500:
                raise TransientProviderError(text, code=str(status))
            raise PermanentProviderError(text, code=str(status))
        error = data.get("error") if isinstance(data, dict) else None
        code = str(error.get("code")) if isinstance(error, dict) and error.get("code") else None
        text = (
            str(error.get("message"))
            if isinstance(error, dict) and error.get("message")
            else f"ACS answered HTTP {response.status}"
        )
        raise self.transient_or_permanent(response, code, text)


VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
DELIVERY_EVENT = "Microsoft.Communication.SMSDeliveryReportReceived"
RECEIVED_EVENT = "Microsoft.Communication.SMSReceived"


def _field(data: dict[str, Any], name: str) -> Any:
    """Event data keys came in camelCase and PascalCase over time: match either."""
    lowered = name.lower()
    for key, value in data.items():
        if key.lower() == lowered:
            return value
    return None


def parse_event_grid(body: bytes) -> WebhookEvents:
    """Read an Event Grid delivery (a JSON array), answering the validation handshake.

    Event Grid signs nothing: the caller checks the secret token in the webhook URL first.
    """
    try:
        events: Any = json.loads(body)
    except ValueError:
        return WebhookEvents(reply=WebhookReply(status=400, body=b'{"error":"not JSON"}'))
    if isinstance(events, dict):
        events = [events]
    statuses: list[StatusReport] = []
    inbound: list[InboundReport] = []
    for event in events if isinstance(events, list) else []:
        if not isinstance(event, dict):
            continue
        kind = str(event.get("eventType") or "")
        raw_data = event.get("data")
        data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
        if kind == VALIDATION_EVENT:
            code = _field(data, "validationCode")
            reply = json.dumps({"validationResponse": code}).encode()
            return WebhookEvents(reply=WebhookReply(body=reply))
        if kind == DELIVERY_EVENT and _field(data, "messageId"):
            delivered = str(_field(data, "deliveryStatus") or "").lower() == "delivered"
            details = _field(data, "deliveryStatusDetails")
            statuses.append(
                StatusReport(
                    provider="acs",
                    provider_message_id=str(_field(data, "messageId")),
                    status=MessageStatus.DELIVERED if delivered else MessageStatus.UNDELIVERED,
                    error_code=None if delivered else str(_field(data, "deliveryStatus")),
                    error_message=None if delivered else (str(details) if details else None),
                    raw=event,
                )
            )
        elif kind == RECEIVED_EVENT and _field(data, "messageId"):
            sender = str(_field(data, "from") or "")
            inbound.append(
                InboundReport(
                    provider="acs",
                    provider_message_id=str(_field(data, "messageId")),
                    from_number=sender if sender.startswith("+") else f"+{sender}",
                    to_number=_field(data, "to"),
                    body=str(_field(data, "message") or ""),
                    raw=event,
                )
            )
    return WebhookEvents(statuses=statuses, inbound=inbound)


ADAPTER: type[ProviderAdapter] = AcsProvider
