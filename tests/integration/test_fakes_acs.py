"""The fake ACS SMS + Event Grid, driven by the official SDK (azure-communication-sms 1.1.0)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from azure.communication.sms import SmsClient
from azure.communication.sms._generated.models import (
    SendMessageRequest,
    SmsRecipient,
    SmsSendOptions,
)
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from outbound.testing import FakeClock
from outbound.testing.fakes import (
    CapturedRequest,
    FakeACS,
    WebhookReceiver,
    acs_content_hash,
    acs_signature,
    acs_string_to_sign,
)

KEY = "ZmFrZS1hY3MtYWNjZXNzLWtleS0wMTIzNDU2Nzg5YWI="
SENDER = "+18005551234"
USER = "+15558675310"
SMS_PATH = "/sms?api-version=2021-03-07"


@pytest.fixture
async def fake() -> AsyncIterator[FakeACS]:
    async with FakeACS(KEY, callback_delay=0.01) as server:
        yield server


@pytest.fixture
async def receiver(fake: FakeACS) -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as hooks:
        fake.subscription_url = hooks.url("/acs/events?code=secret-token")
        yield hooks


def _sdk(fake: FakeACS, key: str = KEY) -> SmsClient:
    return SmsClient(endpoint=fake.base_url, credential=AzureKeyCredential(key), retry_total=0)


@pytest.fixture
def client(fake: FakeACS) -> Iterator[SmsClient]:
    sdk = _sdk(fake)
    yield sdk
    sdk._sms_service_client.close()


async def _send(client: SmsClient, to: str | list[str] = USER, **kwargs: Any) -> list[Any]:
    result: list[Any] = await asyncio.to_thread(client.send, SENDER, to, "Hello", **kwargs)
    return result


async def _send_recipients(
    client: SmsClient,
    recipients: list[SmsRecipient],
    message: str = "Hello",
    delivery_report: bool = False,
) -> tuple[int, dict[str, Any]]:
    """Send through the SDK's generated operation, with chosen repeatability fields."""
    request = SendMessageRequest(
        from_property=SENDER,
        sms_recipients=recipients,
        message=message,
        sms_send_options=SmsSendOptions(enable_delivery_report=delivery_report),
    )

    def answer(pipeline_response: Any, _deserialized: Any, _headers: Any) -> Any:
        http = pipeline_response.http_response
        return http.status_code, json.loads(http.text())

    result: tuple[int, dict[str, Any]] = await asyncio.to_thread(
        client._sms_service_client.sms.send, request, cls=answer
    )
    return result


def _rfc1123(when: datetime) -> str:
    return format_datetime(when, usegmt=True)


def _recipient(request_id: str, first_sent: datetime | str, to: str = USER) -> SmsRecipient:
    sent = first_sent if isinstance(first_sent, str) else _rfc1123(first_sent)
    return SmsRecipient(to=to, repeatability_request_id=request_id, repeatability_first_sent=sent)


async def _post(
    fake: FakeACS,
    payload: Any,
    *,
    path: str = SMS_PATH,
    key: str = KEY,
    host: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """A raw request signed with the recipe the SDK uses (proved in the first test)."""
    body = json.dumps(payload).encode()
    date = _rfc1123(datetime.now(UTC))
    content_hash = acs_content_hash(body)
    signed_host = host or f"127.0.0.1:{fake.port}"
    signature = acs_signature(key, "POST", path, date, signed_host, content_hash)
    headers = {
        "Content-Type": "application/json",
        "x-ms-date": date,
        "x-ms-content-sha256": content_hash,
        "Authorization": (
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=" + signature
        ),
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.base_url + path, data=body, headers=headers) as response,
    ):
        return response.status, await response.json()


def _payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "from": SENDER,
        "smsRecipients": [{"to": USER}],
        "message": "Hello",
        "smsSendOptions": {"enableDeliveryReport": False},
    }
    payload.update(overrides)
    return payload


def _events(hook: CapturedRequest) -> list[dict[str, Any]]:
    events = hook.json()
    assert isinstance(events, list)
    return events


