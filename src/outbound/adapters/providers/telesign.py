"""TeleSign SMS (Messaging API): HMAC-signed sends and signed delivery-report callbacks.

TeleSign offers no idempotency key: a send whose response is lost is retried and may arrive
twice. ``external_id`` carries our message id so that duplicates can be told apart.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import email.utils
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

from outbound.adapters.providers.base import (
    ChannelInfo,
    InboundReport,
    OutgoingMessage,
    ProviderAdapter,
    ProviderDeps,
    SendResult,
    StatusReport,
    WebhookAuth,
    WebhookEvents,
)
from outbound.adapters.providers.http import (
    HttpClient,
    HttpProvider,
    HttpRequest,
    HttpResponse,
)
from outbound.clock import Clock
from outbound.domain.statuses import MessageStatus
from outbound.errors import CredentialsError, WebhookSignatureError

__all__ = [
    "ADAPTER",
    "TELESIGN_API_BASE",
    "TeleSignProvider",
    "parse_telesign_webhook",
    "status_from_code",
    "status_report",
    "telesign_callback_signature",
    "telesign_signature",
    "verify_telesign_callback",
]

TELESIGN_API_BASE = "https://rest-ww.telesign.com"
RESOURCE = "/v1/messaging"
FORM = "application/x-www-form-urlencoded"
USER_AGENT = "outbound/0.1 (telesign adapter)"
# Accepted for delivery: in progress (290), delivered to gateway (203), delivered (200).
ACCEPTED_CODES = frozenset({200, 203, 290, 291, 292, 295})
PENDING_CODES = frozenset({203, 290, 291, 292, 295})
TEMPORARY_CODES = frozenset({210, 250, 251})
# TeleSign's documented authentication errors (sent with HTTP 401).
CREDENTIAL_CODES = frozenset(
    {
        "-30000",
        "-30004",
        "-30005",
        "-30006",
        "-30007",
        "-30009",
        "-30010",
        "-30011",
        "-30012",
        "-30015",
    }
)


def _key(api_key: str) -> bytes:
    # TeleSign's SDK decodes leniently (it drops characters outside the alphabet).
    return base64.b64decode(api_key + "=" * (-len(api_key) % 4), validate=False)


def telesign_signature(
    api_key: str,
    *,
    method: str,
    content_type: str,
    date: str,
    nonce: str,
    body: str,
    resource: str,
) -> str:
    """The ``TSA`` request signature (HMAC-SHA256 with the base64-decoded API key)."""
    parts = [method, content_type, date, "x-ts-auth-method:HMAC-SHA256", f"x-ts-nonce:{nonce}"]
    if content_type and body:
        parts.append(body)
    parts.append(resource)
    string_to_sign = "\n".join(parts)
    digest = hmac.new(_key(api_key), string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def telesign_callback_signature(api_key: str, body: bytes) -> str:
    """Signature of a callback: HMAC-SHA256 over the raw body only."""
    digest = hmac.new(_key(api_key), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_telesign_callback(
    api_key: str, customer_id: str, authorization: str | None, body: bytes
) -> bool:
    """Check ``Authorization``/``X-TS-Authorization: TSA {customer_id}:{signature}``."""
    if not authorization or not authorization.startswith("TSA "):
        return False
    claimed_customer, _, signature = authorization[4:].partition(":")
    if not hmac.compare_digest(claimed_customer.strip().lower(), customer_id.strip().lower()):
        return False
    try:
        expected = telesign_callback_signature(api_key, body)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(expected, signature.strip())


def _credentials(channel: ChannelInfo) -> tuple[str, str]:
    try:
        customer_id = channel.credentials["customer_id"]
        api_key = channel.credentials["api_key"]
        _key(api_key)
    except (KeyError, binascii.Error, ValueError) as exc:
        raise CredentialsError(
            f"TeleSign credentials unusable: {type(exc).__name__}", code="credentials"
        ) from exc
    return customer_id, api_key


def _json_object(response: HttpResponse) -> dict[str, Any]:
    try:
        data: Any = json.loads(response.body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _e164(number: str) -> str:
    digits = number.strip()
    return f"+{digits}" if digits.isdigit() else digits


def status_from_code(code: int) -> MessageStatus | None:
    """TeleSign status code → our status (None for intermediate codes)."""
    if code == 200:
        return MessageStatus.DELIVERED
    if code in PENDING_CODES:
        return None
    if code in TEMPORARY_CODES:
        return MessageStatus.UNDELIVERED
    return MessageStatus.FAILED


class TeleSignProvider(HttpProvider):
    """Sends through ``POST /v1/messaging`` with TeleSign's HMAC-SHA256 scheme."""

    name = "telesign"
    credential_fields: ClassVar[tuple[str, ...]] = ("customer_id", "api_key")
    channel_types: ClassVar[frozenset[str]] = frozenset({"sms"})
    max_body: ClassVar[int] = 1600
    webhook_auth: ClassVar[WebhookAuth] = WebhookAuth.SIGNATURE

    def __init__(
        self,
        http: HttpClient,
        *,
        status_callback: Callable[[str], str | None] | None = None,
        clock: Clock | None = None,
        nonce: Callable[[], str] | None = None,
    ) -> None:
        super().__init__(http, clock=clock)
        self._status_callback = status_callback or (lambda _channel_id: None)
        self._nonce = nonce or (lambda: str(uuid.uuid4()))

    @classmethod
    def create(cls, deps: ProviderDeps) -> TeleSignProvider:
        return cls(deps.http, status_callback=deps.status_callback, clock=deps.clock)

    @staticmethod
    def parse_webhook(
        url: str, headers: Mapping[str, str], body: bytes, credentials: Mapping[str, str]
    ) -> WebhookEvents:
        return parse_telesign_webhook(
            headers, body, credentials["customer_id"], credentials["api_key"]
        )

    def build_request(self, message: OutgoingMessage) -> HttpRequest:
        channel = message.channel
        customer_id, api_key = _credentials(channel)
        fields = [
            ("phone_number", message.to.lstrip("+")),
            ("message", message.body),
            ("message_type", str(channel.options.get("message_type", "ARN"))),
            ("external_id", message.id),
        ]
        if not channel.sender.startswith("+"):
            fields.append(("sender_id", channel.sender))
        callback = self._status_callback(channel.id)
        if callback:
            fields.append(("callback_url", callback))
        body = urlencode(fields)
        date = email.utils.format_datetime(self.clock.now(), usegmt=True)
        nonce = self._nonce()
        signature = telesign_signature(
            api_key,
            method="POST",
            content_type=FORM,
            date=date,
            nonce=nonce,
            body=body,
            resource=RESOURCE,
        )
        base = (channel.base_url or TELESIGN_API_BASE).rstrip("/")
        return HttpRequest(
            method="POST",
            url=base + RESOURCE,
            headers={
                "Authorization": f"TSA {customer_id}:{signature}",
                "Date": date,
                "Content-Type": FORM,
                "x-ts-auth-method": "HMAC-SHA256",
                "x-ts-nonce": nonce,
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
            body=body.encode("utf-8"),
        )

    def parse_response(self, message: OutgoingMessage, response: HttpResponse) -> SendResult:
        data = _json_object(response)
        status = data.get("status") if isinstance(data.get("status"), dict) else {}
        status_code = status.get("code") if isinstance(status, dict) else None
        reference = data.get("reference_id")
        if (
            200 <= response.status < 300
            and reference
            and isinstance(status_code, int)
            and status_code in ACCEPTED_CODES
        ):
            return SendResult(provider_message_id=str(reference))
        errors = data.get("errors") if isinstance(data.get("errors"), list) else []
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        code = first.get("code", status_code)
        text = str(
            first.get("description")
            or (status.get("description") if isinstance(status, dict) else None)
            or f"TeleSign answered HTTP {response.status}"
        )
        raise self.transient_or_permanent(
            response,
            str(code) if code is not None else None,
            text,
            credentials_codes=CREDENTIAL_CODES,
        )

    async def fetch_status(
        self, channel: ChannelInfo, provider_message_id: str
    ) -> StatusReport | None:
        """``GET /v1/messaging/{reference_id}``, signed like a send (no body, no content
        type): the message's ``status.code`` read as a delivery report's."""
        customer_id, api_key = _credentials(channel)
        resource = f"{RESOURCE}/{quote(provider_message_id, safe='')}"
        date = email.utils.format_datetime(self.clock.now(), usegmt=True)
        nonce = self._nonce()
        signature = telesign_signature(
            api_key,
            method="GET",
            content_type="",
            date=date,
            nonce=nonce,
            body="",
            resource=resource,
        )
        base = (channel.base_url or TELESIGN_API_BASE).rstrip("/")
        response = await self.http.request(
            HttpRequest(
                method="GET",
                url=base + resource,
                headers={
                    "Authorization": f"TSA {customer_id}:{signature}",
                    "Date": date,
                    "x-ts-auth-method": "HMAC-SHA256",
                    "x-ts-nonce": nonce,
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,
                },
            )
        )
        data = _json_object(response)
        if 200 <= response.status < 300 and data.get("reference_id"):
            report = status_report(data)
            if report is None:
                return None
            # When the provider's status changed: the delivery's time, not the look-up's.
            updated_on = data["status"].get("updated_on")
            return dataclasses.replace(report, occurred_at=_updated_on(updated_on))
        errors = data.get("errors") if isinstance(data.get("errors"), list) else []
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        code = first.get("code")
        text = str(first.get("description") or f"TeleSign answered HTTP {response.status}")
        raise self.status_error(
            response,
            str(code) if code is not None else None,
            text,
            credentials_codes=CREDENTIAL_CODES,
        )


def status_report(data: Mapping[str, Any]) -> StatusReport | None:
    """A delivery report's (or a status look-up's) body as a report; ``None`` for the codes of
    a message still on its way (203, 290...)."""
    raw_status = data.get("status")
    status_block: Mapping[str, Any] = raw_status if isinstance(raw_status, dict) else {}
    code = status_block.get("code")
    if not isinstance(code, int):
        return None
    status = status_from_code(code)
    if status is None:
        return None
    failed = status is not MessageStatus.DELIVERED
    return StatusReport(
        provider="telesign",
        provider_message_id=str(data["reference_id"]),
        status=status,
        error_code=str(code) if failed else None,
        error_message=str(status_block.get("description")) if failed else None,
        raw=data,
    )


def _updated_on(value: object) -> datetime | None:
    """``updated_on``, written in RFC 3339 or RFC 1123; ``None`` when unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def parse_telesign_webhook(
    headers: Mapping[str, str], body: bytes, customer_id: str, api_key: str
) -> WebhookEvents:
    """Verify a TeleSign callback and read a delivery report or an inbound (mo_sms) message."""
    lower = {k.lower(): v for k, v in headers.items()}
    authorization = lower.get("x-ts-authorization") or lower.get("authorization")
    if not verify_telesign_callback(api_key, customer_id, authorization, body):
        raise WebhookSignatureError("TeleSign callback signature does not match")
    try:
        data: Any = json.loads(body)
    except ValueError as exc:
        raise WebhookSignatureError("TeleSign callback is not JSON") from exc
    if not isinstance(data, dict) or not data.get("reference_id"):
        return WebhookEvents()
    reference = str(data["reference_id"])
    if data.get("sub_resource") == "mo_sms":
        raw_response = data.get("user_response")
        response: dict[str, Any] = raw_response if isinstance(raw_response, dict) else {}
        return WebhookEvents(
            inbound=[
                InboundReport(
                    provider="telesign",
                    provider_message_id=reference,
                    # TeleSign writes numbers as digits with the country code, without "+".
                    from_number=_e164(str(response.get("phone_number") or "")),
                    to_number=response.get("sender_id"),
                    body=str(response.get("mo_message") or ""),
                    raw=data,
                )
            ]
        )
    report = status_report(data)
    return WebhookEvents(statuses=[report] if report is not None else [])


ADAPTER: type[ProviderAdapter] = TeleSignProvider
