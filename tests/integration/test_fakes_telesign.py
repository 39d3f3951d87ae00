"""The fake TeleSign, driven by the official SDK (telesign 4.1.1) and checked with its helpers."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import requests
from aiohttp import web
from telesign.messaging import MessagingClient
from telesign.rest import RestClient
from telesign.util import verify_telesign_callback_signature

from outbound.testing.fakes import (
    CapturedRequest,
    FakeTeleSign,
    WebhookReceiver,
    telesign_callback_signature,
    telesign_request_signature,
)

CUSTOMER = "FFFFFFFF-EEEE-DDDD-1234-AB1234567890"
KEY = "EXAMPLE----TE8sTgg45yusumoN6BYsBVkh+yRJ5czgsnCehZaOYldPJdmFh6NeX8kunZ2zU1YWaUw/0wV6xfw=="
PHONE = "15558675310"
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


@pytest.fixture
async def fake() -> AsyncIterator[FakeTeleSign]:
    async with FakeTeleSign(CUSTOMER, KEY, callback_delay=0.01) as server:
        yield server


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as hooks:
        yield hooks


def _sdk(fake: FakeTeleSign, key: str = KEY, **kwargs: Any) -> MessagingClient:
    return MessagingClient(CUSTOMER, key, rest_endpoint=fake.base_url, **kwargs)


@pytest.fixture
def client(fake: FakeTeleSign) -> Iterator[MessagingClient]:
    sdk = _sdk(fake)
    yield sdk
    sdk.session.close()


async def _send(client: MessagingClient, phone: str = PHONE, **params: str) -> Any:
    params.setdefault("message", "Your code is 123456")
    params.setdefault("message_type", "OTP")
    message = params.pop("message")
    message_type = params.pop("message_type")
    return await asyncio.to_thread(client.message, phone, message, message_type, **params)


async def _raw(
    fake: FakeTeleSign,
    fields: dict[str, str],
    *,
    date: datetime | None = None,
    nonce: str | None = None,
    key: str = KEY,
) -> tuple[int, dict[str, Any]]:
    """POST /v1/messaging signed by the SDK's own header generator (date/nonce chosen)."""
    body = urlencode(fields)
    headers = RestClient.generate_telesign_headers(
        CUSTOMER,
        key,
        "POST",
        "/v1/messaging",
        body,
        date_rfc2616=format_datetime(date, usegmt=True) if date else None,
        nonce=nonce,
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.base_url + "/v1/messaging", data=body, headers=headers) as response,
    ):
        return response.status, await response.json()


def _signature(header: str) -> str:
    scheme, _, credentials = header.partition(" ")
    assert scheme == "TSA"
    customer, _, signature = credentials.rpartition(":")
    assert customer == CUSTOMER
    return signature


def _verified(hook: CapturedRequest, key: str = KEY) -> bool:
    return all(
        verify_telesign_callback_signature(key, _signature(hook.headers[name]), hook.text)
        for name in ("Authorization", "X-TS-Authorization")
    )


# -- signing ---------------------------------------------------------------------------------

DATE = "Wed, 14 Dec 2016 18:20:12 GMT"
NONCE = "A1592C6F-E384-4CDB-BC42-C3AB970369E9"
FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("method", "content_type", "body", "expected"),
    [
        ("POST", FORM, "test=param", "2xVlmbrxLjYrrPun3G3WMNG6Jon4yKcTeOoK9DjXJ/Q="),
        ("POST", FORM, "test=%CF%BF", "h8d4I0RTxErbxYXuzCOtNqb/f0w3Ck8e5SEkGNj01+8="),
        ("GET", "", "", "aUm7I+9GKl3ww7PNeeJntCT0iS7b+EmRKEE4LnRzChQ="),
    ],
)
def test_request_signature_matches_the_sdk_vectors(
    method: str, content_type: str, body: str, expected: str
) -> None:
    signature = telesign_request_signature(
        KEY, method, content_type, DATE, NONCE, body, "/v1/resource"
    )
    assert signature == expected
    headers = RestClient.generate_telesign_headers(
        CUSTOMER, KEY, method, "/v1/resource", body, date_rfc2616=DATE, nonce=NONCE
    )
    assert headers["Authorization"] == f"TSA {CUSTOMER}:{expected}"