# -- signing ---------------------------------------------------------------------------------


async def test_signature_recipe_matches_the_sdk_with_a_frozen_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frozen = datetime(2026, 11, 25, 14, 49, 36, tzinfo=UTC)
    date = "Wed, 25 Nov 2026 14:49:36 GMT"
    for module in ("_shared.policy", "_sms_client"):  # the signature and repeatabilityFirstSent
        monkeypatch.setattr(f"azure.communication.sms.{module}.get_current_utc_time", lambda: date)
    async with FakeACS(KEY, clock=FakeClock(frozen + timedelta(seconds=2))) as fake:
        sdk = _sdk(fake)
        try:
            results = await _send(sdk)
        finally:
            sdk._sms_service_client.close()
        assert results[0].successful

        sent = fake.requests[-1]
        host = f"127.0.0.1:{fake.port}"
        assert sent.headers["Host"] == host
        assert sent.headers["x-ms-date"] == date
        content_hash = acs_content_hash(sent.body)
        assert sent.headers["x-ms-content-sha256"] == content_hash
        expected = acs_signature(KEY, "POST", SMS_PATH, date, host, content_hash)
        assert sent.headers["Authorization"] == (
            f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={expected}"
        )
        assert acs_string_to_sign("post", SMS_PATH, date, host, content_hash) == (
            f"POST\n{SMS_PATH}\n{date};{host};{content_hash}"
        )


# -- sending ---------------------------------------------------------------------------------


async def test_sdk_send_succeeds_per_recipient(fake: FakeACS, client: SmsClient) -> None:
    results = await _send(client, [USER, "+15558675311"], tag="campaign-1")

    assert [r.to for r in results] == [USER, "+15558675311"]
    assert all(r.successful and r.http_status_code == 202 for r in results)
    assert all(re.fullmatch(r"Outgoing_\d{14}[0-9a-f-]{36}_noam", r.message_id) for r in results)
    sent = fake.requests[-1]
    assert (sent.method, sent.path, sent.query_string) == ("POST", "/sms", "api-version=2021-03-07")
    body = sent.json()
    assert body["from"] == SENDER
    assert body["message"] == "Hello"
    assert body["smsSendOptions"] == {"enableDeliveryReport": False, "tag": "campaign-1"}
    for recipient in body["smsRecipients"]:
        assert uuid.UUID(recipient["repeatabilityRequestId"])
        assert recipient["repeatabilityFirstSent"].endswith(" GMT")
    assert fake.sends == 2


async def test_raw_answer_is_202_with_repeatability_result(
    fake: FakeACS, client: SmsClient
) -> None:
    status, body = await _send_recipients(
        client, [_recipient(str(uuid.uuid4()), datetime.now(UTC)), SmsRecipient(to="+1555")]
    )
    assert status == 202
    ok, bad = body["value"]
    assert set(ok) == {"to", "messageId", "httpStatusCode", "repeatabilityResult", "successful"}
    assert (ok["httpStatusCode"], ok["repeatabilityResult"], ok["successful"]) == (
        202,
        "accepted",
        True,
    )
    assert bad == {
        "to": "+1555",
        "httpStatusCode": 400,
        "successful": False,
        "errorMessage": "Invalid To phone number format.",
    }


async def test_invalid_numbers_fail_only_their_item(fake: FakeACS, client: SmsClient) -> None:
    fake.invalid_numbers.add("+15550000001")
    good, bad = await _send(client, [USER, "+15550000001"])
    assert good.successful
    assert (bad.successful, bad.http_status_code, bad.message_id) == (False, 400, None)
    assert bad.error_message
    assert fake.sends == 1


# -- authentication --------------------------------------------------------------------------


async def test_bad_key_is_refused(fake: FakeACS) -> None:
    sdk = _sdk(fake, key="b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXk=")
    try:
        with pytest.raises(ClientAuthenticationError) as refused:
            await _send(sdk)
    finally:
        sdk._sms_service_client.close()
    assert refused.value.status_code == 401
    assert json.loads(refused.value.response.text())["error"]["code"] == "Denied"
    assert fake.sends == 0


