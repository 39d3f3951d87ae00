"""Twilio conformance: our adapter's requests against the official SDK's, response and error
mapping against canned answers, and signed webhooks through the real HTTP API.

The SDK (twilio 9.13.0) is a test-only reference: it is driven at the same capture server as
our adapter, and its own ``RequestValidator`` signs the webhook calls we must accept.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from multidict import MultiDict
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from outbound.adapters.db.models import InboundMessage, MessageEvent
from outbound.adapters.providers.base import ChannelInfo, OutgoingMessage, SendResult
from outbound.adapters.providers.http import HttpClient
from outbound.adapters.providers.twilio import TwilioProvider
from outbound.app import Container, build_container, create_app
from outbound.config import Settings
from outbound.errors import (
    CredentialsError,
    PermanentProviderError,
    ProviderError,
    RecipientOptedOutError,
    TransientProviderError,
)
from outbound.schemas import Role
from outbound.testing import FakeClock
from tests.helpers import Tenant, contact, make_tenant
from tests.integration.capture import Canned, Captured, CaptureServer

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f1e2d3c4b5a697887766554433221100"
API_KEY_SID = "SK" + "fedcba9876543210" * 2
API_KEY_SECRET = "s3cr3t-key-secret-0123456789abcd"
SERVICE_SID = "MG" + "00112233445566778899aabbccddeeff"
CONTENT_SID = "HX" + "a1b2c3d4e5f60718293a4b5c6d7e8f90"
MESSAGE_SID = "SM" + "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
SENDER = "+15005550006"
CUSTOMER = "+33612345678"
CALLBACK = "https://hooks.example.com/webhooks/ch-1"
PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
FORM = "application/x-www-form-urlencoded"
TEXT = "Hi Ana, case CAS-1 was updated."


# --- helpers ------------------------------------------------------------------------------


def message_resource(sid: str = MESSAGE_SID, **fields: Any) -> dict[str, Any]:
    """A Message resource as Twilio answers a create (HTTP 201)."""
    resource: dict[str, Any] = {
        "sid": sid,
        "account_sid": ACCOUNT_SID,
        "messaging_service_sid": None,
        "from": SENDER,
        "to": CUSTOMER,
        "body": TEXT,
        "status": "queued",
        "direction": "outbound-api",
        "num_segments": "1",
        "num_media": "0",
        "error_code": None,
        "error_message": None,
        "price": None,
        "price_unit": "USD",
        "api_version": "2010-04-01",
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
        "subresource_uris": {
            "media": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}/Media.json"
        },
        "date_created": "Thu, 15 Jan 2026 09:00:00 +0000",
        "date_updated": "Thu, 15 Jan 2026 09:00:00 +0000",
        "date_sent": None,
    }
    resource.update(fields)
    return resource


def twilio_error(code: int, status: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def channel(
    base_url: str,
    *,
    type: str = "sms",
    sender: str = SENDER,
    credentials: dict[str, str] | None = None,
) -> ChannelInfo:
    return ChannelInfo(
        id="ch-1",
        org_id="org-1",
        type=type,
        provider="twilio",
        sender=sender,
        base_url=base_url,
        credentials=credentials or {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN},
        options={},
    )


def outgoing(info: ChannelInfo, *, body: str = TEXT, **fields: Any) -> OutgoingMessage:
    values: dict[str, Any] = {"id": "msg-1", "org_id": "org-1", "to": CUSTOMER, "attempt": 1}
    values.update(fields)
    return OutgoingMessage(channel=info, body=body, **values)


async def send_ours(
    message: OutgoingMessage,
    *,
    callback: str | None = None,
    total_timeout: float = 10.0,
    clock: FakeClock | None = None,
) -> SendResult:
    http = HttpClient(total_timeout=total_timeout, connect_timeout=2.0)
    provider = TwilioProvider(http, status_callback=lambda _channel_id: callback, clock=clock)
    try:
        return await provider.send(message)
    finally:
        await provider.aclose()
        await http.aclose()


async def send_sdk(
    base_url: str,
    *,
    username: str = ACCOUNT_SID,
    password: str = AUTH_TOKEN,
    account_sid: str | None = None,
    **create: Any,
) -> Any:
    """``client.messages.create(**create)`` with the official SDK, in a thread."""

    def run() -> Any:
        client = Client(username, password, account_sid=account_sid)
        client.api.base_url = base_url
        try:
            return client.messages.create(**create)
        finally:
            session = getattr(client.http_client, "session", None)
            if session is not None:
                session.close()

    return await asyncio.to_thread(run)


def basic_credentials(request: Captured) -> str:
    scheme, _, token = (request.header("Authorization") or "").partition(" ")
    assert scheme == "Basic"
    return base64.b64decode(token).decode()


def same_fields(ours: dict[str, list[str]], sdk: dict[str, list[str]]) -> set[str]:
    """Fields both send carry the same values; returns the names only we send."""
    common = ours.keys() & sdk.keys()
    assert {k: ours[k] for k in common} == {k: sdk[k] for k in common}
    return set(ours) - set(sdk)


def assert_same_request(ours: Captured, sdk: Captured) -> None:
    assert (ours.method, ours.path, ours.query) == (sdk.method, sdk.path, sdk.query)
    assert ours.method == "POST"
    assert ours.path == PATH
    assert ours.query == {}
    assert basic_credentials(ours) == basic_credentials(sdk)
    for name in ("Content-Type", "Accept", "Accept-Charset"):
        assert ours.header(name) == sdk.header(name), name
    assert ours.header("Content-Type") == FORM


@pytest.fixture
async def api() -> AsyncIterator[CaptureServer]:
    async with CaptureServer(201, message_resource()) as server:
        yield server


# --- the send request against the SDK's --------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        TEXT,
        "Hé ça coûte 5 € & 10% = {x}+1? a/b;c\nligne 2 😀",
    ],
    ids=["ascii", "unicode-and-reserved"],
)
@pytest.mark.parametrize("callback", [None, CALLBACK], ids=["no-callback", "callback"])
async def test_sms_request_matches_the_sdk(
    api: CaptureServer, body: str, callback: str | None
) -> None:
    result = await send_ours(outgoing(channel(api.url), body=body), callback=callback)
    extra = {"status_callback": callback} if callback else {}
    sdk_message = await send_sdk(api.url, to=CUSTOMER, from_=SENDER, body=body, **extra)
    ours, sdk = api.requests
    assert_same_request(ours, sdk)
    assert basic_credentials(ours) == f"{ACCOUNT_SID}:{AUTH_TOKEN}"
    assert same_fields(ours.form(), sdk.form()) == set()
    assert set(sdk.form()) == set(ours.form())
    expected = {"To": [CUSTOMER], "From": [SENDER], "Body": [body]}
    if callback:
        expected["StatusCallback"] = [callback]
    assert ours.form() == expected
    # Both read the same answer the same way.
    assert result.provider_message_id == sdk_message.sid == MESSAGE_SID
    assert result.segments == int(sdk_message.num_segments) == 1


async def test_messaging_service_sender_matches_the_sdk(api: CaptureServer) -> None:
    await send_ours(outgoing(channel(api.url, sender=SERVICE_SID)))
    await send_sdk(api.url, to=CUSTOMER, messaging_service_sid=SERVICE_SID, body=TEXT)
    ours, sdk = api.requests
    assert_same_request(ours, sdk)
    assert same_fields(ours.form(), sdk.form()) == set()
    assert ours.form() == {"To": [CUSTOMER], "MessagingServiceSid": [SERVICE_SID], "Body": [TEXT]}


async def test_whatsapp_free_form_matches_the_sdk(api: CaptureServer) -> None:
    await send_ours(outgoing(channel(api.url, type="whatsapp")))
    await send_sdk(api.url, to=f"whatsapp:{CUSTOMER}", from_=f"whatsapp:{SENDER}", body=TEXT)
    ours, sdk = api.requests
    assert_same_request(ours, sdk)
    assert same_fields(ours.form(), sdk.form()) == set()
    assert ours.form()["To"] == [f"whatsapp:{CUSTOMER}"]
    assert ours.form()["From"] == [f"whatsapp:{SENDER}"]


async def test_whatsapp_template_matches_the_sdk(api: CaptureServer) -> None:
    variables = {"1": "Ana", "2": "CAS-1 — «mise à jour»"}
    message = outgoing(
        channel(api.url, type="whatsapp"),
        send_as_template=True,
        content_sid=CONTENT_SID,
        template_parameters=variables,
    )
    await send_ours(message, callback=CALLBACK)
    await send_sdk(
        api.url,
        to=f"whatsapp:{CUSTOMER}",
        from_=f"whatsapp:{SENDER}",
        content_sid=CONTENT_SID,
        content_variables=json.dumps(variables),
        status_callback=CALLBACK,
    )
    ours, sdk = api.requests
    assert_same_request(ours, sdk)
    ours_form, sdk_form = ours.form(), sdk.form()
    # ContentVariables is a JSON string: compare it parsed.
    assert json.loads(ours_form.pop("ContentVariables")[0]) == variables
    assert json.loads(sdk_form.pop("ContentVariables")[0]) == variables
    assert same_fields(ours_form, sdk_form) == set()
    assert set(ours_form) == set(sdk_form)
    assert "Body" not in ours_form  # a template carries no free-form body


async def test_api_key_credentials_match_the_sdk(api: CaptureServer) -> None:
    credentials = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "api_key_sid": API_KEY_SID,
        "api_key_secret": API_KEY_SECRET,
    }
    await send_ours(outgoing(channel(api.url, credentials=credentials)))
    await send_sdk(
        api.url,
        username=API_KEY_SID,
        password=API_KEY_SECRET,
        account_sid=ACCOUNT_SID,
        to=CUSTOMER,
        from_=SENDER,
        body=TEXT,
    )
    ours, sdk = api.requests
    assert_same_request(ours, sdk)  # the path names the account, the user is the key
    assert basic_credentials(ours) == f"{API_KEY_SID}:{API_KEY_SECRET}"
    assert same_fields(ours.form(), sdk.form()) == set()


# --- response and error mapping -----------------------------------------------------------


ERROR_CASES: list[tuple[str, int, Any, dict[str, str], type[ProviderError], str, float | None]] = [
    (
        "429-retry-after",
        429,
        twilio_error(20429, 429, "Too Many Requests"),
        {"Retry-After": "7"},
        TransientProviderError,
        "20429",
        7.0,
    ),
    (
        "429-http-date",
        429,
        twilio_error(20429, 429, "Too Many Requests"),
        {"Retry-After": "Thu, 15 Jan 2026 09:00:30 GMT"},
        TransientProviderError,
        "20429",
        30.0,
    ),
    (
        "500",
        500,
        twilio_error(20500, 500, "Internal Server Error"),
        {},
        TransientProviderError,
        "20500",
        None,
    ),
    ("503-no-json", 503, None, {}, TransientProviderError, "503", None),
    (
        "401",
        401,
        twilio_error(20003, 401, "Authenticate"),
        {},
        CredentialsError,
        "20003",
        None,
    ),
    (
        "21211",
        400,
        twilio_error(21211, 400, "The 'To' number +3361234 is not a valid phone number."),
        {},
        PermanentProviderError,
        "21211",
        None,
    ),
    (
        "21610",
        400,
        twilio_error(21610, 400, "Attempt to send to unsubscribed recipient"),
        {},
        RecipientOptedOutError,
        "21610",
        None,
    ),
    (
        "21611-queue-full",
        400,
        twilio_error(21611, 400, "This 'From' number has exceeded the maximum number of queued"),
        {},
        TransientProviderError,
        "21611",
        None,
    ),
]


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "code", "retry_after"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
async def test_error_answers_map_to_provider_errors(
    status: int,
    body: Any,
    headers: dict[str, str],
    error: type[ProviderError],
    code: str,
    retry_after: float | None,
) -> None:
    answer = (
        Canned(status=status, body=b"<html>Service Unavailable</html>", content_type="text/html")
        if body is None
        else Canned.of(status, body, headers)
    )
    async with CaptureServer(answer=answer) as server:
        with pytest.raises(ProviderError) as caught:
            await send_ours(outgoing(channel(server.url)), clock=FakeClock())
        # The SDK reads the same canned answer as the same error.
        with pytest.raises(TwilioRestException) as sdk_caught:
            await send_sdk(server.url, to=CUSTOMER, from_=SENDER, body=TEXT)
    assert type(caught.value) is error
    assert caught.value.code == code
    assert caught.value.retry_after == retry_after
    assert sdk_caught.value.status == status
    if body is not None:
        assert str(sdk_caught.value.code) == code


async def test_success_without_segments_leaves_them_unknown() -> None:
    answer = message_resource(num_segments="0", messaging_service_sid=SERVICE_SID)
    async with CaptureServer(201, answer) as server:
        result = await send_ours(outgoing(channel(server.url, sender=SERVICE_SID)))
    assert result == SendResult(provider_message_id=MESSAGE_SID, segments=None)


async def test_a_connection_dropped_after_the_request_is_of_unknown_outcome() -> None:
    async with CaptureServer(behaviour="close") as server:
        with pytest.raises(TransientProviderError) as caught:
            await send_ours(outgoing(channel(server.url)))
        assert len(server.requests) == 1
    assert caught.value.code == "connection_lost"  # it may have been received


async def test_timeout_is_transient() -> None:
    async with CaptureServer(201, message_resource(), behaviour="sleep", sleep_seconds=5) as server:
        with pytest.raises(TransientProviderError) as caught:
            await send_ours(outgoing(channel(server.url)), total_timeout=0.3)
    assert caught.value.code == "timeout"


# --- webhooks through the HTTP API -----------------------------------------------------------


def _created(request: Captured) -> Canned:
    form = request.form()
    return Canned.of(
        201, message_resource(to=form["To"][0], body=form.get("Body", [""])[0], status="queued")
    )


@pytest.fixture
async def twilio_api(tenant: Tenant, container: Container) -> AsyncIterator[CaptureServer]:
    """The capture server standing in for Twilio; the container's client is closed here, in
    the loop that opened it."""
    async with CaptureServer(answer=_created) as server:
        try:
            yield server
        finally:
            await container.http.aclose()


def create_channel(
    tenant: Tenant,
    base_url: str,
    *,
    type: str = "sms",
    sender: str = SENDER,
    auth_token: str = AUTH_TOKEN,
) -> dict[str, Any]:
    response = tenant.post(
        "/v1/channels",
        {
            "name": f"Twilio {type}",
            "type": type,
            "provider": "twilio",
            "sender": sender,
            "base_url": base_url,
            "credentials": {"account_sid": ACCOUNT_SID, "auth_token": auth_token},
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def create_configuration(
    tenant: Tenant, channel_id: str, *, type: str = "sms", content_sid: str | None = None
) -> str:
    template = tenant.post(
        "/v1/templates",
        {
            "name": "Case update",
            "channel_type": type,
            "default_locale": "en-US",
            "default_text": "Hi {CustomerName}, case {CaseName} was updated.",
            "content_sid": content_sid,
        },
    )
    assert template.status_code == 201, template.text
    config = tenant.post(
        "/v1/outbound-configurations",
        {
            "name": "Case updates",
            "channel_type": type,
            "channel_id": channel_id,
            "template_id": template.json()["id"],
            "default_locale": "en-US",
        },
    )
    assert config.status_code == 201, config.text
    return str(config.json()["id"])


async def send_and_dispatch(
    tenant: Tenant, container: Container, config_id: str, **overrides: Any
) -> dict[str, Any]:
    response = tenant.post(
        "/v1/outbound/send",
        {"configuration_id": config_id, "contacts": [contact(CUSTOMER, **overrides)]},
    )
    assert response.status_code == 202, response.text
    message_id = response.json()["results"][0]["message_id"]
    assert await container.dispatcher().run_once() == 1
    detail = tenant.get(f"/v1/messages/{message_id}")
    assert detail.status_code == 200, detail.text
    return dict(detail.json())


def post_signed(
    client: TestClient,
    path: str,
    params: dict[str, str],
    *,
    sign_url: str,
    token: str = AUTH_TOKEN,
    body: dict[str, str] | None = None,
    signature: str | None = None,
) -> Any:
    """POST ``body`` (default ``params``) form-encoded, signed over ``params`` by the SDK."""
    headers = {"Content-Type": FORM}
    computed = RequestValidator(token).compute_signature(sign_url, params)
    headers["X-Twilio-Signature"] = computed if signature is None else signature
    if signature == "":
        del headers["X-Twilio-Signature"]
    return client.post(path, content=urlencode(body or params), headers=headers)


def status_form(sid: str, status: str, **extra: str) -> dict[str, str]:
    form = {
        "SmsSid": sid,
        "SmsStatus": status,
        "MessageStatus": status,
        "To": CUSTOMER,
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": SENDER,
        "ApiVersion": "2010-04-01",
    }
    form.update(extra)
    return form


def inbound_form(
    sid: str, body: str, *, sender: str = CUSTOMER, to: str = SENDER
) -> dict[str, str]:
    return {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": "FR",
        "To": to,
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }


def internal_url(path: str) -> str:
    return "http://testserver" + path


def event_count(container: Container, message_id: str) -> int:
    with container.db.read() as session:
        return int(
            session.execute(
                sa.select(sa.func.count(MessageEvent.id)).where(
                    MessageEvent.message_id == message_id
                )
            ).scalar_one()
        )


def inbound_count(container: Container) -> int:
    with container.db.read() as session:
        return int(session.execute(sa.select(sa.func.count(InboundMessage.id))).scalar_one())


async def test_dispatch_sends_what_the_sdk_sends(
    tenant: Tenant, container: Container, twilio_api: CaptureServer
) -> None:
    ch = create_channel(tenant, twilio_api.url)
    detail = await send_and_dispatch(tenant, container, create_configuration(tenant, ch["id"]))
    assert detail["status"] == "sent"
    assert detail["provider_message_id"] == MESSAGE_SID
    await send_sdk(twilio_api.url, to=CUSTOMER, from_=SENDER, body=TEXT)
    ours, sdk = twilio_api.requests
    assert_same_request(ours, sdk)
    assert same_fields(ours.form(), sdk.form()) == set()
    # No public_base_url: no StatusCallback (Twilio then uses the number's configured URL).
    assert "StatusCallback" not in ours.form()


async def test_whatsapp_template_dispatch_sends_what_the_sdk_sends(
    tenant: Tenant, container: Container, twilio_api: CaptureServer
) -> None:
    ch = create_channel(tenant, twilio_api.url, type="whatsapp")
    config_id = create_configuration(tenant, ch["id"], type="whatsapp", content_sid=CONTENT_SID)
    variables = {"1": "Ana", "2": "CAS-1"}
    detail = await send_and_dispatch(
        tenant, container, config_id, sendastemplate=True, templateparameters=variables
    )
    assert detail["status"] == "sent", detail
    await send_sdk(
        twilio_api.url,
        to=f"whatsapp:{CUSTOMER}",
        from_=f"whatsapp:{SENDER}",
        content_sid=CONTENT_SID,
        content_variables=json.dumps(variables),
    )
    ours, sdk = twilio_api.requests
    assert_same_request(ours, sdk)
    ours_form, sdk_form = ours.form(), sdk.form()
    assert json.loads(ours_form.pop("ContentVariables")[0]) == variables
    assert json.loads(sdk_form.pop("ContentVariables")[0]) == variables
    assert same_fields(ours_form, sdk_form) == set()
    assert set(ours_form) == set(sdk_form)


@pytest.mark.parametrize(
    ("status", "extra", "expected", "error_code"),
    [
        ("delivered", {"RawDlrDoneDate": "2601150901"}, "delivered", None),
        ("read", {}, "delivered", None),
        ("undelivered", {"ErrorCode": "30003"}, "undelivered", "30003"),
        ("failed", {"ErrorCode": "30007", "ErrorMessage": "Carrier violation"}, "failed", "30007"),
    ],
)
async def test_signed_status_callback_updates_the_message(
    tenant: Tenant,
    container: Container,
    twilio_api: CaptureServer,
    status: str,
    extra: dict[str, str],
    expected: str,
    error_code: str | None,
) -> None:
    ch = create_channel(tenant, twilio_api.url)
    sent = await send_and_dispatch(tenant, container, create_configuration(tenant, ch["id"]))
    path = ch["webhook_url"]
    assert path == f"/webhooks/{ch['id']}"
    params = status_form(sent["provider_message_id"], status, **extra)
    response = post_signed(tenant.client, path, params, sign_url=internal_url(path))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    assert "<Response/>" in response.text
    detail = tenant.get(f"/v1/messages/{sent['id']}").json()
    assert detail["status"] == expected
    assert detail["error_code"] == error_code


@pytest.mark.parametrize(
    "attack", ["tampered-body", "wrong-token", "missing-signature", "other-url"]
)
async def test_badly_signed_status_callback_is_refused(
    tenant: Tenant, container: Container, twilio_api: CaptureServer, attack: str
) -> None:
    ch = create_channel(tenant, twilio_api.url)
    sent = await send_and_dispatch(tenant, container, create_configuration(tenant, ch["id"]))
    path = ch["webhook_url"]
    params = status_form(sent["provider_message_id"], "undelivered", ErrorCode="30003")
    before = event_count(container, sent["id"])
    kwargs: dict[str, Any] = {"sign_url": internal_url(path)}
    if attack == "tampered-body":
        kwargs["body"] = {**params, "MessageStatus": "delivered", "SmsStatus": "delivered"}
    elif attack == "wrong-token":
        kwargs["token"] = "0" * 32
    elif attack == "missing-signature":
        kwargs["signature"] = ""
    else:
        kwargs["sign_url"] = internal_url(f"/webhooks/{ch['id']}x")
    response = post_signed(tenant.client, path, params, **kwargs)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "invalid_signature"
    detail = tenant.get(f"/v1/messages/{sent['id']}").json()
    assert (detail["status"], detail["error_code"]) == ("sent", None)
    assert event_count(container, sent["id"]) == before


async def test_a_callback_on_one_channel_cannot_touch_another_tenants_message(
    tenant: Tenant, other_tenant: Tenant, container: Container, twilio_api: CaptureServer
) -> None:
    ch = create_channel(tenant, twilio_api.url)
    sent = await send_and_dispatch(tenant, container, create_configuration(tenant, ch["id"]))
    # Another organisation's channel, with credentials of its own choosing.
    foreign_token = "b" * 32
    foreign = create_channel(other_tenant, twilio_api.url, auth_token=foreign_token)
    path = foreign["webhook_url"]
    params = status_form(sent["provider_message_id"], "failed", ErrorCode="30007")
    response = post_signed(
        other_tenant.client, path, params, sign_url=internal_url(path), token=foreign_token
    )
    assert response.status_code in (200, 403)
    detail = tenant.get(f"/v1/messages/{sent['id']}").json()
    assert (detail["status"], detail["error_code"]) == ("sent", None)


async def test_signed_inbound_message_opens_a_conversation(
    tenant: Tenant, container: Container, twilio_api: CaptureServer
) -> None:
    ch = create_channel(tenant, twilio_api.url)
    sent = await send_and_dispatch(tenant, container, create_configuration(tenant, ch["id"]))
    path = ch["webhook_url"]
    params = inbound_form("SM" + "1" * 32, "Merci, à demain !")
    for _ in range(2):  # Twilio retries: the second call is a duplicate
        response = post_signed(tenant.client, path, params, sign_url=internal_url(path))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/xml")
    assert inbound_count(container) == 1
    conversations = tenant.get("/v1/conversations", role=Role.ADMIN).json()["data"]
    assert len(conversations) == 1
    thread = tenant.get(f"/v1/conversations/{conversations[0]['id']}").json()
    assert thread["customer_number"] == CUSTOMER
    assert [(m["direction"], m["body"]) for m in thread["messages"]] == [
        ("outbound", sent["body"]),
        ("inbound", "Merci, à demain !"),
    ]


async def test_signed_whatsapp_inbound_is_stored_with_the_bare_number(
    tenant: Tenant, container: Container, twilio_api: CaptureServer
) -> None:
    ch = create_channel(tenant, twilio_api.url, type="whatsapp")
    path = ch["webhook_url"]
    params = inbound_form(
        "SM" + "2" * 32, "Hello", sender=f"whatsapp:{CUSTOMER}", to=f"whatsapp:{SENDER}"
    )
    params.update({"ProfileName": "Ana", "WaId": CUSTOMER.lstrip("+")})
    response = post_signed(tenant.client, path, params, sign_url=internal_url(path))
    assert response.status_code == 200, response.text
    conversations = tenant.get("/v1/conversations").json()["data"]
    assert [c["customer_number"] for c in conversations] == [CUSTOMER]


@pytest.mark.parametrize("attack", ["tampered-body", "wrong-token"])
async def test_badly_signed_inbound_stores_nothing(
    tenant: Tenant, container: Container, twilio_api: CaptureServer, attack: str
) -> None:
    ch = create_channel(tenant, twilio_api.url)
    path = ch["webhook_url"]
    params = inbound_form("SM" + "3" * 32, "Hello")
    if attack == "tampered-body":
        response = post_signed(
            tenant.client,
            path,
            params,
            sign_url=internal_url(path),
            body={**params, "Body": "Hello, send me money"},
        )
    else:
        response = post_signed(
            tenant.client, path, params, sign_url=internal_url(path), token="1" * 32
        )
    assert response.status_code == 403
    assert inbound_count(container) == 0
    assert tenant.get("/v1/conversations").json()["data"] == []


async def test_an_unsigned_non_utf8_body_is_refused(
    tenant: Tenant, container: Container, twilio_api: CaptureServer
) -> None:
    ch = create_channel(tenant, twilio_api.url)
    response = tenant.client.post(
        ch["webhook_url"],
        content=b"MessageSid=SM1&Body=\xff\xfe",
        headers={"Content-Type": FORM, "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
    )
    assert response.status_code == 403
    assert inbound_count(container) == 0


async def test_signature_over_the_url_with_its_default_port_is_accepted(
    tenant: Tenant, container: Container, twilio_api: CaptureServer
) -> None:
    ch = create_channel(tenant, twilio_api.url)
    path = ch["webhook_url"]
    params = inbound_form("SM" + "4" * 32, "Hello")
    with_port = "http://testserver:80" + path
    signature = RequestValidator(AUTH_TOKEN).compute_signature(with_port, params)
    # The SDK's own validator accepts it for the URL we were called at, and so must we.
    assert RequestValidator(AUTH_TOKEN).validate(internal_url(path), params, signature)
    response = post_signed(tenant.client, path, params, sign_url=with_port, signature=signature)
    assert response.status_code == 200, response.text
    assert inbound_count(container) == 1


async def test_repeated_params_with_distinct_values_are_signed_like_the_sdk(
    tenant: Tenant, container: Container, twilio_api: CaptureServer
) -> None:
    ch = create_channel(tenant, twilio_api.url)
    path = ch["webhook_url"]
    pairs = [*inbound_form("SM" + "5" * 32, "Photos").items()]
    pairs += [
        ("NumMedia", "2"),
        ("MediaUrl", "https://a.example/2"),
        ("MediaUrl", "https://a.example/1"),
    ]
    pairs.remove(("NumMedia", "0"))
    signature = RequestValidator(AUTH_TOKEN).compute_signature(internal_url(path), MultiDict(pairs))
    response = tenant.client.post(
        path,
        content=urlencode(pairs),
        headers={"Content-Type": FORM, "X-Twilio-Signature": signature},
    )
    assert response.status_code == 200, response.text
    assert inbound_count(container) == 1


async def test_repeated_params_with_equal_values_are_signed_like_the_sdk(
    tenant: Tenant, container: Container, twilio_api: CaptureServer
) -> None:
    ch = create_channel(tenant, twilio_api.url)
    path = ch["webhook_url"]
    pairs = [*inbound_form("SM" + "6" * 32, "Photos").items()]
    pairs += [("MediaUrl", "https://a.example/1"), ("MediaUrl", "https://a.example/1")]
    validator = RequestValidator(AUTH_TOKEN)
    signature = validator.compute_signature(internal_url(path), MultiDict(pairs))
    assert validator.validate(internal_url(path), MultiDict(pairs), signature)
    response = tenant.client.post(
        path,
        content=urlencode(pairs),
        headers={"Content-Type": FORM, "X-Twilio-Signature": signature},
    )
    assert response.status_code == 200, response.text


@pytest.fixture
def public_base() -> str:
    return "https://sms.example.com/"


@pytest.fixture
def proxied(settings: Settings, clock: FakeClock, public_base: str) -> Iterator[Container]:
    """A container whose public URL (behind a TLS-terminating proxy) differs from its own."""
    c = build_container(settings.model_copy(update={"public_base_url": public_base}), clock=clock)
    c.migrate()
    yield c
    c.db.dispose()


@pytest.mark.parametrize(
    "public_base", ["https://sms.example.com/", "https://sms.example.com:8443"]
)
async def test_behind_a_proxy_the_public_url_is_what_is_signed(
    proxied: Container, public_base: str
) -> None:
    async with CaptureServer(answer=_created) as server:
        with TestClient(create_app(proxied, run_worker=False)) as client:
            try:
                tenant = make_tenant(proxied, client)
                ch = create_channel(tenant, server.url)
                path = f"/webhooks/{ch['id']}"
                public = public_base.rstrip("/") + path
                assert ch["webhook_url"] == public
                sent = await send_and_dispatch(
                    tenant, proxied, create_configuration(tenant, ch["id"])
                )
                # The callback URL we register is the URL we verify against.
                assert server.last.form()["StatusCallback"] == [public]
                await send_sdk(
                    server.url, to=CUSTOMER, from_=SENDER, body=TEXT, status_callback=public
                )
                ours, sdk = server.requests
                assert same_fields(ours.form(), sdk.form()) == set()

                params = status_form(sent["provider_message_id"], "delivered")
                refused = post_signed(client, path, params, sign_url=internal_url(path))
                assert refused.status_code == 403
                assert tenant.get(f"/v1/messages/{sent['id']}").json()["status"] == "sent"
                accepted = post_signed(client, path, params, sign_url=public)
                assert accepted.status_code == 200, accepted.text
                assert tenant.get(f"/v1/messages/{sent['id']}").json()["status"] == "delivered"
            finally:
                await proxied.http.aclose()


@pytest.mark.parametrize("public_base", ["https://sms.example.com:8443"])
async def test_behind_a_proxy_on_another_port_a_portless_signature_is_accepted(
    proxied: Container, public_base: str
) -> None:
    with TestClient(create_app(proxied, run_worker=False)) as client:
        tenant = make_tenant(proxied, client)
        ch = create_channel(tenant, "http://127.0.0.1:9")
        path = f"/webhooks/{ch['id']}"
        params = inbound_form("SM" + "7" * 32, "Hello")
        portless = "https://sms.example.com" + path
        validator = RequestValidator(AUTH_TOKEN)
        signature = validator.compute_signature(portless, params)
        assert validator.validate(ch["webhook_url"], params, signature)
        response = post_signed(client, path, params, sign_url=portless)
        assert response.status_code == 200, response.text


@pytest.fixture
def forwarded(settings: Settings, clock: FakeClock) -> Iterator[Container]:
    """A container that rebuilds its public URL from X-Forwarded-Proto/Host."""
    c = build_container(settings.model_copy(update={"trust_forwarded_headers": True}), clock=clock)
    c.migrate()
    yield c
    c.db.dispose()


def test_behind_a_proxy_forwarded_headers_give_the_signed_url(forwarded: Container) -> None:
    with TestClient(create_app(forwarded, run_worker=False)) as client:
        tenant = make_tenant(forwarded, client)
        ch = create_channel(tenant, "http://127.0.0.1:9")
        path = ch["webhook_url"]
        public = "https://sms.example.com" + path
        params = inbound_form("SM" + "8" * 32, "Hello")
        signature = RequestValidator(AUTH_TOKEN).compute_signature(public, params)
        proxy_headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sms.example.com"}
        direct = client.post(
            path,
            content=urlencode(params),
            headers={"Content-Type": FORM, "X-Twilio-Signature": signature},
        )
        assert direct.status_code == 403
        proxied = client.post(
            path,
            content=urlencode(params),
            headers={"Content-Type": FORM, "X-Twilio-Signature": signature, **proxy_headers},
        )
        assert proxied.status_code == 200, proxied.text
        assert inbound_count(forwarded) == 1
