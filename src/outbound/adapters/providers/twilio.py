"""Twilio Programmable Messaging: SMS and WhatsApp, status callbacks and inbound webhooks.

No idempotency key exists on Twilio's create call: a send whose response is lost (timeout,
dropped connection) is retried and may reach the handset twice. That window is the request
timeout; see docs/architecture.md. A send whose worker died before recording it is looked up
in the Messages list before it is sent again (:meth:`TwilioProvider.find_sent`).
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

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
from outbound.errors import CredentialsError, RecipientOptedOutError, WebhookSignatureError

__all__ = [
    "ADAPTER",
    "TWILIO_API_BASE",
    "TWILIO_STATUS_MAP",
    "TwilioProvider",
    "form_pairs",
    "parse_twilio_webhook",
    "status_from_callback",
    "status_from_resource",
    "twilio_signature",
    "verify_twilio_signature",
]

TWILIO_API_BASE = "https://api.twilio.com"
USER_AGENT = "outbound/0.1 (twilio adapter)"

# The look-up of a send of unknown outcome: pages of this many messages, at most this many
# pages; Twilio's dates have whole seconds and its clock is not ours.
LOOKUP_PAGE_SIZE = 100
LOOKUP_MAX_PAGES = 5
LOOKUP_CLOCK_SKEW = timedelta(seconds=5)

CREDENTIAL_CODES = frozenset({"20003"})
TRANSIENT_CODES = frozenset({"20429", "21611"})
OPTED_OUT_CODES = frozenset({"21610"})

# Callback statuses → ours; "accepted"/"queued"/"sending"/"scheduled" add nothing we track.
TWILIO_STATUS_MAP: dict[str, MessageStatus] = {
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.CANCELED,
}


def _address(channel_type: str, number: str) -> str:
    return f"whatsapp:{number}" if channel_type == "whatsapp" else number


class TwilioProvider(HttpProvider):
    """Sends through ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``."""

    name = "twilio"
    # An API key pair (api_key_sid, api_key_secret) may stand in for the auth token when
    # sending, but webhooks are signed with the auth token: it is required.
    credential_fields: ClassVar[tuple[str, ...]] = ("account_sid", "auth_token")
    channel_types: ClassVar[frozenset[str]] = frozenset({"sms", "whatsapp"})
    max_body: ClassVar[int] = 1600
    webhook_auth: ClassVar[WebhookAuth] = WebhookAuth.SIGNATURE

    def __init__(
        self,
        http: HttpClient,
        *,
        status_callback: Callable[[str], str | None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(http, clock=clock)
        self._status_callback = status_callback or (lambda _channel_id: None)

    @classmethod
    def create(cls, deps: ProviderDeps) -> TwilioProvider:
        return cls(deps.http, status_callback=deps.status_callback, clock=deps.clock)

    @staticmethod
    def parse_webhook(
        url: str, headers: Mapping[str, str], body: bytes, credentials: Mapping[str, str]
    ) -> WebhookEvents:
        return parse_twilio_webhook(url, headers, body, credentials["auth_token"])

    def build_request(self, message: OutgoingMessage) -> HttpRequest:
        channel = message.channel
        credentials = channel.credentials
        try:
            account_sid = credentials["account_sid"]
            user = credentials.get("api_key_sid") or account_sid
            password = credentials.get("api_key_secret") or credentials["auth_token"]
        except KeyError as exc:
            raise CredentialsError(f"missing Twilio credential {exc}", code="credentials") from exc
        base = (channel.base_url or TWILIO_API_BASE).rstrip("/")
        fields: list[tuple[str, str]] = [("To", _address(channel.type, message.to))]
        if channel.sender.startswith("MG"):
            fields.append(("MessagingServiceSid", channel.sender))
        else:
            fields.append(("From", _address(channel.type, channel.sender)))
        if message.send_as_template and message.content_sid:
            fields.append(("ContentSid", message.content_sid))
            fields.append(("ContentVariables", json.dumps(dict(message.template_parameters or {}))))
        else:
            fields.append(("Body", message.body))
        callback = self._status_callback(channel.id)
        if callback:
            fields.append(("StatusCallback", callback))
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return HttpRequest(
            method="POST",
            url=f"{base}/2010-04-01/Accounts/{account_sid}/Messages.json",
            headers={
                "Authorization": f"Basic {token}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "Accept-Charset": "utf-8",
                "User-Agent": USER_AGENT,
            },
            body=urlencode(fields).encode(),
        )

    def parse_response(self, message: OutgoingMessage, response: HttpResponse) -> SendResult:
        try:
            data = json.loads(response.body or b"{}")
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if 200 <= response.status < 300 and data.get("sid"):
            segments = str(data.get("num_segments") or "")
            return SendResult(
                provider_message_id=str(data["sid"]),
                segments=int(segments) if segments.isdigit() and segments != "0" else None,
            )
        code = str(data["code"]) if data.get("code") is not None else None
        text = str(data.get("message") or f"Twilio answered HTTP {response.status}")
        if code in OPTED_OUT_CODES:
            raise RecipientOptedOutError(text, code=code)
        raise self.transient_or_permanent(
            response,
            code,
            text,
            credentials_codes=CREDENTIAL_CODES,
            transient_codes=TRANSIENT_CODES,
        )

    async def find_sent(self, message: OutgoingMessage, since: datetime) -> list[str] | None:
        """Twilio's messages to the same address, from the same sender, with the same body,
        created since ``since``: ``GET .../Messages.json?To=&From=&DateSent>=&PageSize=``,
        newest first, following ``next_page_uri`` until a message older than ``since``."""
        if message.send_as_template and message.content_sid:
            # Twilio stores the template's rendering, which the body need not equal.
            return None
        channel = message.channel
        account_sid, authorization = _basic_auth(channel.credentials)
        base = (channel.base_url or TWILIO_API_BASE).rstrip("/")
        service = channel.sender if channel.sender.startswith("MG") else None
        params = [("To", _address(channel.type, message.to))]
        if service is None:
            params.append(("From", _address(channel.type, channel.sender)))
        # DateSent filters by day (UTC): the creation time is checked below.
        params.append(("DateSent>", since.astimezone(UTC).date().isoformat()))
        params.append(("PageSize", str(LOOKUP_PAGE_SIZE)))
        url = f"{base}/2010-04-01/Accounts/{account_sid}/Messages.json?{urlencode(params)}"
        headers = {"Authorization": authorization, "Accept": "application/json"}
        headers["User-Agent"] = USER_AGENT
        earliest = since - LOOKUP_CLOCK_SKEW
        found: list[str] = []
        for _ in range(LOOKUP_MAX_PAGES):
            response = await self.http.request(HttpRequest("GET", url, headers))
            data = _json_object(response.body)
            if not 200 <= response.status < 300:
                raise self.transient_or_permanent(
                    response,
                    str(data["code"]) if data.get("code") is not None else None,
                    str(data.get("message") or f"Twilio answered HTTP {response.status}"),
                    credentials_codes=CREDENTIAL_CODES,
                    transient_codes=TRANSIENT_CODES,
                )
            older = False
            for item in data.get("messages") or []:
                created = _rfc2822(item.get("date_created"))
                if created is None or created < earliest:
                    older = True
                    continue
                if (
                    item.get("direction") == "outbound-api"
                    and item.get("body") == message.body
                    and (service is None or item.get("messaging_service_sid") == service)
                    and item.get("sid")
                ):
                    found.append(str(item["sid"]))
            next_uri = data.get("next_page_uri")
            if older or not next_uri:
                break
            url = f"{base}{next_uri}"
        return found[::-1]

    async def fetch_status(
        self, channel: ChannelInfo, provider_message_id: str
    ) -> StatusReport | None:
        """``GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json``: the Message
        resource, whose ``status`` and ``error_code`` are read as a status callback's."""
        account_sid, authorization = _basic_auth(channel.credentials)
        base = (channel.base_url or TWILIO_API_BASE).rstrip("/")
        sid = quote(provider_message_id, safe="")
        response = await self.http.request(
            HttpRequest(
                method="GET",
                url=f"{base}/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
                headers={
                    "Authorization": authorization,
                    "Accept": "application/json",
                    "Accept-Charset": "utf-8",
                    "User-Agent": USER_AGENT,
                },
            )
        )
        data = _json_object(response.body)
        if 200 <= response.status < 300 and data.get("sid"):
            return status_from_resource(data)
        code = str(data["code"]) if data.get("code") is not None else None
        text = str(data.get("message") or f"Twilio answered HTTP {response.status}")
        raise self.status_error(response, code, text, credentials_codes=CREDENTIAL_CODES)