async def test_stale_date_is_refused(fake: FakeACS, client: SmsClient) -> None:
    fake.clock = FakeClock(datetime.now(UTC) + timedelta(minutes=16))
    with pytest.raises(ClientAuthenticationError):
        await _send(client)
    fake.clock = FakeClock(datetime.now(UTC) + timedelta(minutes=14))
    (result,) = await _send(client)  # signature accepted, but first-sent is 14 minutes old
    assert (result.successful, result.http_status_code) == (False, 412)
    fake.clock = FakeClock(datetime.now(UTC) + timedelta(minutes=4))
    assert (await _send(client))[0].successful


async def test_host_without_port_and_tampered_body_are_refused(fake: FakeACS) -> None:
    status, body = await _post(fake, _payload(), host="127.0.0.1")
    assert (status, body["error"]["code"]) == (401, "Denied")

    payload = json.dumps(_payload()).encode()
    date = _rfc1123(datetime.now(UTC))
    content_hash = acs_content_hash(payload)
    host = f"127.0.0.1:{fake.port}"
    signature = acs_signature(KEY, "POST", SMS_PATH, date, host, content_hash)
    headers = {
        "Content-Type": "application/json",
        "x-ms-date": date,
        "x-ms-content-sha256": content_hash,
        "Authorization": "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256"
        f"&Signature={signature}",
    }
    async with aiohttp.ClientSession() as session:
        tampered = payload.replace(b"Hello", b"Hullo")
        async with session.post(fake.base_url + SMS_PATH, data=tampered, headers=headers) as r:
            assert r.status == 401
        async with session.post(fake.base_url + SMS_PATH, data=payload, headers=headers) as r:
            assert r.status == 202
        del headers["Authorization"]
        async with session.post(fake.base_url + SMS_PATH, data=payload, headers=headers) as r:
            assert r.status == 401
    assert fake.sends == 1


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        _payload(smsRecipients=[]),
        _payload(smsRecipients=[{"to": f"+1555000{i:04d}"} for i in range(101)]),
        _payload(smsRecipients=[{"phone": USER}]),
        {k: v for k, v in _payload().items() if k != "from"},
        {k: v for k, v in _payload().items() if k != "message"},
        _payload(message="x" * 2049),
        _payload(smsSendOptions={"tag": "t"}),
        _payload(smsSendOptions={"enableDeliveryReport": "yes"}),
        _payload(smsSendOptions={"enableDeliveryReport": True, "tag": 5}),
        ["not", "an", "object"],
    ],
)
async def test_invalid_requests_get_400(fake: FakeACS, payload: Any) -> None:
    status, body = await _post(fake, payload)
    assert status == 400
    assert body["error"]["code"] == "BadRequest"
    assert body["error"]["message"]
    assert fake.sends == 0


async def test_unsupported_api_version(fake: FakeACS) -> None:
    status, body = await _post(fake, _payload(), path="/sms?api-version=2099-01-01")
    assert (status, body["error"]["code"]) == (400, "UnsupportedApiVersion")


async def test_hundred_recipients_and_long_message_are_fine(fake: FakeACS) -> None:
    recipients = [{"to": f"+1555000{i:04d}"} for i in range(100)]
    status, body = await _post(fake, _payload(smsRecipients=recipients, message="x" * 2048))
    assert status == 202
    assert len(body["value"]) == 100
    assert fake.sends == 100


# -- repeatability ---------------------------------------------------------------------------


async def test_repeated_request_id_returns_the_original_result(
    fake: FakeACS, client: SmsClient
) -> None:
    request_id = str(uuid.uuid4())
    first_sent = datetime.now(UTC)
    first = await _send_recipients(client, [_recipient(request_id, first_sent)])
    again = await _send_recipients(client, [_recipient(request_id, first_sent)])

    assert first == again
    assert again[1]["value"][0]["repeatabilityResult"] == "accepted"
    assert fake.sends == 1
    assert len(fake.messages) == 1

    _, other = await _send_recipients(client, [_recipient(str(uuid.uuid4()), first_sent)])
    assert other["value"][0]["messageId"] != first[1]["value"][0]["messageId"]
    assert fake.sends == 2


