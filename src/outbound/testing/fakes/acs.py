"""A fake Azure Communication Services SMS API, with the Event Grid side of it.

One module for one API: its size is this description and ACS's own rules (HMAC
authentication, per-recipient validation and repeatability, Event Grid events); what it shares
with the other fakes (lifecycle, request capture, faults, callbacks) is in :mod:`.base`.

Serves what ACS does for SMS (wire facts: shared docs ``providers.md`` §D):

- ``POST /sms?api-version=2021-03-07``: JSON ``{"from", "smsRecipients": [{"to",
  "repeatabilityRequestId", "repeatabilityFirstSent"}], "message", "smsSendOptions":
  {"enableDeliveryReport", "tag"}}``, answered **202** with ``{"value": [{"to", "messageId",
  "httpStatusCode", "repeatabilityResult", "successful", "errorMessage"}]}`` per recipient
  (the batch is 202 even when some recipients fail).
- HMAC-SHA256 authentication checked by the fake: ``x-ms-date`` (or ``Date``) within 15 minutes
  of the fake's clock, ``x-ms-content-sha256`` = Base64(SHA-256(body)), and ``Authorization:
  HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=<sig>`` with sig =
  Base64(HMAC-SHA256(base64-decode(access key), VERB\\npath_and_query\\n<signed header values
  joined by ";">)); ``host`` is the ``Host`` header as the client sent it (port included).
  Failures answer 401 ``{"error": {"code": "Denied", "message": ...}}``.
- Per-recipient repeatability: the same ``repeatabilityRequestId`` within 5 minutes returns the
  stored result (same ``messageId``, ``repeatabilityResult: "accepted"``) without sending again.

Event Grid: delivery reports (when ``enableDeliveryReport`` is true) and inbound messages are
POSTed to ``subscription_url`` as one-element JSON arrays in the Event Grid schema with headers
``aeg-event-type: Notification`` and ``aeg-subscription-name``;
:meth:`FakeACS.validate_subscription` runs the ``SubscriptionValidation`` handshake. Event Grid
signs nothing: ACS webhooks are protected by checking ``aeg-subscription-name`` and a secret
token in the webhook URL's query string, so ``subscription_url`` is used exactly as given,
query string included.

Assumptions where ``providers.md`` is silent:

- Request-level 400s (malformed JSON, ``from`` missing, 0 or more than 100 recipients, a
  recipient without ``to``, ``message`` missing or over 2048 characters, ``smsSendOptions``
  without a boolean ``enableDeliveryReport``, non-string ``tag``, ``from`` not in
  ``sender_numbers`` when that set is given) answer ``{"error": {"code": "BadRequest",
  "message": ...}}``; an api-version other than 2021-03-07 answers 400 with code
  ``UnsupportedApiVersion``; faults use ``TooManyRequests``, ``InternalServerError``,
  ``ServiceUnavailable``... as codes.
- A ``to`` that is not E.164 (``+`` and 7-15 digits) or is in ``invalid_numbers`` fails only its
  item: ``httpStatusCode`` 400, ``successful`` false, ``errorMessage``, no ``messageId``.
- Repeatability: the id must be a 36-character UUID and the first-sent time an RFC 1123 date,
  both present or both absent, else the item is 400/``rejected``; a first-sent time more than
  5 minutes old (or ahead) gives 412/``rejected``, the generic ACS rule; the same id with a
  different from/to/message/options gives 400/``rejected``. Results are kept 5 minutes.
- Message ids look like the real ones: ``Outgoing_<yyyymmddHHMMSS><uuid>_noam``
  (``Incoming_...`` for inbound).
- Event data uses camelCase keys and ``Tag`` (as the current doc sample); ``key_style="pascal"``
  switches to the older PascalCase keys. ``from`` is sent without ``+`` (as in the samples),
  ``to`` with it. The subscription name is sent upper-case (as Event Grid does).
- Event Grid accepts any 2xx; failed deliveries are retried after ``callback_retry_delays``
  (default 10, 30, 60 s; real Event Grid backs off for up to 24 h). ``aeg-delivery-count`` is
  not sent. Deliveries do not wait for the subscription to be validated.
- Bearer (Entra ID) tokens are refused like a bad signature.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Unpack

from aiohttp import web

from outbound.testing.fakes.base import (
    CallbackResult,
    FakeProviderServer,
    ServerOptions,
    format_rfc3339,
    parse_http_date,
    sms_segments,
)

__all__ = [
    "DEFAULT_ACCESS_KEY",
    "AcsMessage",
    "FakeACS",
    "acs_content_hash",
    "acs_signature",
    "acs_string_to_sign",
]

DEFAULT_ACCESS_KEY = base64.b64encode(b"fake-acs-access-key-0123456789ab").decode()
API_VERSIONS = frozenset({"2021-03-07"})
CLOCK_SKEW = timedelta(minutes=15)
REPEATABILITY_WINDOW = timedelta(minutes=5)
E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")
UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
AUTH_RE = re.compile(r"^HMAC-SHA256 SignedHeaders=([^&]+)&Signature=(.+)$")
DELIVERY_EVENT = "Microsoft.Communication.SMSDeliveryReportReceived"
RECEIVED_EVENT = "Microsoft.Communication.SMSReceived"
VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"

_ERROR_CODES = {
    400: "BadRequest",
    401: "Denied",
    403: "Forbidden",
    404: "NotFound",
    422: "UnprocessableEntity",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}


def acs_content_hash(body: bytes) -> str:
    """``x-ms-content-sha256``: Base64(SHA-256(body))."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def acs_string_to_sign(
    method: str, path_and_query: str, date: str, host: str, content_hash: str
) -> str:
    """``VERB\\npath_and_query\\nx-ms-date;host;x-ms-content-sha256`` (the values)."""
    return f"{method.upper()}\n{path_and_query}\n{date};{host};{content_hash}"