def status_from_resource(resource: Mapping[str, Any]) -> StatusReport | None:
    """A Message resource's status as the report its callback carries; ``None`` while it has
    none we track beyond ``sent`` (``queued``, ``sending``, ``sent``...)."""
    status = TWILIO_STATUS_MAP.get(str(resource.get("status") or "").lower())
    if status is None or status is MessageStatus.SENT:
        return None
    failed = status in (MessageStatus.FAILED, MessageStatus.UNDELIVERED)
    raw_code = resource.get("error_code")
    error_code = str(raw_code) if failed and raw_code not in (None, "") else None
    error_message = None
    if error_code is not None:
        error_message = str(resource.get("error_message") or f"Twilio error {error_code}")
    updated = _rfc2822(resource.get("date_updated"))
    return StatusReport(
        provider="twilio",
        provider_message_id=str(resource["sid"]),
        status=status,
        occurred_at=updated.astimezone(UTC) if updated and updated.tzinfo else None,
        error_code=error_code,
        error_message=error_message,
        raw=resource,
    )


def _basic_auth(credentials: Mapping[str, str]) -> tuple[str, str]:
    """The account SID and the ``Authorization`` header of a channel's credentials."""
    try:
        account_sid = credentials["account_sid"]
        user = credentials.get("api_key_sid") or account_sid
        password = credentials.get("api_key_secret") or credentials["auth_token"]
    except KeyError as exc:
        raise CredentialsError(f"missing Twilio credential {exc}", code="credentials") from exc
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return account_sid, f"Basic {token}"


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _rfc2822(value: object) -> datetime | None:
    """Twilio's dates (``Thu, 30 Jul 2015 20:12:31 +0000``), or None."""
    if not isinstance(value, str):
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def twilio_signature(url: str, params: Iterable[tuple[str, str]], auth_token: str) -> str:
    """``X-Twilio-Signature`` of a form-encoded request: HMAC-SHA1 over URL + sorted params."""
    grouped: dict[str, list[str]] = {}
    for name, value in params:
        grouped.setdefault(name, []).append(value)
    # Each distinct value once, as Twilio's own validators do.
    payload = url + "".join(
        name + value for name in sorted(grouped) for value in sorted(set(grouped[name]))
    )
    digest = hmac.digest(auth_token.encode(), payload.encode(), hashlib.sha1)
    return base64.b64encode(digest).decode()