async def test_repeatability_rejections(fake: FakeACS, client: SmsClient) -> None:
    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    await _send_recipients(client, [_recipient(request_id, now)])

    _, changed = await _send_recipients(client, [_recipient(request_id, now)], message="Changed")
    _, malformed = await _send_recipients(
        client, [_recipient("not-a-guid", now), _recipient(str(uuid.uuid4()), "yesterday")]
    )
    _, stale = await _send_recipients(
        client, [_recipient(str(uuid.uuid4()), now - timedelta(minutes=6))]
    )

    outcomes = [
        (item["httpStatusCode"], item["repeatabilityResult"], item["successful"])
        for item in changed["value"] + malformed["value"] + stale["value"]
    ]
    assert outcomes == [
        (400, "rejected", False),
        (400, "rejected", False),
        (400, "rejected", False),
        (412, "rejected", False),
    ]
    assert all("messageId" not in item for item in malformed["value"] + stale["value"])
    assert fake.sends == 1


async def test_repeatability_window_expires_after_five_minutes(
    fake: FakeACS, client: SmsClient
) -> None:
    clock = FakeClock(datetime.now(UTC))
    fake.clock = clock
    request_id = str(uuid.uuid4())
    _, first = await _send_recipients(client, [_recipient(request_id, clock.now())])
    clock.advance(301)
    _, late = await _send_recipients(client, [_recipient(request_id, clock.now())])
    assert late["value"][0]["messageId"] != first["value"][0]["messageId"]
    assert fake.sends == 2


# -- faults ----------------------------------------------------------------------------------


async def test_429_with_retry_after_500_and_dropped_connection(
    fake: FakeACS, client: SmsClient
) -> None:
    fake.fail_next(status=429, retry_after=7)
    fake.fail_next(status=500)
    fake.drop_next()

    with pytest.raises(HttpResponseError) as limited:
        await _send(client)
    assert limited.value.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert json.loads(limited.value.response.text())["error"]["code"] == "TooManyRequests"
    with pytest.raises(HttpResponseError) as failed:
        await _send(client)
    assert failed.value.status_code == 500
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        await _send(client)
    assert (await _send(client))[0].successful
    assert len(fake.requests) == 4
    assert fake.sends == 1


# -- Event Grid ------------------------------------------------------------------------------


def _echo_validation(hook: CapturedRequest) -> web.Response:
    if hook.headers.get("aeg-event-type") == "SubscriptionValidation":
        code = _events(hook)[0]["data"]["validationCode"]
        return web.json_response({"validationResponse": code})
    return web.Response(status=200)


async def test_subscription_validation_handshake(fake: FakeACS) -> None:
    async with WebhookReceiver(responder=_echo_validation) as good:
        assert await fake.validate_subscription(good.url("/events?code=abc"))
        (hook,) = good.requests
    assert fake.validated
    assert hook.query_string == "code=abc"
    assert hook.headers["aeg-event-type"] == "SubscriptionValidation"
    (event,) = _events(hook)
    assert event["eventType"] == "Microsoft.EventGrid.SubscriptionValidationEvent"
    assert set(event["data"]) == {"validationCode", "validationUrl"}
    assert {"id", "topic", "subject", "eventTime", "metadataVersion", "dataVersion"} <= set(event)


@pytest.mark.parametrize(
    "responder",
    [
        lambda hook: web.Response(status=202),
        lambda hook: web.json_response({"validationResponse": "wrong"}),
        lambda hook: web.json_response({"validationResponse": "x"}, status=202),
        lambda hook: web.Response(status=500),
    ],
)
async def test_subscription_validation_fails_on_wrong_answers(
    fake: FakeACS, responder: Any
) -> None:
    async with WebhookReceiver(responder=responder) as bad:
        assert not await fake.validate_subscription(bad.url())
    assert not fake.validated


