"""A fake Twilio Programmable Messaging API (SMS and WhatsApp).

One module for one API: its size is this description and Twilio's validation rules, an error
code for each field of the Messages resource (``_build_message``); what it shares with the
other fakes (lifecycle, request capture, faults, callbacks) is in :mod:`.base`.

Serves what Twilio's REST API does for messages (wire facts: shared docs ``providers.md`` §A-B):

- ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``: HTTP Basic auth (Account SID + Auth
  Token, or an API key SID + secret from ``api_keys``), form body, validated like Twilio; answers
  **201** with the Message resource (``sid`` ``SM``/``MM`` + 32 hex, ``status`` ``queued`` or
  ``accepted`` with a Messaging Service or ``scheduled``, ``num_segments`` as a string, RFC 2822
  dates...).
- ``GET .../Messages.json``: the Messages list, newest first (``date_created``), filtered by
  ``To``, ``From`` and ``DateSent`` (``DateSent<`` on or before, ``DateSent>`` on or after; a
  date ``YYYY-MM-DD`` compares the day a message was sent, a date and time compares that
  instant; a message not sent yet has no ``date_sent`` and matches no ``DateSent`` filter),
  paged by ``PageSize`` (default 50, at most 1000), ``Page`` and ``PageToken`` as Twilio
  pages: ``{"messages": [...], "page", "page_size", "start", "end", "uri",
  "first_page_uri", "next_page_uri", "previous_page_uri"}``, with ``next_page_uri`` ``null``
  on the last page and ``PageToken`` ``PA`` followed by the SID of the previous page's last
  message.
- ``GET .../Messages/{Sid}.json``: the stored resource, with its current status.
- ``POST .../Messages/{Sid}.json``: ``Status=canceled`` cancels a scheduled message;
  ``Body=`` (empty) redacts the body.

After a send the message moves through ``callback_sequence`` (default ``sent``, ``delivered``),
one step every ``callback_delay`` seconds; when ``StatusCallback`` was given each step is POSTed
there form-encoded and signed with ``X-Twilio-Signature`` (HMAC-SHA1 of the URL followed by the
sorted parameters, key = auth token, Base64). ``failing_numbers`` makes a number end ``undelivered``
(or ``failed``, for codes in :data:`FAILED_CODES`) with that ``ErrorCode``. A free-form WhatsApp
message (Body/MediaUrl, no ContentSid) to a user whose last inbound message is older than 24 h is
accepted (201) and then ``failed`` with 63016, as Twilio does.

:meth:`FakeTwilio.send_inbound` POSTs a signed inbound-message webhook and applies Twilio's
default opt-out keywords (STOP... adds the sender to ``unsubscribed``, START... removes it).

Assumptions where ``providers.md`` is silent (error codes from memory of Twilio's error
dictionary; all answers are ``{"code", "message", "more_info", "status"}``):

- 21604 (400) ``To`` missing; 21603 (400) both ``From`` and ``MessagingServiceSid`` missing;
  21602 (400) none of ``Body``, ``MediaUrl``, ``ContentSid``; 21212 (400) malformed ``From``
  (E.164, ``whatsapp:+E164`` or an alphanumeric sender ID of 1-11 characters are accepted);
  21701 (400) malformed or unknown ``MessagingServiceSid``; 21910 (400) ``To`` and ``From`` on
  different channels (one ``whatsapp:``, the other not); 21606 (400, SMS) / 63007 (400, WhatsApp)
  ``From`` not in ``sender_numbers`` (when that set is given); 21655 (400) malformed
  ``ContentSid``; 21656 (400) ``ContentVariables`` not a JSON object of at most 100 string values;
  21620 (400) a ``MediaUrl`` that is not http(s); 21609 (400) a ``StatusCallback`` that is not an
  http(s) URL with a hostname without underscores; 35111 (400) ``ScheduleType`` without a
  Messaging Service; 35114 (400) ``SendAt`` missing, unparsable or not 15 min-35 days ahead;
  30409 (400) cancelling a message that is not scheduled.
- Phone numbers must be strict E.164 (``+`` and 7-15 digits); Twilio also guesses national formats.
- An ``AccountSid`` in the path other than the authenticated account answers 404/20404.
- ``unsubscribed`` holds addresses (``+1555...`` or ``whatsapp:+1555...``), not From/To pairs.
- ``From`` of callbacks for a Messaging Service send is ``service_sender`` (or its ``whatsapp:``
  form), and such messages get a ``queued`` callback before the sequence.
- Status callbacks are not retried when our webhook fails (Twilio documents no retry for them).
- Inbound webhooks carry no geographic fields (``FromCity``...); pass them in ``extra`` if needed.
- Scheduled messages are never sent by the fake; they wait to be cancelled.
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Unpack
from urllib.parse import parse_qs, urlencode, urlparse

from aiohttp import web

from outbound.testing.fakes.base import (
    FakeProviderServer,
    ServerOptions,
    format_rfc2822,
    sms_segments,
)

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "FAILED_CODES",
    "FakeTwilio",
    "TwilioMessage",
    "twilio_signature",
]

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "0" * 31 + "1"
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token"
WHATSAPP = "whatsapp:"
WINDOW = timedelta(hours=24)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")
ALPHA_SENDER_RE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
CONTENT_SID_RE = re.compile(r"^HX[0-9a-fA-F]{32}$")
SERVICE_SID_RE = re.compile(r"^MG[0-9a-fA-F]{32}$")

OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

FAILED_CODES = frozenset({"30001", "30002", "63016"})
"""Error codes that end a message ``failed`` (not accepted upstream) rather than ``undelivered``."""

ERROR_MESSAGES = {
    "30001": "Queue overflow",
    "30002": "Account suspended",
    "30003": "Unreachable destination handset",
    "30004": "Message blocked",
    "30005": "Unknown destination handset",
    "30006": "Landline or unreachable carrier",
    "30007": "Message filtered",
    "30008": "Unknown error",
    "30034": "Message from an unregistered number",
    "63016": (
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template."
    ),
}

_STATUS_CODES = {400: 21211, 401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}


def twilio_signature(
    auth_token: str,
    url: str,
    params: Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]] = (),
) -> str:
    """``X-Twilio-Signature`` for a form request: Base64(HMAC-SHA1(token, url + sorted params)).

    Names are sorted, then each name's distinct values in sorted order, appended as
    ``name + value`` without separators or URL encoding.
    """
    values: dict[str, set[str]] = {}
    pairs: Iterable[tuple[str, str | Sequence[str]]]
    pairs = params.items() if isinstance(params, Mapping) else params
    for name, value in pairs:
        bucket = values.setdefault(name, set())
        if isinstance(value, str):
            bucket.add(value)
        else:
            bucket.update(value)
    text = url + "".join(name + v for name in sorted(values) for v in sorted(values[name]))
    digest = hmac.new(auth_token.encode("utf-8"), text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _bare(address: str) -> str:
    return address.removeprefix(WHATSAPP)


def _new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass
class TwilioMessage:
    """A message as the fake stores it (outbound or inbound)."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str
    status: str
    direction: str
    date_created: datetime
    date_updated: datetime
    messaging_service_sid: str | None = None
    num_segments: str = "1"
    num_media: str = "0"
    error_code: int | None = None
    error_message: str | None = None
    date_sent: datetime | None = None
    status_callback: str | None = None
    content_sid: str | None = None
    content_variables: dict[str, Any] | None = None
    media_urls: list[str] = field(default_factory=list)
    send_at: datetime | None = None
    params: dict[str, list[str]] = field(default_factory=dict)
    """The form parameters of the create request, as received."""
    status_history: list[str] = field(default_factory=list)

    @property
    def whatsapp(self) -> bool:
        """Whether this is a WhatsApp message."""
        return self.to.startswith(WHATSAPP)

    def resource(self) -> dict[str, Any]:
        """The JSON Message resource Twilio answers with."""
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": format_rfc2822(self.date_created),
            "date_sent": format_rfc2822(self.date_sent) if self.date_sent else None,
            "date_updated": format_rfc2822(self.date_updated),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": self.num_media,
            "num_segments": self.num_segments,
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": uri.removesuffix(".json") + "/Media.json"},
            "to": self.to,
            "uri": uri,
        }