def test_callback_signature_verifies_with_the_sdk_helper() -> None:
    body = '{"reference_id": "ABC", "status": {"code": 200}}'
    signature = telesign_callback_signature(KEY, body)
    assert verify_telesign_callback_signature(KEY, signature, body)
    assert not verify_telesign_callback_signature(KEY, signature, body + " ")


# -- sending ---------------------------------------------------------------------------------


async def test_sdk_send_succeeds_with_the_real_shape(
    fake: FakeTeleSign, client: MessagingClient
) -> None:
    response = await _send(client, external_id="ext-1")

    assert response.status_code == 200
    body = response.json
    assert set(body) == {"reference_id", "status", "external_id"}
    assert re.fullmatch(r"[0-9A-F]{32}", body["reference_id"])
    assert body["status"]["code"] == 290
    assert body["status"]["description"] == "Message in progress"
    assert RFC3339.fullmatch(body["status"]["updated_on"])
    assert body["external_id"] == "ext-1"

    sent = fake.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/v1/messaging")
    assert sent.headers["Authorization"].startswith(f"TSA {CUSTOMER}:")
    assert sent.headers["x-ts-auth-method"] == "HMAC-SHA256"
    assert {k: v[0] for k, v in sent.form().items()} == {
        "phone_number": PHONE,
        "message": "Your code is 123456",
        "message_type": "OTP",
        "external_id": "ext-1",
    }
    assert fake.messages[body["reference_id"]].phone_number == PHONE


async def test_sdk_status_lookup(fake: FakeTeleSign, client: MessagingClient) -> None:
    sent = (await _send(client)).json
    await fake.drain()
    response = await asyncio.to_thread(client.status, sent["reference_id"])
    assert response.status_code == 200
    assert response.json["reference_id"] == sent["reference_id"]
    assert response.json["status"]["code"] == 200
    assert response.json["status"]["description"] == "Delivered to handset"
    assert response.json["errors"] == []

    missing = await asyncio.to_thread(client.status, "0" * 32)
    assert missing.status_code == 404
    assert missing.json["errors"][0]["code"] == -10001


async def test_basic_auth_is_accepted(fake: FakeTeleSign) -> None:
    sdk = _sdk(fake, auth_method="Basic")
    try:
        response = await _send(sdk)
    finally:
        sdk.session.close()
    assert response.status_code == 200
    assert fake.requests[-1].headers["Authorization"].startswith("Basic ")


# -- authentication --------------------------------------------------------------------------


def _error_code(body: dict[str, Any]) -> int:
    return int(body["errors"][0]["code"])


async def test_bad_key_is_refused(fake: FakeTeleSign) -> None:
    other_key = "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXk="
    sdk = _sdk(fake, key=other_key)
    basic = _sdk(fake, key=other_key, auth_method="Basic")
    try:
        refused = await _send(sdk)
        refused_basic = await _send(basic)
    finally:
        sdk.session.close()
        basic.session.close()
    assert refused.status_code == 401
    assert refused.json["status"]["code"] == 501
    assert refused.json["status"]["description"] == "Not authorized"
    assert _error_code(refused.json) == -30006
    assert (refused_basic.status_code, _error_code(refused_basic.json)) == (401, -30015)
    assert fake.messages == {}


