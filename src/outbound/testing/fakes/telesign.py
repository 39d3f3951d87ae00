"""A fake TeleSign Messaging API (SMS).

One module for one API: its size is this description and TeleSign's own rules (signatures and
nonces, a code for each parameter's fault, signed callbacks retried); what it shares with the
other fakes (lifecycle, request capture, faults, callbacks) is in :mod:`.base`.

Serves what TeleSign's REST API does for SMS (wire facts: shared docs ``providers.md`` §C):

- ``POST /v1/messaging``: form body (``phone_number``, ``message``, ``message_type`` required;
  ``sender_id``, ``external_id``, ``callback_url``, ``account_lifecycle_event``,
  ``originating_ip`` ... optional), answered **200** with
  ``{"reference_id": <32 hex>, "status": {"code": 290, "description": "Message in progress",
  "updated_on": <RFC 3339>}}``.
- ``GET /v1/messaging/{reference_id}``: the message's current status.

Authentication is checked by the fake itself: ``Authorization: TSA {customer_id}:{signature}``
with signature = Base64(HMAC-SHA256(base64-decode(api_key), string-to-sign)) where the
string-to-sign is ``METHOD\\nContent-Type\\nDate\\nx-ts-auth-method:...\\nx-ts-nonce:...[\\nbody]
\\nresource`` (the canonical ``x-ts-*`` headers in name order, the body only when both content
type and body are non-empty, the resource = path only); the Date must be within 15 minutes of
the fake's clock and a nonce cannot be used twice within that time. ``Authorization: Basic
base64(customer_id:api_key)`` is accepted too.

Delivery reports go to the request's ``callback_url`` (or the fake's ``callback_url``) as JSON
(``sub_resource: "sms"``) signed with ``Authorization`` and ``X-TS-Authorization`` =
``TSA {customer_id}:{Base64(HMAC-SHA256(base64-decode(api_key), body))}``: one per code of
``callback_sequence`` (default 203 then 200), ``callback_delay`` seconds apart, each retried after
``callback_retry_delays`` (default 10 s and 30 s) until our webhook answers 200.
:meth:`FakeTeleSign.send_inbound` posts a signed ``mo_sms`` callback.

Error bodies are ``{"status": {"code", "description", "updated_on"}, "errors": [{"code",
"description"}, ...]}``. Codes from TeleSign's reference: 400 → status.code and errors = the
11xxx/12xxx parameter codes (all problems found, the first one in ``status``); 401 →
status 501 "Not authorized" with -30000 (unknown customer ID), -30004 (no Authorization),
-30005 (malformed Authorization), -30006 (bad signature), -30007 (no Date), -30009 (Date not
RFC 822), -30010 (Date more than 15 min off), -30011 (x-ts-nonce missing or over 64 characters),
-30012 (nonce reused), -30015 (bad API key with Basic), or status 500 with -30008 (bad
``x-ts-auth-method``).

Assumptions where ``providers.md`` is silent:

- ``phone_number`` must be 7-15 digits with no ``+`` or spaces (TeleSign only recommends it; the
  fake is strict to catch unnormalised numbers); numbers in ``invalid_numbers`` get 11000.
- Limits: ``sender_id`` ≤ 20 characters (and in ``sender_ids`` when that set is given),
  ``external_id`` ≤ 100 ASCII characters, ``message`` ≤ 1600 characters.
- Canonical headers: every ``x-ts-*`` header is signed in name order; with ``x-ts-date`` the Date
  line is empty. Only HMAC-SHA256 is supported for ``TSA``. The customer ID is compared
  case-insensitively. Basic auth skips the Date and nonce checks.
- Faults, 429 from ``max_concurrent`` and unknown paths answer status 500 "Transaction not
  attempted" with one error whose code is the negated HTTP status (an invention).
- Unknown reference IDs answer 404 with -10001 "Invalid Request: reference_id Parameter".
- Reference IDs are upper-case hex. Failure codes 207/210/211/221/250/251 come after a 203
  report, the blocking codes (220, 222, 229-238) without it; ``errors`` stays empty in reports.
- The MO status is 1500 "Delivered to customer" (UNCONFIRMED in providers.md). Inbound numbers
  are digits without ``+``. A 2xx other than 200 counts as a failed callback (TeleSign asks
  for 200).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any, ClassVar, Unpack
from urllib.parse import parse_qs, urlparse

from aiohttp import web

from outbound.testing.fakes.base import (
    CallbackResult,
    FakeProviderServer,
    ServerOptions,
    format_rfc1123,
    format_rfc3339,
    parse_http_date,
    sms_segments,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_CUSTOMER_ID",
    "STATUS_DESCRIPTIONS",
    "FakeTeleSign",
    "TeleSignMessage",
    "telesign_callback_signature",
    "telesign_request_signature",
    "telesign_string_to_sign",
]

DEFAULT_CUSTOMER_ID = "FFFFFFFF-EEEE-DDDD-1234-AB1234567890"
DEFAULT_API_KEY = base64.b64encode(b"fake-telesign-api-key-0123456789").decode()
CLOCK_SKEW = timedelta(minutes=15)
MESSAGE_TYPES = frozenset({"OTP", "ARN", "MKT"})
LIFECYCLE_EVENTS = frozenset({"create", "sign-in", "transact", "update", "delete"})
PHONE_RE = re.compile(r"^[1-9][0-9]{6,14}$")

STATUS_DESCRIPTIONS: dict[int, str] = {
    200: "Delivered to handset",
    203: "Delivered to gateway",
    207: "Error delivering SMS to handset (reason unknown)",
    210: "Temporary phone error",
    211: "Permanent phone error",
    220: "Gateway/network cannot route message",
    221: "Message expired before delivery",
    222: "SMS not supported",
    229: "Message blocked by your request",
    230: "Message blocked by TeleSign",
    231: "Invalid/unsupported message content",
    233: "Message blocked, high risk score",
    237: "Message blocked, country blocked",
    238: "Destination blocked by prefix",
    250: "Final status unknown",
    251: "Message sent downstream, no handset confirmation",
    290: "Message in progress",
    1500: "Delivered to customer",
}
AFTER_GATEWAY = frozenset({207, 210, 211, 221, 250, 251})


def telesign_string_to_sign(
    method: str,
    content_type: str,
    date: str,
    ts_headers: Mapping[str, str],
    body: str,
    resource: str,
) -> str:
    """TeleSign's canonical string: method, content type, date, ``x-ts-*`` headers, body, path.

    ``ts_headers`` are the ``x-ts-*`` headers (names compared lower-case, sorted); ``body`` is
    only included when both it and ``content_type`` are non-empty.
    """
    parts = [method.upper(), content_type, date]
    parts += [f"{name.lower()}:{value}" for name, value in sorted(ts_headers.items())]
    if content_type and body:
        parts.append(body)
    parts.append(resource)
    return "\n".join(parts)


def _hmac_b64(api_key: str, text: str) -> str:
    digest = hmac.new(base64.b64decode(api_key), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def telesign_request_signature(
    api_key: str,
    method: str,
    content_type: str,
    date: str,
    nonce: str,
    body: str,
    resource: str,
    auth_method: str = "HMAC-SHA256",
) -> str:
    """The ``TSA`` signature of a request signed like the official SDK does."""
    headers = {"x-ts-auth-method": auth_method, "x-ts-nonce": nonce}
    return _hmac_b64(
        api_key, telesign_string_to_sign(method, content_type, date, headers, body, resource)
    )


def telesign_callback_signature(api_key: str, body: bytes | str) -> str:
    """The callback signature: Base64(HMAC-SHA256(base64-decode(api_key), body))."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    return _hmac_b64(api_key, text)