class _Reject(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class FakeTwilio(FakeProviderServer):
    """A local stand-in for Twilio's Messages API (SMS and WhatsApp).

    Attributes worth setting: ``invalid_numbers`` (21211), ``landlines`` (21614),
    ``unsubscribed`` (21610), ``failing_numbers`` (number → async error code),
    ``sender_numbers`` (allowed ``From`` values, ``None`` = any), ``messaging_services``
    (allowed ``MG`` SIDs, ``None`` = any well-formed), ``callback_sequence``,
    ``callback_delay``. State: ``messages`` (SID → :class:`TwilioMessage`),
    ``last_inbound`` (bare number → time of the user's last WhatsApp message).
    """

    provider: ClassVar[str] = "twilio"

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        api_keys: Mapping[str, str] | None = None,
        sender_numbers: Iterable[str] | None = None,
        messaging_services: Iterable[str] | None = None,
        service_sender: str = "+15005550006",
        invalid_numbers: Iterable[str] = (),
        unsubscribed: Iterable[str] = (),
        landlines: Iterable[str] = (),
        failing_numbers: Mapping[str, str] | None = None,
        callback_sequence: Sequence[str] = ("sent", "delivered"),
        **options: Unpack[ServerOptions],
    ) -> None:
        super().__init__(**options)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.api_keys: dict[str, str] = dict(api_keys or {})
        self.sender_numbers: set[str] | None = (
            set(sender_numbers) if sender_numbers is not None else None
        )
        self.messaging_services: set[str] | None = (
            set(messaging_services) if messaging_services is not None else None
        )
        self.service_sender = service_sender
        self.invalid_numbers: set[str] = set(invalid_numbers)
        self.unsubscribed: set[str] = set(unsubscribed)
        self.landlines: set[str] = set(landlines)
        self.failing_numbers: dict[str, str] = dict(failing_numbers or {})
        self.callback_sequence: list[str] = list(callback_sequence)
        self.messages: dict[str, TwilioMessage] = {}
        self.last_inbound: dict[str, datetime] = {}

    # -- public helpers --------------------------------------------------------------------

    def messages_url(self, account_sid: str | None = None) -> str:
        """The full URL of the Messages list resource."""
        account = account_sid or self.account_sid
        return f"{self.base_url}/{API_VERSION}/Accounts/{account}/Messages.json"

    def open_window(self, number: str, at: datetime | None = None) -> None:
        """Record an inbound WhatsApp message from ``number`` (opens the 24 h window)."""
        self.last_inbound[_bare(number)] = at or self.now()

    def close_window(self, number: str) -> None:
        """Forget the last inbound WhatsApp message from ``number``."""
        self.last_inbound.pop(_bare(number), None)

    def window_open(self, number: str) -> bool:
        """Whether free-form WhatsApp messages to ``number`` are allowed now."""
        last = self.last_inbound.get(_bare(number))
        return last is not None and self.now() - last < WINDOW

    def sign(self, url: str, params: Mapping[str, str | Sequence[str]]) -> str:
        """The ``X-Twilio-Signature`` this account would put on a webhook to ``url``."""
        return twilio_signature(self.auth_token, url, params)

    async def deliver(
        self, sid: str, status: str, error_code: str | int | None = None, url: str | None = None
    ) -> int | None:
        """Set a message's status and POST one status callback for it; return the HTTP status.

        ``url`` defaults to the message's ``StatusCallback``. Useful for duplicate and
        out-of-order callbacks.
        """
        message = self.messages[sid]
        target = url or message.status_callback
        if target is None:
            raise ValueError(f"message {sid} has no StatusCallback; pass url=")
        code = str(error_code) if error_code is not None else None
        self._set_status(message, status, code)
        result = await self._status_callback(message, target, status, code)
        return result

    async def send_inbound(
        self,
        url: str,
        from_: str,
        to: str,
        body: str,
        whatsapp: bool = False,
        **extra: str,
    ) -> int | None:
        """POST a signed inbound-message webhook to ``url``; return our HTTP status.

        With ``whatsapp=True`` (or ``whatsapp:`` addresses) both addresses get the prefix, the
        user's 24 h window opens and ``ProfileName``/``WaId`` are added. Default keywords add
        ``OptOutType`` and update ``unsubscribed``. ``extra`` parameters are added (or
        override).
        """
        whatsapp = whatsapp or from_.startswith(WHATSAPP)
        if whatsapp:
            from_ = from_ if from_.startswith(WHATSAPP) else WHATSAPP + from_
            to = to if to.startswith(WHATSAPP) else WHATSAPP + to
        sid = _new_sid("SM")
        params: dict[str, str] = {
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsMessageSid": sid,
            "AccountSid": self.account_sid,
            "From": from_,
            "To": to,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": str(sms_segments(body)),
            "SmsStatus": "received",
            "ApiVersion": API_VERSION,
        }
        if whatsapp:
            params["ProfileName"] = "Fake WhatsApp User"
            params["WaId"] = re.sub(r"\D", "", from_)
            self.open_window(from_)
        keyword = body.strip().upper()
        if keyword in OPT_OUT_KEYWORDS:
            params["OptOutType"] = "STOP"
            self.unsubscribed.add(from_)
        elif keyword in OPT_IN_KEYWORDS:
            params["OptOutType"] = "START"
            self.unsubscribed.discard(from_)
        elif keyword in HELP_KEYWORDS:
            params["OptOutType"] = "HELP"
        params.update(extra)
        now = self.now()
        self.messages[sid] = TwilioMessage(
            sid=sid,
            account_sid=self.account_sid,
            to=to,
            from_=from_,
            body=body,
            status="received",
            direction="inbound",
            date_created=now,
            date_updated=now,
            date_sent=now,
            num_segments=params["NumSegments"],
            num_media=params["NumMedia"],
            messaging_service_sid=params.get("MessagingServiceSid"),
            params={k: [v] for k, v in params.items()},
            status_history=["received"],
        )
        result = await self._post_callback(
            "inbound", url, urlencode(params).encode(), self._webhook_headers(url, params)
        )
        return result.status

    # -- HTTP ------------------------------------------------------------------------------

    def _routes(self) -> list[web.RouteDef]:
        base = f"/{API_VERSION}/Accounts/{{account_sid}}/Messages"
        return [
            web.post(base + ".json", self._create),
            web.get(base + ".json", self._list),
            web.get(base + "/{sid}.json", self._fetch),
            web.post(base + "/{sid}.json", self._update),
        ]

    def _twilio_error(self, status: int, code: int, message: str) -> web.Response:
        response = web.json_response(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status=status,
        )
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        return response

    def _error_response(self, status: int, message: str) -> web.Response:
        return self._twilio_error(status, _STATUS_CODES.get(status, 20000 + status), message)

    def _authenticate(self, request: web.Request) -> web.Response | None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic" or not value.strip():
            return self._twilio_error(401, 20003, "Authenticate")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return self._twilio_error(401, 20003, "Authenticate")
        user, _, password = decoded.partition(":")
        expected = self.auth_token if user == self.account_sid else self.api_keys.get(user)
        if expected is None:
            return self._twilio_error(401, 20003, "Authentication Error - invalid username")
        if not hmac.compare_digest(password.encode(), expected.encode()):
            return self._twilio_error(401, 20003, "Authentication Error - invalid password")
        if request.match_info.get("account_sid") != self.account_sid:
            return self._twilio_error(
                404, 20404, f"The requested resource {request.path} was not found"
            )
        return None

    async def _form(self, request: web.Request) -> dict[str, list[str]]:
        if request.content_type != "application/x-www-form-urlencoded":
            return {}
        raw = await request.read()
        return parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)

    async def _create(self, request: web.Request) -> web.Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        params = await self._form(request)
        try:
            message = self._build_message(params)
        except _Reject as rejection:
            return self._twilio_error(rejection.status, rejection.code, rejection.message)
        self.messages[message.sid] = message
        if message.status != "scheduled":
            self._spawn(self._run_lifecycle(message, self._plan(message)))
        return web.json_response(message.resource(), status=201)

    async def _list(self, request: web.Request) -> web.Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        query = request.query
        try:
            page_size = int(query.get("PageSize", str(DEFAULT_PAGE_SIZE)))
            page = int(query.get("Page", "0"))
            sent_on = _date_filter(query.get("DateSent"))
            sent_before = _date_filter(query.get("DateSent<"))
            sent_after = _date_filter(query.get("DateSent>"))
        except ValueError as exc:
            return self._twilio_error(400, 20001, str(exc))
        if not 1 <= page_size <= MAX_PAGE_SIZE or page < 0:
            return self._twilio_error(
                400, 20001, f"PageSize must be between 1 and {MAX_PAGE_SIZE}, Page at least 0"
            )
        to, from_ = query.get("To"), query.get("From")

        def wanted(message: TwilioMessage) -> bool:
            if (to is not None and message.to != to) or (
                from_ is not None and message.from_ != from_
            ):
                return False
            sent = message.date_sent
            if sent_on is not None and (sent is None or _day_or_instant(sent, sent_on) != 0):
                return False
            if sent_before is not None and (sent is None or _day_or_instant(sent, sent_before) > 0):
                return False
            return sent_after is None or (
                sent is not None and _day_or_instant(sent, sent_after) >= 0
            )

        # Newest first; messages created in the same instant keep their order of creation.
        ordered = [m for m in reversed(self.messages.values()) if wanted(m)]
        ordered.sort(key=lambda m: m.date_created, reverse=True)
        start = page * page_size
        token = query.get("PageToken")
        if token is not None:
            sids = [m.sid for m in ordered]
            after = token.removeprefix("PA")
            if not token.startswith("PA") or after not in sids:
                return self._twilio_error(400, 20001, f"Invalid PageToken {token}")
            start = sids.index(after) + 1
        chunk = ordered[start : start + page_size]
        filters = [
            (name, query[name])
            for name in ("To", "From", "DateSent", "DateSent<", "DateSent>")
            if name in query
        ]
        path = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"

        def uri(number: int, page_token: str | None) -> str:
            params = [*filters, ("PageSize", str(page_size)), ("Page", str(number))]
            if page_token is not None:
                params.append(("PageToken", page_token))
            return f"{path}?{urlencode(params)}"

        more = start + page_size < len(ordered)
        return web.json_response(
            {
                "messages": [m.resource() for m in chunk],
                "page": page,
                "page_size": page_size,
                "start": start,
                "end": start + max(len(chunk) - 1, 0),
                "uri": uri(page, token),
                "first_page_uri": uri(0, None),
                "next_page_uri": uri(page + 1, "PA" + chunk[-1].sid) if more and chunk else None,
                "previous_page_uri": uri(page - 1, None) if page > 0 else None,
            }
        )

    async def _fetch(self, request: web.Request) -> web.Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        message = self.messages.get(request.match_info["sid"])
        if message is None:
            return self._twilio_error(
                404, 20404, f"The requested resource {request.path} was not found"
            )
        return web.json_response(message.resource())

    async def _update(self, request: web.Request) -> web.Response:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        message = self.messages.get(request.match_info["sid"])
        if message is None:
            return self._twilio_error(
                404, 20404, f"The requested resource {request.path} was not found"
            )
        params = await self._form(request)
        if params.get("Status", [""])[0] == "canceled":
            if message.status != "scheduled":
                return self._twilio_error(400, 30409, "Message cannot be canceled")
            self._set_status(message, "canceled", None)
        if params.get("Body") == [""]:
            message.body = ""
            message.date_updated = self.now()
        return web.json_response(message.resource())

    # -- validation ------------------------------------------------------------------------

    def _build_message(self, params: dict[str, list[str]]) -> TwilioMessage:
        def one(name: str) -> str | None:
            values = params.get(name)
            return values[0] if values else None

        to = one("To") or ""
        from_ = one("From") or None
        service = one("MessagingServiceSid") or None
        body = one("Body") or ""
        content_sid = one("ContentSid") or None
        content_variables = one("ContentVariables")
        media = [url for url in params.get("MediaUrl", []) if url]
        callback = one("StatusCallback") or None

        if not to:
            raise _Reject(400, 21604, "A 'To' phone number is required.")
        if from_ is None and service is None:
            raise _Reject(400, 21603, "A 'From' phone number is required.")
        if service is not None and (
            not SERVICE_SID_RE.match(service)
            or (self.messaging_services is not None and service not in self.messaging_services)
        ):
            raise _Reject(400, 21701, f"The Messaging Service Sid {service} is invalid.")
        if not E164_RE.match(_bare(to)) or _bare(to) in self.invalid_numbers:
            raise _Reject(400, 21211, f"Invalid 'To' Phone Number: {to}")
        whatsapp = to.startswith(WHATSAPP)
        if from_ is not None:
            sender = _bare(from_)
            from_whatsapp = from_.startswith(WHATSAPP)
            if not (E164_RE.match(sender) or (not from_whatsapp and ALPHA_SENDER_RE.match(sender))):
                raise _Reject(400, 21212, f"Invalid From Number (caller ID): {from_}")
            if from_whatsapp != whatsapp:
                raise _Reject(
                    400,
                    21910,
                    "Invalid From and To pair. From and To should be of the same channel",
                )
            if self.sender_numbers is not None and (
                from_ not in self.sender_numbers and sender not in self.sender_numbers
            ):
                if whatsapp:
                    raise _Reject(
                        400,
                        63007,
                        "Twilio could not find a Channel with the specified From address",
                    )
                raise _Reject(
                    400,
                    21606,
                    f"The From phone number {from_} is not a valid, SMS-capable inbound phone "
                    "number or short code for your account.",
                )
        if not body and content_sid is None and not media:
            raise _Reject(400, 21602, "Message body is required.")
        if len(body) > 1600:
            raise _Reject(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        variables: dict[str, Any] | None = None
        if content_sid is not None and not CONTENT_SID_RE.match(content_sid):
            raise _Reject(400, 21655, "The ContentSid is Invalid.")
        if content_variables is not None:
            variables = self._parse_variables(content_variables)
        for url in media:
            if urlparse(url).scheme not in {"http", "https"}:
                raise _Reject(400, 21620, f"Invalid media URL(s): {url}")
        if callback is not None and not _valid_callback(callback):
            raise _Reject(400, 21609, f"Invalid StatusCallback url: {callback}")
        if to in self.landlines or _bare(to) in self.landlines:
            raise _Reject(400, 21614, f"'To' number {to} is not a valid mobile number")
        if to in self.unsubscribed:
            raise _Reject(400, 21610, "Attempt to send to unsubscribed recipient")

        now = self.now()
        status = "queued" if service is None else "accepted"
        send_at = self._schedule(params, service, now)
        if send_at is not None:
            status = "scheduled"
        return TwilioMessage(
            sid=_new_sid("MM" if media else "SM"),
            account_sid=self.account_sid,
            to=to,
            from_=from_,
            body=body,
            status=status,
            direction="outbound-api",
            date_created=now,
            date_updated=now,
            messaging_service_sid=service,
            num_segments="0" if service is not None else str(sms_segments(body)),
            num_media=str(len(media)),
            status_callback=callback,
            content_sid=content_sid,
            content_variables=variables,
            media_urls=media,
            send_at=send_at,
            params=params,
            status_history=[status],
        )

    @staticmethod
    def _parse_variables(raw: str) -> dict[str, Any]:
        try:
            variables = json.loads(raw)
        except ValueError:
            variables = None
        if (
            not isinstance(variables, dict)
            or len(variables) > 100
            or not all(isinstance(v, str) for v in variables.values())
        ):
            raise _Reject(400, 21656, "The ContentVariables Parameter is invalid.")
        return variables

    def _schedule(
        self, params: dict[str, list[str]], service: str | None, now: datetime
    ) -> datetime | None:
        schedule_type = params.get("ScheduleType", [""])[0]
        if not schedule_type:
            return None
        if schedule_type != "fixed" or service is None:
            raise _Reject(400, 35111, "MessagingServiceSid is required to schedule a message.")
        raw = params.get("SendAt", [""])[0]
        try:
            send_at = datetime.fromisoformat(raw)
        except ValueError:
            send_at = None
        if send_at is not None and send_at.tzinfo is None:
            send_at = send_at.replace(tzinfo=UTC)
        if send_at is None or not (timedelta(minutes=15) <= send_at - now <= timedelta(days=35)):
            raise _Reject(400, 35114, "Scheduling does not support this timestamp.")
        return send_at

    # -- lifecycle and callbacks -----------------------------------------------------------

    def _plan(self, message: TwilioMessage) -> list[tuple[str, str | None]]:
        steps: list[tuple[str, str | None]] = []
        if message.status == "accepted":
            steps.append(("queued", None))
        free_form = message.content_sid is None
        if message.whatsapp and free_form and not self.window_open(message.to):
            return [*steps, ("failed", "63016")]
        code = self.failing_numbers.get(message.to) or self.failing_numbers.get(_bare(message.to))
        if code is not None:
            if code in FAILED_CODES:
                return [*steps, ("failed", code)]
            return [*steps, ("sent", None), ("undelivered", code)]
        return steps + [(status, None) for status in self.callback_sequence]

    async def _run_lifecycle(
        self, message: TwilioMessage, steps: list[tuple[str, str | None]]
    ) -> None:
        for status, code in steps:
            await asyncio.sleep(self.callback_delay)
            if message.status == "canceled":
                return
            self._set_status(message, status, code)
            if message.status_callback is not None:
                await self._status_callback(message, message.status_callback, status, code)

    def _set_status(self, message: TwilioMessage, status: str, code: str | None) -> None:
        now = self.now()
        message.status = status
        message.status_history.append(status)
        message.date_updated = now
        if message.from_ is None:
            sender = self.service_sender
            message.from_ = WHATSAPP + sender if message.whatsapp else sender
        if message.num_segments == "0":
            message.num_segments = str(sms_segments(message.body))
        if status == "sent" and message.date_sent is None:
            message.date_sent = now
        if code is not None and status in {"failed", "undelivered"}:
            message.error_code = int(code)
            message.error_message = ERROR_MESSAGES.get(code, "Unknown error")

    async def _status_callback(
        self, message: TwilioMessage, url: str, status: str, code: str | None
    ) -> int | None:
        params: dict[str, str] = {
            "MessageSid": message.sid,
            "SmsSid": message.sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "AccountSid": message.account_sid,
            "From": message.from_ or "",
            "To": message.to,
            "ApiVersion": API_VERSION,
        }
        if message.messaging_service_sid is not None:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if code is not None and status in {"failed", "undelivered"}:
            params["ErrorCode"] = code
        if status in {"delivered", "undelivered"} and not message.whatsapp:
            params["RawDlrDoneDate"] = self.now().strftime("%y%m%d%H%M")
        result = await self._post_callback(
            "status",
            url,
            urlencode(params).encode(),
            self._webhook_headers(url, params),
            retry_delays=self.callback_retry_delays,
        )
        return result.status

    def _webhook_headers(self, url: str, params: Mapping[str, str]) -> dict[str, str]:
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": self.sign(url, params),
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        }


def _date_filter(value: str | None) -> datetime | date | None:
    """A ``DateSent`` filter's value: a day (``YYYY-MM-DD``) or an instant (ISO 8601, as the
    helper libraries send it)."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"Invalid DateSent value {value!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _day_or_instant(sent: datetime, bound: datetime | date) -> int:
    """-1, 0 or 1 as ``sent`` is before, on or after ``bound`` (a day, or an instant)."""
    if isinstance(bound, datetime):
        left, right = sent.timestamp(), bound.timestamp()
    else:
        left, right = sent.astimezone(UTC).date().toordinal(), bound.toordinal()
    return (left > right) - (left < right)


def _valid_callback(url: str) -> bool:
    parsed = urlparse(url)
    host = parsed.hostname
    return parsed.scheme in {"http", "https"} and bool(host) and "_" not in (host or "")
