"""TeleSign conformance: our adapter's requests against the official SDK's, response and error
mapping against canned answers, and signed callbacks through the real HTTP API.

The SDK (telesign 4.1.1, synchronous, run in a thread) is a test-only reference. Both requests'
``Authorization: TSA customer_id:signature`` are recomputed from what the server captured
(Date, x-ts-nonce, raw body), with the SDK's own signing code and independently.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import email.utils
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from telesign.messaging import MessagingClient
from telesign.rest import RestClient
from telesign.util import verify_telesign_callback_signature

from outbound.adapters.db.models import InboundMessage, MessageEvent
from outbound.adapters.providers.base import ChannelInfo, OutgoingMessage, SendResult
from outbound.adapters.providers.http import HttpClient
from outbound.adapters.providers.telesign import TeleSignProvider, telesign_signature
from outbound.app import Container, build_container, create_app
from outbound.config import Settings
from outbound.errors import (
    CredentialsError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)
from outbound.testing import FakeClock
from tests.helpers import Tenant, contact, make_tenant
from tests.integration.capture import Canned, Captured, CaptureServer

CUSTOMER_ID = "FFFFFFFF-EEEE-DDDD-1234-AB1234567890"
API_KEY = base64.b64encode(bytes(range(7, 71))).decode()  # 64 random-looking bytes
OTHER_KEY = base64.b64encode(bytes(range(100, 164))).decode()
REFERENCE = "0123456789ABCDEF0123456789ABCDEF"
SENDER = "+15005550006"
CUSTOMER = "+33612345678"
TEXT = "Hi Ana, case CAS-1 was updated."
RESOURCE = "/v1/messaging"
FORM = "application/x-www-form-urlencoded"
CALLBACK = "https://hooks.example.com/webhooks/ch-1"
ACCEPTED = {
    "reference_id": REFERENCE,
    "status": {"code": 290, "description": "Message in progress"},
}


# --- helpers ------------------------------------------------------------------------------


def channel(
    base_url: str, *, sender: str = SENDER, options: dict[str, Any] | None = None
) -> ChannelInfo:
    return ChannelInfo(
        id="ch-1",
        org_id="org-1",
        type="sms",
        provider="telesign",
        sender=sender,
        base_url=base_url,
        credentials={"customer_id": CUSTOMER_ID, "api_key": API_KEY},
        options=options or {},
    )


def outgoing(info: ChannelInfo, *, body: str = TEXT, id: str = "msg-1") -> OutgoingMessage:
    return OutgoingMessage(id=id, org_id="org-1", channel=info, to=CUSTOMER, body=body, attempt=1)


async def send_ours(
    message: OutgoingMessage,
    *,
    callback: str | None = None,
    clock: FakeClock | None = None,
    total_timeout: float = 10.0,
) -> SendResult:
    http = HttpClient(total_timeout=total_timeout, connect_timeout=2.0)
    provider = TeleSignProvider(http, status_callback=lambda _channel_id: callback, clock=clock)
    try:
        return await provider.send(message)
    finally:
        await provider.aclose()
        await http.aclose()


async def send_sdk(
    base_url: str, phone_number: str, message: str, message_type: str, **params: str
) -> Any:
    """``MessagingClient.message(...)`` with the official SDK, in a thread; its Response."""

    def run() -> Any:
        client = MessagingClient(CUSTOMER_ID, API_KEY, rest_endpoint=base_url)
        try:
            return client.message(phone_number, message, message_type, **params)
        finally:
            client.session.close()

    return await asyncio.to_thread(run)


def independent_signature(api_key: str, request: Captured) -> str:
    """TeleSign's string-to-sign, written out again from its documentation."""
    string_to_sign = "\n".join(
        [
            request.method,
            request.header("Content-Type") or "",
            request.header("Date") or "",
            "x-ts-auth-method:HMAC-SHA256",
            f"x-ts-nonce:{request.header('x-ts-nonce')}",
            request.body.decode("utf-8"),
            request.path,
        ]
    )
    digest = hmac.new(base64.b64decode(api_key), string_to_sign.encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


def assert_signed(request: Captured) -> None:
    """The captured Authorization is the TSA signature of the captured request."""
    scheme, _, credentials = (request.header("Authorization") or "").partition(" ")
    assert scheme == "TSA"
    customer_id, _, signature = credentials.partition(":")
    assert customer_id == CUSTOMER_ID
    assert request.header("x-ts-auth-method") == "HMAC-SHA256"
    uuid.UUID(request.header("x-ts-nonce") or "")
    date = email.utils.parsedate_to_datetime(request.header("Date") or "")
    assert date.tzinfo is not None
    assert (request.header("Date") or "").endswith(" GMT")
    # The SDK's own signing code, fed the captured date, nonce and body:
    sdk_headers = RestClient.generate_telesign_headers(
        CUSTOMER_ID,
        API_KEY,
        request.method,
        request.path,
        request.body.decode("utf-8"),
        date_rfc2616=request.header("Date"),
        nonce=request.header("x-ts-nonce"),
    )
    assert sdk_headers["Authorization"] == request.header("Authorization")
    assert sdk_headers["Content-Type"] == request.header("Content-Type") == FORM
    assert signature == independent_signature(API_KEY, request)


def same_fields(ours: dict[str, list[str]], sdk: dict[str, list[str]]) -> set[str]:
    """Fields both send carry the same values; returns the names only we send."""
    common = ours.keys() & sdk.keys()
    assert {k: ours[k] for k in common} == {k: sdk[k] for k in common}
    return set(ours) - set(sdk)


def assert_same_request(ours: Captured, sdk: Captured) -> None:
    assert (ours.method, ours.path, ours.query) == (sdk.method, sdk.path, sdk.query)
    assert (ours.method, ours.path, ours.query) == ("POST", RESOURCE, {})
    for request in (ours, sdk):
        assert_signed(request)


@pytest.fixture
async def api() -> AsyncIterator[CaptureServer]:
    async with CaptureServer(200, ACCEPTED) as server:
        yield server


# --- the send request against the SDK's --------------------------------------------------


def test_signature_matches_the_documented_test_vectors() -> None:
    key = "EXAMPLE----TE8sTgg45yusumoN6BYsBVkh+yRJ5czgsnCehZaOYldPJdmFh6NeX8kunZ2zU1YWaUw/0wV6xfw=="
    common = {
        "date": "Wed, 14 Dec 2016 18:20:12 GMT",
        "nonce": "A1592C6F-E384-4CDB-BC42-C3AB970369E9",
        "resource": "/v1/resource",
    }
    assert (
        telesign_signature(key, method="POST", content_type=FORM, body="test=param", **common)
        == "2xVlmbrxLjYrrPun3G3WMNG6Jon4yKcTeOoK9DjXJ/Q="
    )
    assert (
        telesign_signature(key, method="POST", content_type=FORM, body="test=%CF%BF", **common)
        == "h8d4I0RTxErbxYXuzCOtNqb/f0w3Ck8e5SEkGNj01+8="
    )
    assert (
        telesign_signature(key, method="GET", content_type="", body="", **common)
        == "aUm7I+9GKl3ww7PNeeJntCT0iS7b+EmRKEE4LnRzChQ="
    )


@pytest.mark.parametrize(
    "body",
    [TEXT, "Hé ça coûte 5 € & 10% = {x}+1? a/b;c\nligne 2 😀"],
    ids=["ascii", "unicode-and-reserved"],
)
async def test_sms_request_matches_the_sdk(api: CaptureServer, body: str) -> None:
    result = await send_ours(outgoing(channel(api.url), body=body))
    sdk_response = await send_sdk(api.url, CUSTOMER.lstrip("+"), body, "ARN")
    ours, sdk = api.requests
    assert_same_request(ours, sdk)
    # We also send external_id (our message id), which the SDK call does not.
    assert same_fields(ours.form(), sdk.form()) == {"external_id"}
    assert ours.form() == {
        "phone_number": ["33612345678"],
        "message": [body],
        "message_type": ["ARN"],
        "external_id": ["msg-1"],
    }
    assert result.provider_message_id == sdk_response.json["reference_id"] == REFERENCE


async def test_date_and_nonce_are_the_clock_and_fresh(api: CaptureServer) -> None:
    clock = FakeClock()
    await send_ours(outgoing(channel(api.url)), clock=clock)
    clock.advance(1)
    await send_ours(outgoing(channel(api.url)), clock=clock)
    first, second = api.requests
    assert first.header("Date") == "Thu, 15 Jan 2026 09:00:00 GMT"
    assert second.header("Date") == "Thu, 15 Jan 2026 09:00:01 GMT"
    assert first.header("x-ts-nonce") != second.header("x-ts-nonce")
    assert first.header("Authorization") != second.header("Authorization")


async def test_options_sender_id_and_callback_match_the_sdk(api: CaptureServer) -> None:
    info = channel(api.url, sender="ACME", options={"message_type": "OTP"})
    await send_ours(outgoing(info), callback=CALLBACK)
    await send_sdk(
        api.url,
        CUSTOMER.lstrip("+"),
        TEXT,
        "OTP",
        sender_id="ACME",
        callback_url=CALLBACK,
        external_id="msg-1",
    )
    ours, sdk = api.requests
    assert_same_request(ours, sdk)
    assert same_fields(ours.form(), sdk.form()) == set()
    assert set(ours.form()) == set(sdk.form())
    assert ours.form()["sender_id"] == ["ACME"]
    assert ours.form()["callback_url"] == [CALLBACK]


async def test_a_wrong_key_does_not_verify(api: CaptureServer) -> None:
    await send_ours(outgoing(channel(api.url)))
    (ours,) = api.requests
    assert independent_signature(OTHER_KEY, ours) not in (ours.header("Authorization") or "")


# --- response and error mapping -----------------------------------------------------------


def telesign_error(code: int, description: str, status_code: int = 0) -> dict[str, Any]:
    return {
        "reference_id": None,
        "status": {"code": status_code or 10000, "description": description},
        "errors": [{"code": code, "description": description}],
    }


ERROR_CASES: list[tuple[str, int, Any, dict[str, str], type[ProviderError], str, float | None]] = [
    (
        "429-retry-after",
        429,
        {"status": {"code": 3204, "description": "Rate limit exceeded"}},
        {"Retry-After": "12"},
        TransientProviderError,
        "3204",
        12.0,
    ),
    ("500", 500, telesign_error(-1, "Internal error"), {}, TransientProviderError, "-1", None),
    ("503-no-json", 503, None, {}, TransientProviderError, "503", None),
    (
        "401",
        401,
        telesign_error(-30006, "Invalid Signature."),
        {},
        CredentialsError,
        "-30006",
        None,
    ),
    (
        "400-phone-number",
        400,
        telesign_error(11000, "Invalid value for parameter phone_number."),
        {},
        PermanentProviderError,
        "11000",
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
        sdk_response = await send_sdk(server.url, CUSTOMER.lstrip("+"), TEXT, "ARN")
    assert type(caught.value) is error
    assert caught.value.code == code
    assert caught.value.retry_after == retry_after
    # The SDK does not raise: it hands back the status and the parsed JSON we mapped.
    assert sdk_response.status_code == status
    assert not sdk_response.ok
    assert sdk_response.json == body


@pytest.mark.parametrize("code", [290, 203])
async def test_accepted_status_codes_are_success(code: int) -> None:
    answer = {"reference_id": REFERENCE, "status": {"code": code, "description": "ok"}}
    async with CaptureServer(200, answer) as server:
        result = await send_ours(outgoing(channel(server.url)))
    assert result == SendResult(provider_message_id=REFERENCE)


async def test_a_200_with_a_blocking_status_is_permanent() -> None:
    answer = {
        "reference_id": REFERENCE,
        "status": {"code": 229, "description": "Blocked by your request"},
    }
    async with CaptureServer(200, answer) as server:
        with pytest.raises(PermanentProviderError) as caught:
            await send_ours(outgoing(channel(server.url)))
    assert type(caught.value) is PermanentProviderError
    assert caught.value.code == "229"


async def test_a_malformed_api_key_is_a_credentials_error(api: CaptureServer) -> None:
    truncated = API_KEY[:85]
    credentials = {"customer_id": CUSTOMER_ID, "api_key": truncated}
    broken = dataclasses.replace(channel(api.url), credentials=credentials)
    with pytest.raises(CredentialsError):
        await send_ours(outgoing(broken))


async def test_a_connection_dropped_after_the_request_is_of_unknown_outcome() -> None:
    async with CaptureServer(behaviour="close") as server:
        with pytest.raises(TransientProviderError) as caught:
            await send_ours(outgoing(channel(server.url)))
    assert caught.value.code == "connection_lost"  # it may have been received


async def test_timeout_is_transient() -> None:
    async with CaptureServer(200, ACCEPTED, behaviour="sleep", sleep_seconds=5) as server:
        with pytest.raises(TransientProviderError) as caught:
            await send_ours(outgoing(channel(server.url)), total_timeout=0.3)
    assert caught.value.code == "timeout"


# --- callbacks through the HTTP API ----------------------------------------------------------


@pytest.fixture
async def telesign_api(tenant: Tenant, container: Container) -> AsyncIterator[CaptureServer]:
    """The capture server standing in for TeleSign; the container's client is closed here, in
    the loop that opened it."""
    async with CaptureServer(200, ACCEPTED) as server:
        try:
            yield server
        finally:
            await container.http.aclose()


def create_channel(tenant: Tenant, base_url: str) -> dict[str, Any]:
    response = tenant.post(
        "/v1/channels",
        {
            "name": "TeleSign",
            "type": "sms",
            "provider": "telesign",
            "sender": SENDER,
            "base_url": base_url,
            "credentials": {"customer_id": CUSTOMER_ID, "api_key": API_KEY},
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def create_configuration(tenant: Tenant, channel_id: str) -> str:
    template = tenant.post(
        "/v1/templates",
        {
            "name": "Case update",
            "channel_type": "sms",
            "default_locale": "en-US",
            "default_text": "Hi {CustomerName}, case {CaseName} was updated.",
        },
    )
    assert template.status_code == 201, template.text
    config = tenant.post(
        "/v1/outbound-configurations",
        {
            "name": "Case updates",
            "channel_type": "sms",
            "channel_id": channel_id,
            "template_id": template.json()["id"],
            "default_locale": "en-US",
        },
    )
    assert config.status_code == 201, config.text
    return str(config.json()["id"])


async def sent_message(
    tenant: Tenant, container: Container, server: CaptureServer
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A channel, and a message sent on it through the API and the dispatcher."""
    ch = create_channel(tenant, server.url)
    response = tenant.post(
        "/v1/outbound/send",
        {"configuration_id": create_configuration(tenant, ch["id"]), "contacts": [contact()]},
    )
    assert response.status_code == 202, response.text
    message_id = response.json()["results"][0]["message_id"]
    assert await container.dispatcher().run_once() == 1
    detail = tenant.get(f"/v1/messages/{message_id}").json()
    assert (detail["status"], detail["provider_message_id"]) == ("sent", REFERENCE)
    return ch, detail


def callback_signature(body: bytes, api_key: str = API_KEY) -> str:
    """Base64(HMAC-SHA256(b64decode(api_key), body)), as TeleSign signs its callbacks."""
    digest = hmac.new(base64.b64decode(api_key), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def delivery_report(code: int, description: str, reference: str = REFERENCE) -> bytes:
    now = datetime(2026, 1, 15, 9, 1, tzinfo=UTC)
    return json.dumps(
        {
            "reference_id": reference,
            "status": {
                "code": code,
                "description": description,
                "updated_on": now.isoformat().replace("+00:00", "Z"),
            },
            "sub_resource": "sms",
            "errors": [],
            "submit_timestamp": (now - timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
            "external_id": None,
            "additional_info": {
                "mcc": "208",
                "mnc": "01",
                "price": "0.0650",
                "currency": "USD",
                "message_parts_count": 1,
            },
        }
    ).encode()


def mo_sms(reference: str, text: str) -> bytes:
    return json.dumps(
        {
            "reference_id": reference,
            "status": {
                "code": 1500,
                "description": "Delivered to customer",
                "updated_on": "2026-01-15T09:02:00Z",
            },
            "sub_resource": "mo_sms",
            "errors": [],
            "submit_timestamp": "2026-01-15T09:02:00Z",
            "user_response": {
                "phone_number": CUSTOMER.lstrip("+"),
                "sender_id": SENDER.lstrip("+"),
                "mo_message": text,
            },
        },
        ensure_ascii=False,
    ).encode()


def post_callback(
    tenant: Tenant,
    path: str,
    body: bytes,
    *,
    authorization: str | None,
    header: str = "Authorization",
) -> Any:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers[header] = authorization
    return tenant.client.post(path, content=body, headers=headers)


def event_count(container: Container, message_id: str) -> int:
    with container.db.read() as session:
        return int(
            session.execute(
                sa.select(sa.func.count(MessageEvent.id)).where(
                    MessageEvent.message_id == message_id
                )
            ).scalar_one()
        )


async def test_dispatch_sends_what_the_sdk_sends(
    tenant: Tenant, container: Container, telesign_api: CaptureServer
) -> None:
    await sent_message(tenant, container, telesign_api)
    await send_sdk(telesign_api.url, CUSTOMER.lstrip("+"), TEXT, "ARN")
    ours, sdk = telesign_api.requests
    assert_same_request(ours, sdk)
    assert same_fields(ours.form(), sdk.form()) == {"external_id"}


@pytest.mark.parametrize(
    ("code", "description", "expected", "error_code"),
    [
        (200, "Delivered to handset", "delivered", None),
        (210, "Temporary phone error", "undelivered", "210"),
        (211, "Permanent phone error", "failed", "211"),
    ],
)
@pytest.mark.parametrize("header", ["Authorization", "X-TS-Authorization"])
async def test_signed_delivery_report_updates_the_message(
    tenant: Tenant,
    container: Container,
    telesign_api: CaptureServer,
    code: int,
    description: str,
    expected: str,
    error_code: str | None,
    header: str,
) -> None:
    ch, sent = await sent_message(tenant, container, telesign_api)
    assert ch["webhook_url"] == f"/webhooks/{ch['id']}"
    body = delivery_report(code, description)
    signature = callback_signature(body)
    # TeleSign's own helper agrees with the signature we send.
    assert verify_telesign_callback_signature(API_KEY, signature, body.decode())
    response = post_callback(
        tenant,
        ch["webhook_url"],
        body,
        authorization=f"TSA {CUSTOMER_ID}:{signature}",
        header=header,
    )
    assert response.status_code == 200, response.text
    detail = tenant.get(f"/v1/messages/{sent['id']}").json()
    assert (detail["status"], detail["error_code"]) == (expected, error_code)


async def test_pending_report_changes_nothing(
    tenant: Tenant, container: Container, telesign_api: CaptureServer
) -> None:
    ch, sent = await sent_message(tenant, container, telesign_api)
    before = event_count(container, sent["id"])
    body = delivery_report(203, "Delivered to gateway")
    auth = f"TSA {CUSTOMER_ID}:{callback_signature(body)}"
    assert post_callback(tenant, ch["webhook_url"], body, authorization=auth).status_code == 200
    assert tenant.get(f"/v1/messages/{sent['id']}").json()["status"] == "sent"
    assert event_count(container, sent["id"]) == before


@pytest.mark.parametrize(
    "attack", ["tampered-body", "wrong-key", "wrong-customer", "missing", "basic-scheme"]
)
async def test_badly_signed_delivery_report_is_refused(
    tenant: Tenant, container: Container, telesign_api: CaptureServer, attack: str
) -> None:
    ch, sent = await sent_message(tenant, container, telesign_api)
    before = event_count(container, sent["id"])
    body = delivery_report(211, "Permanent phone error")
    signature = callback_signature(body)
    authorization: str | None = f"TSA {CUSTOMER_ID}:{signature}"
    if attack == "tampered-body":
        body = delivery_report(200, "Delivered to handset")
        assert not verify_telesign_callback_signature(API_KEY, signature, body.decode())
    elif attack == "wrong-key":
        authorization = f"TSA {CUSTOMER_ID}:{callback_signature(body, OTHER_KEY)}"
    elif attack == "wrong-customer":
        authorization = f"TSA 00000000-0000-0000-0000-000000000000:{signature}"
    elif attack == "missing":
        authorization = None
    else:
        token = base64.b64encode(f"{CUSTOMER_ID}:{API_KEY}".encode()).decode()
        authorization = f"Basic {token}"
    response = post_callback(tenant, ch["webhook_url"], body, authorization=authorization)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "invalid_signature"
    detail = tenant.get(f"/v1/messages/{sent['id']}").json()
    assert (detail["status"], detail["error_code"]) == ("sent", None)
    assert event_count(container, sent["id"]) == before


async def test_signed_inbound_sms_opens_a_conversation(
    tenant: Tenant, container: Container, telesign_api: CaptureServer
) -> None:
    ch, sent = await sent_message(tenant, container, telesign_api)
    body = mo_sms("F" * 32, "Merci, à demain !")
    auth = f"TSA {CUSTOMER_ID}:{callback_signature(body)}"
    assert verify_telesign_callback_signature(API_KEY, callback_signature(body), body.decode())
    response = post_callback(tenant, ch["webhook_url"], body, authorization=auth)
    assert response.status_code == 200, response.text
    conversations = tenant.get("/v1/conversations").json()["data"]
    assert len(conversations) == 1
    thread = tenant.get(f"/v1/conversations/{conversations[0]['id']}").json()
    assert thread["customer_number"] == CUSTOMER
    assert [(m["direction"], m["body"]) for m in thread["messages"]] == [
        ("outbound", sent["body"]),
        ("inbound", "Merci, à demain !"),
    ]


async def test_tampered_inbound_sms_stores_nothing(
    tenant: Tenant, container: Container, telesign_api: CaptureServer
) -> None:
    ch = create_channel(tenant, telesign_api.url)
    signed = mo_sms("E" * 32, "Hello")
    auth = f"TSA {CUSTOMER_ID}:{callback_signature(signed)}"
    response = post_callback(
        tenant, ch["webhook_url"], mo_sms("E" * 32, "Hello, call me"), authorization=auth
    )
    assert response.status_code == 403
    with container.db.read() as session:
        assert session.execute(sa.select(sa.func.count(InboundMessage.id))).scalar_one() == 0
    assert tenant.get("/v1/conversations").json()["data"] == []


@pytest.fixture
def proxied(settings: Settings, clock: FakeClock) -> Iterator[Container]:
    c = build_container(
        settings.model_copy(update={"public_base_url": "https://sms.example.com"}), clock=clock
    )
    c.migrate()
    yield c
    c.db.dispose()


async def test_the_callback_url_sent_is_the_channel_webhook(proxied: Container) -> None:
    async with CaptureServer(200, ACCEPTED) as server:
        with TestClient(create_app(proxied, run_worker=False)) as client:
            try:
                tenant = make_tenant(proxied, client)
                ch, sent = await sent_message(tenant, proxied, server)
            finally:
                await proxied.http.aclose()
            assert ch["webhook_url"] == f"https://sms.example.com/webhooks/{ch['id']}"
            assert server.last.form()["callback_url"] == [ch["webhook_url"]]
            await send_sdk(server.url, "33612345678", TEXT, "ARN", callback_url=ch["webhook_url"])
            ours, sdk = server.requests
            assert_same_request(ours, sdk)
            assert same_fields(ours.form(), sdk.form()) == {"external_id"}
            body = delivery_report(200, "Delivered to handset")
            auth = f"TSA {CUSTOMER_ID}:{callback_signature(body)}"
            response = post_callback(tenant, f"/webhooks/{ch['id']}", body, authorization=auth)
            assert response.status_code == 200, response.text
            assert tenant.get(f"/v1/messages/{sent['id']}").json()["status"] == "delivered"
