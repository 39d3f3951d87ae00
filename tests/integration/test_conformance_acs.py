"""Azure Communication Services conformance: our adapter's requests against the official SDK's,
response and error mapping against canned answers, and Event Grid through the real HTTP API.

The SDK (azure-communication-sms 1.1.0, synchronous, run in a thread) is a test-only reference.
Both requests' HMAC-SHA256 signatures are recomputed from what the server captured
(x-ms-date, x-ms-content-sha256, Host with its port, raw body), independently and with the
SDK's own HMAC code.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from azure.communication.sms import SmsClient
from azure.communication.sms._shared.policy import HMACCredentialsPolicy
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError

from outbound.adapters.db.models import InboundMessage, MessageEvent
from outbound.adapters.providers.acs import AcsProvider, repeatability_id
from outbound.adapters.providers.base import ChannelInfo, OutgoingMessage, SendResult
from outbound.adapters.providers.http import HttpClient
from outbound.app import Container
from outbound.errors import (
    CredentialsError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)
from outbound.testing import FakeClock
from tests.helpers import Tenant, queue_messages
from tests.integration.capture import Canned, Captured, CaptureServer

ACCESS_KEY = base64.b64encode(bytes(range(11, 75))).decode()
OTHER_KEY = base64.b64encode(bytes(range(90, 154))).decode()
SENDER = "+18005550100"
CUSTOMER = "+33612345678"
OTHER_CUSTOMER = "+33612345679"
TEXT = "Hi Ana, case CAS-1 was updated."
API_VERSION = "2021-03-07"
SIGNED_HEADERS = "x-ms-date;host;x-ms-content-sha256"


# --- helpers ------------------------------------------------------------------------------


def item(
    to: str,
    *,
    status: int = 202,
    message_id: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "to": to,
        "messageId": message_id or f"Outgoing_20260115090000{uuid.uuid4().hex[:8]}_noam",
        "httpStatusCode": status,
        "repeatabilityResult": "accepted" if status == 202 else "rejected",
        "successful": status == 202,
    }
    if error:
        result["errorMessage"] = error
    return result


def accepted(request: Captured) -> Canned:
    """202 with one accepted item per recipient of the request."""
    recipients = request.json()["smsRecipients"]
    return Canned.of(
        202,
        {
            "value": [
                item(r["to"], message_id=f"Outgoing_{r['to'].lstrip('+')}") for r in recipients
            ]
        },
    )


def channel(base_url: str, *, access_key: str = ACCESS_KEY) -> ChannelInfo:
    return ChannelInfo(
        id="ch-1",
        org_id="org-1",
        type="sms",
        provider="acs",
        sender=SENDER,
        base_url=base_url,
        credentials={"access_key": access_key},
        options={},
    )


def outgoing(info: ChannelInfo, *, id: str = "msg-1", **fields: Any) -> OutgoingMessage:
    values: dict[str, Any] = {"to": CUSTOMER, "body": TEXT, "attempt": 1}
    values.update(fields)
    return OutgoingMessage(id=id, org_id="org-1", channel=info, **values)


async def send_ours(
    message: OutgoingMessage, *, clock: FakeClock | None = None, total_timeout: float = 10.0
) -> SendResult:
    http = HttpClient(total_timeout=total_timeout, connect_timeout=2.0)
    provider = AcsProvider(http, clock=clock)
    try:
        return await provider.send(message)
    finally:
        await provider.aclose()
        await http.aclose()


async def send_sdk(base_url: str, *, to: list[str], message: str, tag: str | None) -> Any:
    """``SmsClient.send(...)`` with the official SDK, in a thread; its results."""

    def run() -> Any:
        client = SmsClient(
            endpoint=base_url, credential=AzureKeyCredential(ACCESS_KEY), retry_total=0
        )
        try:
            return client.send(
                from_=SENDER, to=to, message=message, enable_delivery_report=True, tag=tag
            )
        finally:
            client._sms_service_client.close()

    return await asyncio.to_thread(run)


def string_to_sign(request: Captured) -> str:
    path_and_query = request.path + (f"?{request.query_string}" if request.query_string else "")
    return (
        f"{request.method}\n{path_and_query}\n"
        f"{request.header('x-ms-date')};{request.header('Host')};"
        f"{request.header('x-ms-content-sha256')}"
    )


def independent_signature(request: Captured, access_key: str = ACCESS_KEY) -> str:
    digest = hmac.new(
        base64.b64decode(access_key), string_to_sign(request).encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def assert_signed(request: Captured, server: CaptureServer) -> None:
    """The captured Authorization is the HMAC-SHA256 signature of the captured request."""
    assert request.header("Host") == server.host  # the signed host carries the port
    content_hash = base64.b64encode(hashlib.sha256(request.body).digest()).decode()
    assert request.header("x-ms-content-sha256") == content_hash
    date = email.utils.parsedate_to_datetime(request.header("x-ms-date") or "")
    assert date.tzinfo is not None
    assert (request.header("x-ms-date") or "").endswith(" GMT")
    scheme, _, rest = (request.header("Authorization") or "").partition(" ")
    assert scheme == "HMAC-SHA256"
    signed, _, signature = rest.partition("&Signature=")
    assert signed == f"SignedHeaders={SIGNED_HEADERS}"
    assert signature == independent_signature(request)
    # The SDK's own HMAC code agrees.
    policy = HMACCredentialsPolicy(server.url, AzureKeyCredential(ACCESS_KEY))
    assert policy._compute_hmac(string_to_sign(request)) == signature
    assert signature != independent_signature(request, OTHER_KEY)


def assert_same_request(ours: Captured, sdk: Captured, server: CaptureServer) -> None:
    assert (ours.method, ours.path, ours.query) == (sdk.method, sdk.path, sdk.query)
    assert (ours.method, ours.path, ours.query) == ("POST", "/sms", {"api-version": [API_VERSION]})
    assert ours.header("Content-Type") == sdk.header("Content-Type") == "application/json"
    assert ours.header("Accept") == sdk.header("Accept") == "application/json"
    for request in (ours, sdk):
        assert_signed(request, server)


def assert_same_payload(ours: dict[str, Any], sdk: dict[str, Any]) -> None:
    """Same fields and values, except the per-send repeatability pair (checked for shape)."""
    ours_recipients = ours.pop("smsRecipients")
    sdk_recipients = sdk.pop("smsRecipients")
    assert ours == sdk
    assert len(ours_recipients) == len(sdk_recipients)
    for mine, theirs in zip(ours_recipients, sdk_recipients, strict=True):
        assert (
            set(mine) == set(theirs) == {"to", "repeatabilityRequestId", "repeatabilityFirstSent"}
        )
        assert mine["to"] == theirs["to"]
        for recipient in (mine, theirs):
            assert (
                str(uuid.UUID(recipient["repeatabilityRequestId"]))
                == (recipient["repeatabilityRequestId"])
            )
            sent = email.utils.parsedate_to_datetime(recipient["repeatabilityFirstSent"])
            assert sent.tzinfo is not None
            assert recipient["repeatabilityFirstSent"].endswith(" GMT")


@pytest.fixture
async def api() -> AsyncIterator[CaptureServer]:
    async with CaptureServer(answer=accepted) as server:
        yield server


# --- the send request against the SDK's --------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [TEXT, 'Hé ça coûte 5 € & 10% = {x}+1? "quoted" \\ a/b\nligne 2 😀'],
    ids=["ascii", "unicode-and-reserved"],
)
async def test_sms_request_matches_the_sdk(api: CaptureServer, body: str) -> None:
    result = await send_ours(outgoing(channel(api.url), body=body))
    sdk_results = await send_sdk(api.url, to=[CUSTOMER], message=body, tag="msg-1")
    ours, sdk = api.requests
    assert_same_request(ours, sdk, api)
    ours_json, sdk_json = ours.json(), sdk.json()
    assert ours_json["message"] == body
    assert ours_json["smsSendOptions"] == {"enableDeliveryReport": True, "tag": "msg-1"}
    assert_same_payload(ours_json, sdk_json)
    (sdk_result,) = sdk_results
    assert sdk_result.successful
    assert result.provider_message_id == sdk_result.message_id == "Outgoing_33612345678"


async def test_the_signature_covers_the_clock_date(api: CaptureServer) -> None:
    clock = FakeClock()
    await send_ours(outgoing(channel(api.url)), clock=clock)
    assert api.last.header("x-ms-date") == "Thu, 15 Jan 2026 09:00:00 GMT"
    assert_signed(api.last, api)


async def test_repeatability_id_is_stable_per_message(api: CaptureServer) -> None:
    clock = FakeClock()
    first_attempt = clock.now()
    info = channel(api.url)
    await send_ours(outgoing(info, first_attempt_at=first_attempt), clock=clock)
    clock.advance(90)
    await send_ours(outgoing(info, attempt=2, first_attempt_at=first_attempt), clock=clock)
    await send_ours(outgoing(info, id="msg-2", first_attempt_at=clock.now()), clock=clock)
    first, retry, other = (r.json()["smsRecipients"][0] for r in api.requests)
    assert first["repeatabilityRequestId"] == retry["repeatabilityRequestId"]
    assert first["repeatabilityRequestId"] == repeatability_id("msg-1")
    assert first["repeatabilityFirstSent"] == retry["repeatabilityFirstSent"]
    assert first["repeatabilityFirstSent"] == "Thu, 15 Jan 2026 09:00:00 GMT"
    assert other["repeatabilityRequestId"] != first["repeatabilityRequestId"]
    # Each send is signed with its own date.
    assert api.requests[0].header("x-ms-date") != api.requests[1].header("x-ms-date")
    for request in api.requests:
        assert_signed(request, api)


# --- response and error mapping -----------------------------------------------------------


def acs_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


ERROR_CASES: list[tuple[str, int, Any, dict[str, str], type[ProviderError], str, float | None]] = [
    (
        "item-400",
        202,
        {"value": [item(CUSTOMER, status=400, error="Invalid To phone number format.")]},
        {},
        PermanentProviderError,
        "400",
        None,
    ),
    (
        "item-503",
        202,
        {"value": [item(CUSTOMER, status=503, error="Service unavailable")]},
        {},
        TransientProviderError,
        "503",
        None,
    ),
    (
        "429-retry-after",
        429,
        acs_error("TooManyRequests", "Rate limit exceeded"),
        {"Retry-After": "20"},
        TransientProviderError,
        "TooManyRequests",
        20.0,
    ),
    (
        "500",
        500,
        acs_error("InternalError", "Internal error"),
        {},
        TransientProviderError,
        "InternalError",
        None,
    ),
    ("503-no-json", 503, None, {}, TransientProviderError, "503", None),
    (
        "401",
        401,
        acs_error("Denied", "Denied by the resource provider."),
        {},
        CredentialsError,
        "Denied",
        None,
    ),
    (
        "400",
        400,
        acs_error("BadRequest", "Invalid From phone number format."),
        {},
        PermanentProviderError,
        "BadRequest",
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
        # The SDK reads the same canned answer as a failure too.
        if status == 202:
            (sdk_result,) = await send_sdk(server.url, to=[CUSTOMER], message=TEXT, tag=None)
            assert not sdk_result.successful
            assert str(sdk_result.http_status_code) == code
        else:
            with pytest.raises(HttpResponseError) as sdk_caught:
                await send_sdk(server.url, to=[CUSTOMER], message=TEXT, tag=None)
            assert sdk_caught.value.status_code == status
    assert type(caught.value) is error
    assert caught.value.code == code
    assert caught.value.retry_after == retry_after


async def test_a_malformed_access_key_is_a_credentials_error(api: CaptureServer) -> None:
    truncated = ACCESS_KEY.rstrip("=")
    with pytest.raises(CredentialsError):
        await send_ours(outgoing(channel(api.url, access_key=truncated)))


async def test_a_connection_dropped_after_the_request_is_of_unknown_outcome() -> None:
    async with CaptureServer(behaviour="close") as server:
        with pytest.raises(TransientProviderError) as caught:
            await send_ours(outgoing(channel(server.url)))
    assert caught.value.code == "connection_lost"  # it may have been received


async def test_timeout_is_transient() -> None:
    async with CaptureServer(answer=accepted, behaviour="sleep", sleep_seconds=5) as server:
        with pytest.raises(TransientProviderError) as caught:
            await send_ours(outgoing(channel(server.url)), total_timeout=0.3)
    assert caught.value.code == "timeout"


# --- dispatch and Event Grid through the HTTP API ----------------------------------------------


@pytest.fixture
async def acs_api(tenant: Tenant, container: Container) -> AsyncIterator[CaptureServer]:
    """The capture server standing in for ACS; the container's client is closed here, in the
    loop that opened it."""
    async with CaptureServer(answer=accepted) as server:
        try:
            yield server
        finally:
            await container.http.aclose()


def create_channel(tenant: Tenant, base_url: str) -> dict[str, Any]:
    response = tenant.post(
        "/v1/channels",
        {
            "name": "ACS",
            "type": "sms",
            "provider": "acs",
            "sender": SENDER,
            "base_url": base_url,
            "credentials": {"access_key": ACCESS_KEY},
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
    ch = create_channel(tenant, server.url)
    (message_id,) = queue_messages(tenant, create_configuration(tenant, ch["id"]), [CUSTOMER])
    assert await container.dispatcher().run_once() == 1
    detail = tenant.get(f"/v1/messages/{message_id}").json()
    assert (detail["status"], detail["provider_message_id"]) == ("sent", "Outgoing_33612345678")
    return ch, detail


def event(
    event_type: str, data: dict[str, Any], subject: str = "/phonenumber/18005550100"
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "topic": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
        "/providers/microsoft.communication/communicationservices/acs-res",
        "subject": subject,
        "eventType": event_type,
        "eventTime": "2026-01-15T09:01:00.0000000Z",
        "data": data,
        "dataVersion": "1.0",
        "metadataVersion": "1",
    }


def delivery_report(message_id: str, status: str, details: str, tag: str) -> list[dict[str, Any]]:
    return [
        event(
            "Microsoft.Communication.SMSDeliveryReportReceived",
            {
                "messageId": message_id,
                "from": SENDER.lstrip("+"),
                "to": CUSTOMER,
                "deliveryStatus": status,
                "deliveryStatusDetails": details,
                "receivedTimestamp": "2026-01-15T09:01:00.0000000Z",
                "deliveryAttempts": [
                    {
                        "timestamp": "2026-01-15T09:00:30.0000000Z",
                        "segmentsSucceeded": 1 if status == "Delivered" else 0,
                        "segmentsFailed": 0 if status == "Delivered" else 1,
                    }
                ],
                "Tag": tag,
            },
        )
    ]


def post_events(
    tenant: Tenant, url: str, events: list[dict[str, Any]], kind: str = "Notification"
) -> Any:
    return tenant.client.post(
        url,
        content=json.dumps(events),
        headers={
            "Content-Type": "application/json",
            "aeg-event-type": kind,
            "aeg-subscription-name": "OUTBOUND-SMS",
            "aeg-delivery-count": "0",
            "aeg-data-version": "1.0",
            "aeg-metadata-version": "1",
        },
    )


def with_token(url: str, token: str | None) -> str:
    path = url.split("?", 1)[0]
    return path if token is None else f"{path}?token={token}"


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
    tenant: Tenant, container: Container, acs_api: CaptureServer
) -> None:
    _ch, sent = await sent_message(tenant, container, acs_api)
    await send_sdk(acs_api.url, to=[CUSTOMER], message=TEXT, tag=sent["id"])
    ours, sdk = acs_api.requests
    assert_same_request(ours, sdk, acs_api)
    ours_json = ours.json()
    assert ours_json["smsRecipients"][0]["repeatabilityRequestId"] == repeatability_id(sent["id"])
    assert ours_json["smsSendOptions"] == {"enableDeliveryReport": True, "tag": sent["id"]}
    assert_same_payload(ours_json, sdk.json())


async def test_a_retry_repeats_the_first_repeatability_pair(
    tenant: Tenant, container: Container, acs_api: CaptureServer, clock: FakeClock
) -> None:
    ch = create_channel(tenant, acs_api.url)
    config_id = create_configuration(tenant, ch["id"])
    first_id, other_id = queue_messages(tenant, config_id, [CUSTOMER, OTHER_CUSTOMER])
    acs_api.respond(503, acs_error("ServiceUnavailable", "Try again"))
    assert await container.dispatcher().run_once() == 2
    assert tenant.get(f"/v1/messages/{first_id}").json()["status"] == "queued"
    acs_api.answer = accepted
    clock.advance(120)
    assert await container.dispatcher().run_once() == 2
    for message_id in (first_id, other_id):
        assert tenant.get(f"/v1/messages/{message_id}").json()["status"] == "sent"
    by_to: dict[str, list[Captured]] = {}
    for request in acs_api.requests:
        assert_signed(request, acs_api)
        by_to.setdefault(request.json()["smsRecipients"][0]["to"], []).append(request)
    first, retry = (r.json()["smsRecipients"][0] for r in by_to[CUSTOMER])
    assert first["repeatabilityRequestId"] == retry["repeatabilityRequestId"]
    assert first["repeatabilityRequestId"] == repeatability_id(first_id)
    assert first["repeatabilityFirstSent"] == retry["repeatabilityFirstSent"]
    assert by_to[CUSTOMER][0].header("x-ms-date") != by_to[CUSTOMER][1].header("x-ms-date")
    other = by_to[OTHER_CUSTOMER][0].json()["smsRecipients"][0]
    assert other["repeatabilityRequestId"] == repeatability_id(other_id)
    assert other["repeatabilityRequestId"] != first["repeatabilityRequestId"]


async def test_subscription_validation_is_answered(
    tenant: Tenant, container: Container, acs_api: CaptureServer
) -> None:
    ch = create_channel(tenant, acs_api.url)
    assert ch["webhook_url"].startswith(f"/webhooks/{ch['id']}?token=")
    code = "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"
    validation = event(
        "Microsoft.EventGrid.SubscriptionValidationEvent",
        {
            "validationCode": code,
            "validationUrl": "https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/"
            "outbound-sms/validate?id=512d38b6&t=2026-01-15T09:00:00.0000000Z&apiVersion=2018-05-01"
            "&token=abc",
        },
        subject="",
    )
    response = post_events(tenant, ch["webhook_url"], [validation], kind="SubscriptionValidation")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"validationResponse": code}


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_validation_without_the_token_is_refused(
    tenant: Tenant, container: Container, acs_api: CaptureServer, token: str | None
) -> None:
    ch = create_channel(tenant, acs_api.url)
    validation = event(
        "Microsoft.EventGrid.SubscriptionValidationEvent",
        {"validationCode": "x", "validationUrl": "https://example.invalid/validate"},
    )
    response = post_events(
        tenant, with_token(ch["webhook_url"], token), [validation], kind="SubscriptionValidation"
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("delivery", "details", "expected", "error_code"),
    [
        ("Delivered", "No error.", "delivered", None),
        ("Failed", "Destination unreachable.", "undelivered", "Failed"),
    ],
)
async def test_delivery_report_updates_the_sent_message(
    tenant: Tenant,
    container: Container,
    acs_api: CaptureServer,
    delivery: str,
    details: str,
    expected: str,
    error_code: str | None,
) -> None:
    ch, sent = await sent_message(tenant, container, acs_api)
    report = delivery_report(sent["provider_message_id"], delivery, details, sent["id"])
    response = post_events(tenant, ch["webhook_url"], report)
    assert response.status_code == 200, response.text
    detail = tenant.get(f"/v1/messages/{sent['id']}").json()
    assert (detail["status"], detail["error_code"]) == (expected, error_code)


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_delivery_report_without_the_token_is_refused(
    tenant: Tenant, container: Container, acs_api: CaptureServer, token: str | None
) -> None:
    ch, sent = await sent_message(tenant, container, acs_api)
    before = event_count(container, sent["id"])
    report = delivery_report(sent["provider_message_id"], "Delivered", "No error.", sent["id"])
    response = post_events(tenant, with_token(ch["webhook_url"], token), report)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_signature"
    assert tenant.get(f"/v1/messages/{sent['id']}").json()["status"] == "sent"
    assert event_count(container, sent["id"]) == before


async def test_a_report_on_one_channel_cannot_touch_another_tenants_message(
    tenant: Tenant, other_tenant: Tenant, container: Container, acs_api: CaptureServer
) -> None:
    _ch, sent = await sent_message(tenant, container, acs_api)
    foreign = create_channel(other_tenant, acs_api.url)
    report = delivery_report(sent["provider_message_id"], "Failed", "Blocked.", sent["id"])
    response = post_events(other_tenant, foreign["webhook_url"], report)
    assert response.status_code in (200, 403)
    detail = tenant.get(f"/v1/messages/{sent['id']}").json()
    assert (detail["status"], detail["error_code"]) == ("sent", None)


async def test_received_sms_opens_a_conversation(
    tenant: Tenant, container: Container, acs_api: CaptureServer
) -> None:
    ch, sent = await sent_message(tenant, container, acs_api)
    received = event(
        "Microsoft.Communication.SMSReceived",
        {
            "messageId": "Incoming_20260115090200abcd",
            "from": CUSTOMER.lstrip("+"),
            "to": SENDER,
            "message": "Merci, à demain !",
            "receivedTimestamp": "2026-01-15T09:02:00.0000000Z",
            "segmentCount": 1,
        },
        subject=f"/phonenumber/{SENDER.lstrip('+')}",
    )
    assert post_events(tenant, ch["webhook_url"], [received]).status_code == 200
    # Event Grid redelivers: the same message is stored once.
    assert post_events(tenant, ch["webhook_url"], [received]).status_code == 200
    with container.db.read() as session:
        assert session.execute(sa.select(sa.func.count(InboundMessage.id))).scalar_one() == 1
    conversations = tenant.get("/v1/conversations").json()["data"]
    assert len(conversations) == 1
    thread = tenant.get(f"/v1/conversations/{conversations[0]['id']}").json()
    assert thread["customer_number"] == CUSTOMER
    assert [(m["direction"], m["body"]) for m in thread["messages"]] == [
        ("outbound", sent["body"]),
        ("inbound", "Merci, à demain !"),
    ]


async def test_received_sms_without_the_token_stores_nothing(
    tenant: Tenant, container: Container, acs_api: CaptureServer
) -> None:
    ch = create_channel(tenant, acs_api.url)
    received = event(
        "Microsoft.Communication.SMSReceived",
        {"messageId": "Incoming_1", "from": CUSTOMER, "to": SENDER, "message": "hi"},
    )
    response = post_events(tenant, with_token(ch["webhook_url"], None), [received])
    assert response.status_code == 403
    with container.db.read() as session:
        assert session.execute(sa.select(sa.func.count(InboundMessage.id))).scalar_one() == 0