def _port_variants(url: str) -> Iterator[str]:
    """Twilio signs with or without the port; accept the URL as is, with the scheme's default
    port added when it has none, and with its port removed -- like Twilio's own validator.
    The URL as is comes first, and the others are only made if it is not the one signed."""
    yield url
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    if parts.port is None and default and parts.hostname:
        yield urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}"))
    elif parts.port is not None and parts.hostname:
        yield urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0]))


def verify_twilio_signature(
    url: str, params: Iterable[tuple[str, str]], signature: str | None, auth_token: str
) -> bool:
    """Whether ``signature`` is Twilio's for this URL and form (constant-time compare)."""
    if not signature:
        return False
    items = list(params)
    return any(
        hmac.compare_digest(twilio_signature(candidate, items, auth_token), signature)
        for candidate in _port_variants(url)
    )


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    """Decode a form body keeping repeated names (their order does not matter for signing)."""
    # Undecodable bytes cannot be part of a valid signature: let the check refuse them.
    return parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)


def status_from_callback(form: Mapping[str, str]) -> MessageStatus | None:
    raw = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    return TWILIO_STATUS_MAP.get(raw)


EMPTY_TWIML = WebhookReply(
    content_type="text/xml",
    body=b'<?xml version="1.0" encoding="UTF-8"?><Response/>',
)


def parse_twilio_webhook(
    url: str, headers: Mapping[str, str], body: bytes, auth_token: str
) -> WebhookEvents:
    """Verify ``X-Twilio-Signature`` and read a status callback or an inbound message."""
    pairs = form_pairs(body)
    signature = {k.lower(): v for k, v in headers.items()}.get("x-twilio-signature")
    if not verify_twilio_signature(url, pairs, signature, auth_token):
        raise WebhookSignatureError("X-Twilio-Signature does not match")
    form = dict(pairs)
    sid = form.get("MessageSid") or form.get("SmsSid") or form.get("SmsMessageSid")
    if not sid:
        return WebhookEvents(reply=EMPTY_TWIML)
    inbound = (form.get("SmsStatus") or "").lower() == "received" or (
        "Body" in form and "MessageStatus" not in form
    )
    if inbound:
        report = InboundReport(
            provider="twilio",
            provider_message_id=sid,
            from_number=form.get("From", ""),
            to_number=form.get("To"),
            body=form.get("Body", ""),
            raw=form,
        )
        return WebhookEvents(inbound=[report], reply=EMPTY_TWIML)
    status = status_from_callback(form)
    if status is None:
        return WebhookEvents(reply=EMPTY_TWIML)
    error_code = form.get("ErrorCode") or None
    return WebhookEvents(
        statuses=[
            StatusReport(
                provider="twilio",
                provider_message_id=sid,
                status=status,
                error_code=error_code,
                error_message=form.get("ErrorMessage")
                or (f"Twilio error {error_code}" if error_code else None),
                raw=form,
            )
        ],
        reply=EMPTY_TWIML,
    )


ADAPTER: type[ProviderAdapter] = TwilioProvider