def _hmac_b64(access_key: str, text: str) -> str:
    digest = hmac.new(base64.b64decode(access_key), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def acs_signature(
    access_key: str, method: str, path_and_query: str, date: str, host: str, content_hash: str
) -> str:
    """Base64(HMAC-SHA256(base64-decode(access_key), string-to-sign))."""
    return _hmac_b64(
        access_key, acs_string_to_sign(method, path_and_query, date, host, content_hash)
    )


@dataclass
class AcsMessage:
    """A message as the fake stores it."""

    message_id: str
    from_: str
    to: str
    message: str
    sent_at: datetime
    enable_delivery_report: bool
    tag: str | None = None
    status: str = "Sent"
    status_details: str | None = None
    repeatability_request_id: str | None = None
    history: list[str] = field(default_factory=list)


@dataclass
class _Repeat:
    seen_at: datetime
    fingerprint: str
    item: dict[str, Any]


class _BadRequest(Exception):
    pass


class FakeACS(FakeProviderServer):
    """A local stand-in for Azure Communication Services SMS and its Event Grid deliveries.

    Attributes worth setting: ``subscription_url`` (our Event Grid webhook),
    ``subscription_name``, ``invalid_numbers`` (per-item 400), ``failing_numbers`` (number →
    ``deliveryStatusDetails`` of a ``Failed`` report), ``sender_numbers`` (allowed ``from``
    values, ``None`` = any), ``key_style``, ``callback_delay``, ``callback_retry_delays``.
    State: ``messages`` (message id → :class:`AcsMessage`), ``validated`` (whether the
    subscription passed validation), ``sends`` (how many SMS were actually sent, repeats
    excluded).
    """

    provider: ClassVar[str] = "acs"
    default_callback_retry_delays: ClassVar[tuple[float, ...]] = (10.0, 30.0, 60.0)

    def __init__(
        self,
        access_key: str = DEFAULT_ACCESS_KEY,
        *,
        subscription_url: str | None = None,
        subscription_name: str = "outbound-sms",
        resource_name: str = "fake-acs",
        invalid_numbers: Iterable[str] = (),
        failing_numbers: Mapping[str, str] | None = None,
        sender_numbers: Iterable[str] | None = None,
        key_style: str = "camel",
        **options: Unpack[ServerOptions],
    ) -> None:
        super().__init__(**options)
        self.access_key = access_key
        self.subscription_url = subscription_url
        self.subscription_name = subscription_name
        self.topic = (
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/outbound-fake"
            f"/providers/Microsoft.Communication/communicationServices/{resource_name}"
        )
        self.invalid_numbers: set[str] = set(invalid_numbers)
        self.failing_numbers: dict[str, str] = dict(failing_numbers or {})
        self.sender_numbers: set[str] | None = (
            set(sender_numbers) if sender_numbers is not None else None
        )
        self.key_style = key_style
        self.messages: dict[str, AcsMessage] = {}
        self.validated = False
        self.sends = 0
        self._repeats: dict[str, _Repeat] = {}
        self._validation_tokens: dict[str, str] = {}

    # -- public helpers --------------------------------------------------------------------

    async def validate_subscription(self, url: str | None = None) -> bool:
        """Run Event Grid's handshake against ``url`` (default ``subscription_url``).

        True when the webhook answered HTTP 200 with ``{"validationResponse": <code>}``; that
        also sets ``validated``. A webhook may instead GET the ``validationUrl`` (manual mode).
        """
        target = url or self.subscription_url
        if target is None:
            raise ValueError("no subscription_url to validate")
        code = str(uuid.uuid4()).upper()
        event_id = str(uuid.uuid4())
        token = secrets.token_urlsafe(16)
        self._validation_tokens[event_id] = token
        validation_url = (
            f"{self.base_url}/eventgrid/validate?id={event_id}"
            f"&t={format_rfc3339(self.now())}&apiVersion=2018-05-01-preview&token={token}"
        )
        event = {
            "id": event_id,
            "topic": self.topic,
            "subject": "",
            "data": {"validationCode": code, "validationUrl": validation_url},
            "eventType": VALIDATION_EVENT,
            "eventTime": format_rfc3339(self.now()),
            "metadataVersion": "1",
            "dataVersion": "2",
        }
        result = await self._post_callback(
            "validation",
            target,
            json.dumps([event]).encode(),
            self._event_headers("SubscriptionValidation"),
        )
        answer: Any = None
        if result.status == 200:
            try:
                answer = json.loads(result.response_body)
            except ValueError:
                answer = None
        ok = isinstance(answer, dict) and answer.get("validationResponse") == code
        if ok:
            self.validated = True
        return ok

    async def deliver(
        self,
        message_id: str,
        status: str = "Delivered",
        details: str | None = None,
        url: str | None = None,
    ) -> int | None:
        """Set a message's delivery status and POST one delivery report; return our status."""
        message = self.messages[message_id]
        target = url or self.subscription_url
        if target is None:
            raise ValueError("no subscription_url; pass url=")
        self._set_status(message, status, details)
        result = await self._report(message, target, retry=False)
        return result.status

    async def send_inbound(
        self, from_: str, to: str, message: str, url: str | None = None
    ) -> int | None:
        """POST a ``Microsoft.Communication.SMSReceived`` event; return our HTTP status."""
        target = url or self.subscription_url
        if target is None:
            raise ValueError("no subscription_url; pass url=")
        now = self.now()
        data = {
            "messageId": self._message_id("Incoming", now),
            "from": from_.lstrip("+"),
            "to": to,
            "message": message,
            "receivedTimestamp": now.isoformat(),
            "segmentCount": sms_segments(message),
        }
        result = await self._post_callback(
            "inbound",
            target,
            self._event_body(RECEIVED_EVENT, from_, data),
            self._event_headers("Notification"),
        )
        return result.status

    # -- HTTP ------------------------------------------------------------------------------

    def _routes(self) -> list[web.RouteDef]:
        return [
            web.post("/sms", self._send),
            web.get("/eventgrid/validate", self._manual_validation),
        ]

    def _is_api_request(self, request: web.Request) -> bool:
        return not request.path.startswith("/eventgrid/")

    def _azure_error(self, status: int, code: str, message: str) -> web.Response:
        return web.json_response({"error": {"code": code, "message": message}}, status=status)

    def _error_response(self, status: int, message: str) -> web.Response:
        return self._azure_error(status, _ERROR_CODES.get(status, f"Http{status}"), message)

    def _authenticate(self, request: web.Request, body: bytes) -> str | None:
        """The reason the request is refused, or ``None`` when its signature is right."""
        match = AUTH_RE.match(request.headers.get("Authorization", ""))
        if match is None:
            return "Missing or malformed HMAC-SHA256 Authorization header."
        signed = [name.strip().lower() for name in match[1].split(";")]
        if "host" not in signed or "x-ms-content-sha256" not in signed:
            return "SignedHeaders must include host and x-ms-content-sha256."
        if "x-ms-date" not in signed and "date" not in signed:
            return "SignedHeaders must include x-ms-date or date."
        content_hash = request.headers.get("x-ms-content-sha256", "")
        if not hmac.compare_digest(content_hash.encode(), acs_content_hash(body).encode()):
            return "x-ms-content-sha256 does not match the request body."
        date_header = "x-ms-date" if "x-ms-date" in signed else "date"
        when = parse_http_date(request.headers.get(date_header, ""))
        if when is None:
            return f"Missing or malformed {date_header} header."
        if abs(self.now() - when) > CLOCK_SKEW:
            return f"The {date_header} header is more than 15 minutes away from the server time."
        values: list[str] = []
        for name in signed:
            value = request.headers.get(name)
            if value is None:
                return f"Signed header {name} is missing."
            values.append(value)
        text = f"{request.method.upper()}\n{request.raw_path}\n" + ";".join(values)
        expected = _hmac_b64(self.access_key, text)
        if not hmac.compare_digest(expected.encode(), match[2].encode()):
            return "The request signature does not match."
        return None

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.read()
        reason = self._authenticate(request, body)
        if reason is not None:
            return self._azure_error(401, "Denied", f"Denied by the resource provider. {reason}")
        version = request.query.get("api-version")
        if version not in API_VERSIONS:
            return self._azure_error(
                400,
                "UnsupportedApiVersion",
                f"The HTTP resource does not support the API version '{version}'.",
            )
        try:
            payload = self._parse(request, body)
        except _BadRequest as problem:
            return self._azure_error(400, "BadRequest", str(problem))
        options = payload.get("smsSendOptions") or {}
        items = [
            self._send_one(payload, recipient, options) for recipient in payload["smsRecipients"]
        ]
        return web.json_response({"value": items}, status=202)

    async def _manual_validation(self, request: web.Request) -> web.Response:
        event_id = request.query.get("id", "")
        token = self._validation_tokens.get(event_id)
        if token is None or not hmac.compare_digest(token, request.query.get("token", "")):
            return self._azure_error(404, "NotFound", "Unknown validation request.")
        self.validated = True
        return web.Response(
            text="Webhook successfully validated as a part of the subscription validation process."
        )

    @staticmethod
    def _parse(request: web.Request, body: bytes) -> dict[str, Any]:
        if request.content_type != "application/json":
            raise _BadRequest("The request content type must be application/json.")
        try:
            payload = json.loads(body)
        except ValueError:
            raise _BadRequest("The request body is not valid JSON.") from None
        if not isinstance(payload, dict):
            raise _BadRequest("The request body must be a JSON object.")
        sender = payload.get("from")
        if not isinstance(sender, str) or not sender:
            raise _BadRequest("The 'from' field is required.")
        recipients = payload.get("smsRecipients")
        if not isinstance(recipients, list) or not 1 <= len(recipients) <= 100:
            raise _BadRequest("'smsRecipients' must hold between 1 and 100 recipients.")
        for recipient in recipients:
            if not isinstance(recipient, dict) or not isinstance(recipient.get("to"), str):
                raise _BadRequest("Each recipient needs a 'to' phone number.")
        message = payload.get("message")
        if not isinstance(message, str):
            raise _BadRequest("The 'message' field is required.")
        if len(message) > 2048:
            raise _BadRequest("The 'message' field must be at most 2048 characters long.")
        options = payload.get("smsSendOptions")
        if options is not None:
            if not isinstance(options, dict) or not isinstance(
                options.get("enableDeliveryReport"), bool
            ):
                raise _BadRequest("'smsSendOptions.enableDeliveryReport' must be a boolean.")
            if options.get("tag") is not None and not isinstance(options["tag"], str):
                raise _BadRequest("'smsSendOptions.tag' must be a string.")
        return payload

    def _send_one(
        self, payload: dict[str, Any], recipient: dict[str, Any], options: dict[str, Any]
    ) -> dict[str, Any]:
        to: str = recipient["to"]
        request_id = recipient.get("repeatabilityRequestId")
        first_sent = recipient.get("repeatabilityFirstSent")
        now = self.now()
        repeatable = request_id is not None or first_sent is not None
        fingerprint = json.dumps([payload["from"], to, payload["message"], options], sort_keys=True)
        if repeatable:
            when = parse_http_date(first_sent) if isinstance(first_sent, str) else None
            if not isinstance(request_id, str) or not UUID_RE.match(request_id) or when is None:
                return _failed(to, 400, "Invalid repeatability request id or first-sent time.")
            if abs(now - when) > REPEATABILITY_WINDOW:
                return _failed(
                    to, 412, "Repeatability first-sent time is outside the accepted window."
                )
            self._forget_old_repeats(now)
            previous = self._repeats.get(request_id.lower())
            if previous is not None:
                if previous.fingerprint != fingerprint:
                    return _failed(
                        to, 400, "The repeatability request id was used for a different request."
                    )
                return dict(previous.item)
        item = self._deliver_new(payload, to, options, request_id, now)
        if isinstance(request_id, str):
            item["repeatabilityResult"] = "accepted"
            self._repeats[request_id.lower()] = _Repeat(now, fingerprint, dict(item))
        return item

    def _deliver_new(
        self,
        payload: dict[str, Any],
        to: str,
        options: dict[str, Any],
        request_id: str | None,
        now: datetime,
    ) -> dict[str, Any]:
        if self.sender_numbers is not None and payload["from"] not in self.sender_numbers:
            return {
                "to": to,
                "httpStatusCode": 400,
                "successful": False,
                "errorMessage": "Invalid From phone number.",
            }
        if not E164_RE.match(to):
            return {
                "to": to,
                "httpStatusCode": 400,
                "successful": False,
                "errorMessage": "Invalid To phone number format.",
            }
        if to in self.invalid_numbers:
            return {
                "to": to,
                "httpStatusCode": 400,
                "successful": False,
                "errorMessage": "Invalid To phone number.",
            }
        message = AcsMessage(
            message_id=self._message_id("Outgoing", now),
            from_=payload["from"],
            to=to,
            message=payload["message"],
            sent_at=now,
            enable_delivery_report=bool(options.get("enableDeliveryReport", False)),
            tag=options.get("tag"),
            repeatability_request_id=request_id,
            history=["Sent"],
        )
        self.messages[message.message_id] = message
        self.sends += 1
        if message.enable_delivery_report:
            self._spawn(self._run_lifecycle(message))
        return {
            "to": to,
            "messageId": message.message_id,
            "httpStatusCode": 202,
            "successful": True,
        }

    def _forget_old_repeats(self, now: datetime) -> None:
        for key, repeat in list(self._repeats.items()):
            if now - repeat.seen_at > REPEATABILITY_WINDOW:
                del self._repeats[key]

    # -- Event Grid ------------------------------------------------------------------------

    async def _run_lifecycle(self, message: AcsMessage) -> None:
        await asyncio.sleep(self.callback_delay)
        details = self.failing_numbers.get(message.to)
        if details is None:
            self._set_status(message, "Delivered", "No error.")
        else:
            self._set_status(message, "Failed", details)
        if self.subscription_url is not None:
            await self._report(message, self.subscription_url, retry=True)

    def _set_status(self, message: AcsMessage, status: str, details: str | None) -> None:
        message.status = status
        message.status_details = details or ("No error." if status == "Delivered" else status)
        message.history.append(status)

    async def _report(self, message: AcsMessage, url: str, *, retry: bool) -> CallbackResult:
        now = self.now()
        segments = sms_segments(message.message)
        delivered = message.status == "Delivered"
        data: dict[str, Any] = {
            "messageId": message.message_id,
            "from": message.from_.lstrip("+"),
            "to": message.to,
            "deliveryStatus": message.status,
            "deliveryStatusDetails": message.status_details,
            "receivedTimestamp": now.isoformat(),
            "deliveryAttempts": [
                {
                    "timestamp": now.isoformat(),
                    "segmentsSucceeded": segments if delivered else 0,
                    "segmentsFailed": 0 if delivered else segments,
                }
            ],
        }
        if message.tag is not None:
            data["Tag"] = message.tag
        return await self._post_callback(
            "delivery",
            url,
            self._event_body(DELIVERY_EVENT, message.to, data),
            self._event_headers("Notification"),
            retry_delays=self.callback_retry_delays if retry else (),
        )

    def _event_body(self, event_type: str, number: str, data: dict[str, Any]) -> bytes:
        event = {
            "id": str(uuid.uuid4()),
            "topic": self.topic,
            "subject": f"/phonenumber/{number.lstrip('+')}",
            "data": _restyle(data, self.key_style),
            "eventType": event_type,
            "dataVersion": "1.0",
            "metadataVersion": "1",
            "eventTime": format_rfc3339(self.now()),
        }
        return json.dumps([event]).encode()

    def _event_headers(self, event_type: str) -> dict[str, str]:
        return {
            "Content-Type": "application/json; charset=utf-8",
            "aeg-event-type": event_type,
            "aeg-subscription-name": self.subscription_name.upper(),
            "aeg-data-version": "1.0" if event_type == "Notification" else "2",
            "aeg-metadata-version": "1",
        }

    @staticmethod
    def _message_id(prefix: str, now: datetime) -> str:
        return f"{prefix}_{now.strftime('%Y%m%d%H%M%S')}{uuid.uuid4()}_noam"


def _failed(to: str, status: int, message: str) -> dict[str, Any]:
    return {
        "to": to,
        "httpStatusCode": status,
        "repeatabilityResult": "rejected",
        "successful": False,
        "errorMessage": message,
    }


def _restyle(value: Any, style: str) -> Any:
    if style != "pascal":
        return value
    if isinstance(value, dict):
        return {key[:1].upper() + key[1:]: _restyle(item, style) for key, item in value.items()}
    if isinstance(value, list):
        return [_restyle(item, style) for item in value]
    return value