async def test_unknown_customer_and_missing_header(fake: FakeTeleSign) -> None:
    sdk = MessagingClient("00000000-0000-0000-0000-000000000000", KEY, rest_endpoint=fake.base_url)
    try:
        refused = await _send(sdk)
    finally:
        sdk.session.close()
    assert (refused.status_code, _error_code(refused.json)) == (401, -30000)

    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.base_url + "/v1/messaging", data={"phone_number": PHONE}) as response,
    ):
        assert response.status == 401
        assert _error_code(await response.json()) == -30004


async def test_stale_date_and_reused_nonce_are_refused(fake: FakeTeleSign) -> None:
    fields = {"phone_number": PHONE, "message": "hi", "message_type": "ARN"}
    status, body = await _raw(fake, fields, date=datetime.now(UTC) - timedelta(minutes=16))
    assert (status, _error_code(body)) == (401, -30010)

    status, _ = await _raw(fake, fields, date=datetime.now(UTC) - timedelta(minutes=14))
    assert status == 200
    status, _ = await _raw(fake, fields, nonce="nonce-1")
    assert status == 200
    status, body = await _raw(fake, fields, nonce="nonce-1")
    assert (status, _error_code(body)) == (401, -30012)
    assert len(fake.messages) == 2


async def test_tampered_body_breaks_the_signature(fake: FakeTeleSign) -> None:
    signed = urlencode({"phone_number": PHONE, "message": "hi", "message_type": "ARN"})
    headers = RestClient.generate_telesign_headers(CUSTOMER, KEY, "POST", "/v1/messaging", signed)
    tampered = signed.replace("hi", "ho")
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.base_url + "/v1/messaging", data=tampered, headers=headers) as response,
    ):
        assert response.status == 401
        assert _error_code(await response.json()) == -30006


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "params", "codes"),
    [
        ("", {}, [12000]),
        ("+15558675310", {}, [11000]),
        ("1555 867 5310", {}, [11000]),
        (PHONE, {"message": ""}, [12009]),
        (PHONE, {"message": "x" * 1601}, [11009]),
        (PHONE, {"message_type": ""}, [12017]),
        (PHONE, {"message_type": "PROMO"}, [11017]),
        (PHONE, {"sender_id": "S" * 21}, [11013]),
        (PHONE, {"callback_url": "not a url"}, [11004]),
        (PHONE, {"account_lifecycle_event": "login"}, [11003]),
        (PHONE, {"originating_ip": "300.1.1.1"}, [11010]),
        ("", {"message": "", "message_type": ""}, [12000, 12009, 12017]),
    ],
)
async def test_invalid_requests_get_telesign_errors(
    fake: FakeTeleSign,
    client: MessagingClient,
    phone: str,
    params: dict[str, str],
    codes: list[int],
) -> None:
    response = await _send(client, phone, **params)
    assert response.status_code == 400
    assert [error["code"] for error in response.json["errors"]] == codes
    assert response.json["status"]["code"] == codes[0]
    assert fake.messages == {}


async def test_invalid_numbers_list(fake: FakeTeleSign, client: MessagingClient) -> None:
    fake.invalid_numbers.add(PHONE)
    response = await _send(client)
    assert (response.status_code, _error_code(response.json)) == (400, 11000)


# -- faults ----------------------------------------------------------------------------------


async def test_429_with_retry_after_500_and_dropped_connection(
    fake: FakeTeleSign, client: MessagingClient
) -> None:
    fake.fail_next(status=429, retry_after=2)
    fake.fail_next(status=500)
    fake.drop_next()

    limited = await _send(client)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert limited.json["status"]["code"] == 500
    failed = await _send(client)
    assert failed.status_code == 500
    with pytest.raises(requests.ConnectionError):
        await _send(client)
    assert (await _send(client)).status_code == 200
    assert len(fake.requests) == 4
    assert len(fake.messages) == 1


# -- callbacks -------------------------------------------------------------------------------