async def test_manual_validation_through_the_validation_url(fake: FakeACS) -> None:
    async with WebhookReceiver() as manual:
        assert not await fake.validate_subscription(manual.url())
        validation_url = _events(manual.requests[0])[0]["data"]["validationUrl"]
    async with aiohttp.ClientSession() as session, session.get(validation_url) as response:
        assert response.status == 200
    assert fake.validated


async def test_delivery_reports_are_event_grid_notifications(
    fake: FakeACS, client: SmsClient, receiver: WebhookReceiver
) -> None:
    fake.failing_numbers["+15558675311"] = "Blocked by carrier."
    results = await _send(client, [USER, "+15558675311"], enable_delivery_report=True, tag="t-1")
    hooks = await receiver.wait_for(2)
    await fake.drain()

    by_id = {}
    for hook in hooks:
        assert hook.query_string == "code=secret-token"
        assert hook.headers["aeg-event-type"] == "Notification"
        assert hook.headers["aeg-subscription-name"] == "OUTBOUND-SMS"
        (event,) = _events(hook)
        assert event["eventType"] == "Microsoft.Communication.SMSDeliveryReportReceived"
        assert event["dataVersion"] == "1.0"
        by_id[event["data"]["messageId"]] = event["data"]
    delivered = by_id[results[0].message_id]
    failed = by_id[results[1].message_id]
    assert delivered["deliveryStatus"] == "Delivered"
    assert delivered["deliveryStatusDetails"] == "No error."
    assert delivered["from"] == SENDER.lstrip("+")
    assert delivered["to"] == USER
    assert delivered["Tag"] == "t-1"
    assert delivered["deliveryAttempts"][0]["segmentsSucceeded"] == 1
    assert datetime.fromisoformat(delivered["receivedTimestamp"]).tzinfo is not None
    assert (failed["deliveryStatus"], failed["deliveryStatusDetails"]) == (
        "Failed",
        "Blocked by carrier.",
    )
    assert fake.messages[results[1].message_id].status == "Failed"


async def test_no_report_without_enable_delivery_report(
    fake: FakeACS, client: SmsClient, receiver: WebhookReceiver
) -> None:
    await _send(client)
    await fake.drain()
    await asyncio.sleep(0.05)
    assert receiver.requests == []


async def test_on_demand_reports_pascal_keys_and_retries(
    fake: FakeACS, client: SmsClient, receiver: WebhookReceiver
) -> None:
    (result,) = await _send(client)
    fake.key_style = "pascal"
    assert await fake.deliver(result.message_id, "Failed", "Expired") == 200
    data = _events(receiver.requests[-1])[0]["data"]
    assert data["DeliveryStatus"] == "Failed"
    assert data["MessageId"] == result.message_id

    fake.callback_retry_delays = (0.01,)
    answers = iter([503, 200])
    receiver.responder = lambda _: web.Response(status=next(answers))
    fake.key_style = "camel"
    await _send(client, "+15558675312", enable_delivery_report=True)
    await receiver.wait_for(3)
    await fake.drain()
    assert [(r.attempt, r.status) for r in fake.callback_results[-2:]] == [(1, 503), (2, 200)]


async def test_inbound_sms_event(fake: FakeACS, receiver: WebhookReceiver) -> None:
    assert await fake.send_inbound("+15558675310", SENDER, "Hi there") == 200
    (hook,) = receiver.requests
    assert hook.headers["aeg-event-type"] == "Notification"
    (event,) = _events(hook)
    assert event["eventType"] == "Microsoft.Communication.SMSReceived"
    assert event["subject"] == "/phonenumber/15558675310"
    data = event["data"]
    assert re.fullmatch(r"Incoming_\d{14}[0-9a-f-]{36}_noam", data["messageId"])
    assert (data["from"], data["to"], data["message"]) == ("15558675310", SENDER, "Hi there")
    assert data["segmentCount"] == 1
    assert "receivedTimestamp" in data