@dataclass
class TeleSignMessage:
    """A message as the fake stores it."""

    reference_id: str
    phone_number: str
    message: str
    message_type: str
    submit_timestamp: datetime
    status_code: int
    updated_on: datetime
    sender_id: str | None = None
    external_id: str | None = None
    callback_url: str | None = None
    params: dict[str, list[str]] = field(default_factory=dict)
    """The form parameters of the request, as received."""
    status_history: list[int] = field(default_factory=list)

    def status(self, time_format: str = "rfc3339") -> dict[str, Any]:
        """The ``status`` object."""
        updated = (
            format_rfc1123(self.updated_on)
            if time_format == "rfc1123"
            else format_rfc3339(self.updated_on)
        )
        return {
            "code": self.status_code,
            "description": STATUS_DESCRIPTIONS.get(self.status_code, "Unknown status"),
            "updated_on": updated,
        }


class _Denied(Exception):
    def __init__(self, code: int, description: str, status_code: int = 501) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.status_code = status_code


class FakeTeleSign(FakeProviderServer):
    """A local stand-in for TeleSign's Messaging API.

    Attributes worth setting: ``callback_url`` (account-level default for reports),
    ``invalid_numbers`` (11000), ``failing_numbers`` (number → final status code such as 210),
    ``sender_ids`` (allowed ``sender_id`` values, ``None`` = any), ``callback_sequence``,
    ``callback_delay``, ``callback_retry_delays``, ``time_format`` (``"rfc3339"`` or
    ``"rfc1123"`` for ``updated_on`` in reports). State: ``messages`` (reference ID →
    :class:`TeleSignMessage`), ``used_nonces``.
    """

    provider: ClassVar[str] = "telesign"
    default_callback_retry_delays: ClassVar[tuple[float, ...]] = (10.0, 30.0)

    def __init__(
        self,
        customer_id: str = DEFAULT_CUSTOMER_ID,
        api_key: str = DEFAULT_API_KEY,
        *,
        callback_url: str | None = None,
        invalid_numbers: Iterable[str] = (),
        failing_numbers: Mapping[str, int] | None = None,
        sender_ids: Iterable[str] | None = None,
        callback_sequence: Sequence[int] = (203, 200),
        time_format: str = "rfc3339",
        **options: Unpack[ServerOptions],
    ) -> None:
        super().__init__(**options)
        self.customer_id = customer_id
        self.api_key = api_key
        self.callback_url = callback_url
        self.invalid_numbers: set[str] = set(invalid_numbers)
        self.failing_numbers: dict[str, int] = dict(failing_numbers or {})
        self.sender_ids: set[str] | None = set(sender_ids) if sender_ids is not None else None
        self.callback_sequence: list[int] = list(callback_sequence)
        self.time_format = time_format
        self.messages: dict[str, TeleSignMessage] = {}
        self.used_nonces: dict[str, datetime] = {}

    # -- public helpers --------------------------------------------------------------------

    def sign_callback(self, body: bytes | str) -> str:
        """The ``Authorization`` value this account puts on a callback with ``body``."""
        return f"TSA {self.customer_id}:{telesign_callback_signature(self.api_key, body)}"

    async def deliver(self, reference_id: str, code: int, url: str | None = None) -> int | None:
        """Set a message's status code and POST one delivery report; return our HTTP status."""
        message = self.messages[reference_id]
        target = url or message.callback_url or self.callback_url
        if target is None:
            raise ValueError(f"message {reference_id} has no callback_url; pass url=")
        self._set_status(message, code)
        result = await self._report(message, target, retry=False)
        return result.status

    async def send_inbound(self, url: str, from_: str, to: str, body: str) -> int | None:
        """POST a signed ``mo_sms`` callback (an SMS from ``from_`` to our number ``to``)."""
        now = self.now()
        payload = {
            "reference_id": secrets.token_hex(16).upper(),
            "status": {
                "code": 1500,
                "description": STATUS_DESCRIPTIONS[1500],
                "updated_on": self._time(now),
            },
            "submit_timestamp": self._time(now),
            "errors": [],
            "sub_resource": "mo_sms",
            "user_response": {
                "phone_number": from_.lstrip("+"),
                "sender_id": to.lstrip("+"),
                "mo_message": body,
            },
        }
        result = await self._post_signed("inbound", url, payload, retry=False)
        return result.status

    # -- HTTP ------------------------------------------------------------------------------

    def _routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/messaging", self._send),
            web.get("/v1/messaging/{reference_id}", self._status),
        ]

    def _time(self, when: datetime) -> str:
        return format_rfc1123(when) if self.time_format == "rfc1123" else format_rfc3339(when)

    def _telesign_error(
        self,
        http_status: int,
        status_code: int,
        description: str,
        errors: Sequence[tuple[int, str]],
    ) -> web.Response:
        body = {
            "status": {
                "code": status_code,
                "description": description,
                "updated_on": self._time(self.now()),
            },
            "errors": [{"code": code, "description": text} for code, text in errors],
        }
        return web.json_response(body, status=http_status)

    def _error_response(self, status: int, message: str) -> web.Response:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = message
        return self._telesign_error(
            status, 500, "Transaction not attempted", [(-status, f"{reason}: {message}")]
        )

    def _authenticate(self, request: web.Request, body: bytes) -> None:
        header = request.headers.get("Authorization")
        if not header:
            raise _Denied(-30004, "Missing required 'Authorization' header")
        scheme, _, credentials = header.partition(" ")
        if scheme == "Basic":
            self._check_basic(credentials.strip())
        elif scheme == "TSA":
            self._check_tsa(request, credentials.strip(), body)
        else:
            raise _Denied(-30005, "Required 'Authorization' header is not in the correct format")

    def _check_basic(self, credentials: str) -> None:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise _Denied(
                -30005, "Required 'Authorization' header is not in the correct format"
            ) from None
        customer, sep, key = decoded.partition(":")
        if not sep:
            raise _Denied(-30005, "Required 'Authorization' header is not in the correct format")
        if customer.upper() != self.customer_id.upper():
            raise _Denied(-30000, "Invalid Customer ID.")
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise _Denied(-30015, "Invalid API Key.")

    def _check_tsa(self, request: web.Request, credentials: str, body: bytes) -> None:
        customer, sep, signature = credentials.rpartition(":")
        if not sep or not customer or not signature:
            raise _Denied(-30005, "Required 'Authorization' header is not in the correct format")
        if customer.upper() != self.customer_id.upper():
            raise _Denied(-30000, "Invalid Customer ID.")
        headers = request.headers
        auth_method = headers.get("x-ts-auth-method", "")
        if auth_method != "HMAC-SHA256":
            raise _Denied(-30008, "Invalid 'x-ts-auth-method' header.", status_code=500)
        ts_date = headers.get("x-ts-date")
        raw_date = ts_date if ts_date is not None else headers.get("Date")
        if not raw_date:
            raise _Denied(-30007, "Missing required 'Date' or 'x-ts-date' header")
        when = parse_http_date(raw_date)
        if when is None:
            raise _Denied(-30009, "'Date' or 'x-ts-date' header is not RFC822 compliant")
        now = self.now()
        if abs(now - when) > CLOCK_SKEW:
            raise _Denied(-30010, "'Date' or 'x-ts-date' header is not within tolerable range")
        nonce = headers.get("x-ts-nonce", "")
        if not 1 <= len(nonce) <= 64:
            raise _Denied(-30011, "'x-ts-nonce' header value is either too long or too short")
        ts_headers = {
            name.lower(): value
            for name, value in headers.items()
            if name.lower().startswith("x-ts-")
        }
        text = telesign_string_to_sign(
            request.method,
            headers.get("Content-Type", ""),
            "" if ts_date is not None else raw_date,
            ts_headers,
            body.decode("utf-8", errors="replace"),
            request.raw_path.split("?", 1)[0],
        )
        expected = _hmac_b64(self.api_key, text)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise _Denied(-30006, "Invalid Signature")
        self._forget_old_nonces(now)
        if nonce in self.used_nonces:
            raise _Denied(-30012, "'x-ts-nonce' header value has been used recently")
        self.used_nonces[nonce] = now

    def _forget_old_nonces(self, now: datetime) -> None:
        for nonce, seen in list(self.used_nonces.items()):
            if now - seen > CLOCK_SKEW:
                del self.used_nonces[nonce]

    async def _guard(self, request: web.Request) -> tuple[bytes, web.Response | None]:
        body = await request.read()
        try:
            self._authenticate(request, body)
        except _Denied as denied:
            description = (
                "Not authorized" if denied.status_code == 501 else "Transaction not attempted"
            )
            return body, self._telesign_error(
                401, denied.status_code, description, [(denied.code, denied.description)]
            )
        return body, None

    async def _send(self, request: web.Request) -> web.Response:
        body, denied = await self._guard(request)
        if denied is not None:
            return denied
        params: dict[str, list[str]] = {}
        if request.content_type == "application/x-www-form-urlencoded":
            params = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        errors = self._validate(params)
        if errors:
            code, text = errors[0]
            return self._telesign_error(400, code, text, errors)

        def one(name: str) -> str | None:
            values = params.get(name)
            return values[0] if values and values[0] != "" else None

        now = self.now()
        message = TeleSignMessage(
            reference_id=secrets.token_hex(16).upper(),
            phone_number=params["phone_number"][0],
            message=params["message"][0],
            message_type=params["message_type"][0],
            submit_timestamp=now,
            status_code=290,
            updated_on=now,
            sender_id=one("sender_id"),
            external_id=one("external_id"),
            callback_url=one("callback_url"),
            params=params,
            status_history=[290],
        )
        self.messages[message.reference_id] = message
        self._spawn(self._run_lifecycle(message))
        answer: dict[str, Any] = {
            "reference_id": message.reference_id,
            "status": message.status(self.time_format),
        }
        if message.external_id is not None:
            answer["external_id"] = message.external_id
        return web.json_response(answer)

    async def _status(self, request: web.Request) -> web.Response:
        _, denied = await self._guard(request)
        if denied is not None:
            return denied
        reference_id = request.match_info["reference_id"]
        message = self.messages.get(reference_id)
        if message is None:
            return self._telesign_error(
                404,
                500,
                "Transaction not attempted",
                [(-10001, f"Invalid Request: reference_id Parameter: {reference_id}")],
            )
        answer: dict[str, Any] = {
            "reference_id": message.reference_id,
            "status": message.status(self.time_format),
            "submit_timestamp": self._time(message.submit_timestamp),
            "errors": [],
            "additional_info": {"message_parts_count": sms_segments(message.message)},
        }
        if message.external_id is not None:
            answer["external_id"] = message.external_id
        return web.json_response(answer)

    def _validate(self, params: dict[str, list[str]]) -> list[tuple[int, str]]:
        errors: list[tuple[int, str]] = []

        def value(name: str) -> str | None:
            values = params.get(name)
            return values[0] if values and values[0] != "" else None

        phone = value("phone_number")
        if phone is None:
            errors.append((12000, "Missing Required Parameter phone_number"))
        elif not PHONE_RE.match(phone) or phone in self.invalid_numbers:
            errors.append((11000, "Invalid value for parameter phone_number."))
        message = value("message")
        if message is None:
            errors.append((12009, "Missing Required Parameter message"))
        elif len(message) > 1600:
            errors.append((11009, "Invalid value for parameter message."))
        message_type = value("message_type")
        if message_type is None:
            errors.append((12017, "Missing Required Parameter message_type"))
        elif message_type not in MESSAGE_TYPES:
            errors.append((11017, "Invalid value for parameter message_type."))
        event = value("account_lifecycle_event")
        if event is not None and event not in LIFECYCLE_EVENTS:
            errors.append((11003, "Invalid value for parameter account_lifecycle_event"))
        callback = params.get("callback_url", [None])[0]
        if callback is not None and not _http_url(callback):
            errors.append((11004, "Invalid value for parameter callback_url"))
        origin = value("originating_ip")
        if origin is not None and not _ip(origin):
            errors.append((11010, "Invalid value for parameter originating_ip."))
        sender = value("sender_id")
        if sender is not None and (
            len(sender) > 20 or (self.sender_ids is not None and sender not in self.sender_ids)
        ):
            errors.append((11013, "Invalid value for parameter sender_id."))
        external = value("external_id")
        if external is not None and (len(external) > 100 or not external.isascii()):
            errors.append((11016, "Invalid value for parameter external_id"))
        return errors

    # -- lifecycle and callbacks -----------------------------------------------------------

    def _plan(self, message: TeleSignMessage) -> list[int]:
        code = self.failing_numbers.get(message.phone_number)
        if code is None:
            return list(self.callback_sequence)
        return [203, code] if code in AFTER_GATEWAY else [code]

    async def _run_lifecycle(self, message: TeleSignMessage) -> None:
        for code in self._plan(message):
            await asyncio.sleep(self.callback_delay)
            self._set_status(message, code)
            target = message.callback_url or self.callback_url
            if target is not None:
                await self._report(message, target, retry=True)

    def _set_status(self, message: TeleSignMessage, code: int) -> None:
        message.status_code = code
        message.updated_on = self.now()
        message.status_history.append(code)

    async def _report(self, message: TeleSignMessage, url: str, *, retry: bool) -> CallbackResult:
        payload: dict[str, Any] = {
            "reference_id": message.reference_id,
            "status": message.status(self.time_format),
            "sub_resource": "sms",
            "errors": [],
            "submit_timestamp": self._time(message.submit_timestamp),
        }
        if message.external_id is not None:
            payload["external_id"] = message.external_id
        return await self._post_signed("delivery", url, payload, retry=retry)

    async def _post_signed(
        self, kind: str, url: str, payload: Mapping[str, Any], *, retry: bool
    ) -> CallbackResult:
        body = json.dumps(payload).encode("utf-8")
        authorization = self.sign_callback(body)
        headers = {
            "Content-Type": "application/json",
            "Authorization": authorization,
            "X-TS-Authorization": authorization,
        }
        delays = self.callback_retry_delays if retry else ()
        return await self._post_callback(kind, url, body, headers, retry_delays=delays)

    def _callback_accepted(self, result: CallbackResult) -> bool:
        return result.status == 200


def _http_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme in {"http", "https"} and bool(parsed.hostname)


def _ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