async def test_delivery_reports_are_signed_and_verify_with_the_sdk(
    fake: FakeTeleSign, client: MessagingClient, receiver: WebhookReceiver
) -> None:
    url = receiver.url("/telesign/events?token=s3cret")
    sent = (await _send(client, callback_url=url, external_id="e-9")).json

    hooks = await receiver.wait_for(2)
    await fake.drain()
    reports = [json.loads(hook.body) for hook in hooks]
    assert [r["status"]["code"] for r in reports] == [203, 200]
    assert [r["status"]["description"] for r in reports] == [
        "Delivered to gateway",
        "Delivered to handset",
    ]
    for hook, report in zip(hooks, reports, strict=True):
        assert _verified(hook)
        assert not _verified(hook, key="b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXk=")
        assert hook.headers["Content-Type"] == "application/json"
        assert hook.query_string == "token=s3cret"
        assert report["reference_id"] == sent["reference_id"]
        assert report["sub_resource"] == "sms"
        assert report["errors"] == []
        assert report["external_id"] == "e-9"
        assert RFC3339.fullmatch(report["submit_timestamp"])
        assert RFC3339.fullmatch(report["status"]["updated_on"])
    assert [r.status for r in fake.callback_results] == [200, 200]


async def test_account_callback_url_and_failing_numbers(
    fake: FakeTeleSign, client: MessagingClient, receiver: WebhookReceiver
) -> None:
    fake.callback_url = receiver.url()
    fake.failing_numbers[PHONE] = 210
    fake.failing_numbers["15550000002"] = 230
    await _send(client)
    await _send(client, "15550000002")
    hooks = await receiver.wait_for(3)
    codes = sorted(json.loads(h.body)["status"]["code"] for h in hooks)
    assert codes == [203, 210, 230]
    assert all(_verified(h) for h in hooks)


async def test_rfc1123_timestamps_option(
    fake: FakeTeleSign, client: MessagingClient, receiver: WebhookReceiver
) -> None:
    fake.time_format = "rfc1123"
    fake.callback_sequence = [200]
    await _send(client, callback_url=receiver.url())
    (hook,) = await receiver.wait_for(1)
    assert json.loads(hook.body)["status"]["updated_on"].endswith(" GMT")


async def test_failed_callbacks_are_retried_until_200(
    fake: FakeTeleSign, client: MessagingClient
) -> None:
    fake.callback_sequence = [200]
    fake.callback_retry_delays = (0.01, 0.01)
    answers = iter([503, 202, 200])
    async with WebhookReceiver() as flaky:
        flaky.responder = lambda _: web.Response(status=next(answers))
        await _send(client, callback_url=flaky.url())
        await flaky.wait_for(3)
        await fake.drain()
        assert flaky.requests[0].body == flaky.requests[2].body
    assert [(r.attempt, r.status) for r in fake.callback_results] == [(1, 503), (2, 202), (3, 200)]


async def test_on_demand_reports_and_inbound_sms(
    fake: FakeTeleSign, client: MessagingClient, receiver: WebhookReceiver
) -> None:
    fake.callback_sequence = []
    sent = (await _send(client, callback_url=receiver.url())).json
    reference = sent["reference_id"]
    assert await fake.deliver(reference, 200) == 200
    assert await fake.deliver(reference, 203) == 200  # out of order
    assert [json.loads(h.body)["status"]["code"] for h in receiver.requests] == [200, 203]
    assert fake.messages[reference].status_code == 203

    assert (
        await fake.send_inbound(receiver.url("/mo"), "+15558675310", "+15017122661", "STOP") == 200
    )
    mo = receiver.requests[-1]
    assert _verified(mo)
    payload = json.loads(mo.body)
    assert payload["sub_resource"] == "mo_sms"
    assert payload["user_response"] == {
        "phone_number": "15558675310",
        "sender_id": "15017122661",
        "mo_message": "STOP",
    }
    assert re.fullmatch(r"[0-9A-F]{32}", payload["reference_id"])
    assert payload["errors"] == []
    assert {"code", "description", "updated_on"} <= set(payload["status"])
