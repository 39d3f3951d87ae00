"""The fake Twilio, driven by the official SDK (twilio 9.13) and checked with its validator."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
import requests
from aiohttp import web
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from outbound.testing.fakes import (
    CALLBACK_TALLY_PATH,
    CapturedRequest,
    FakeTwilio,
    WebhookReceiver,
    twilio_signature,
)
from outbound.testing.fakes import __main__ as fakes_cli

SID = "AC" + "a1" * 16
TOKEN = "0123456789abcdef0123456789abcdef"
SENDER = "+15017122661"
USER = "+15558675310"
VALID = {"To": USER, "From": SENDER, "Body": "hi"}
RESOURCE_FIELDS = {
    "account_sid",
    "api_version",
    "body",
    "date_created",
    "date_sent",
    "date_updated",
    "direction",
    "error_code",
    "error_message",
    "from",
    "messaging_service_sid",
    "num_media",
    "num_segments",
    "price",
    "price_unit",
    "sid",
    "status",
    "subresource_uris",
    "to",
    "uri",
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(SID, TOKEN, callback_delay=0.01) as server:
        yield server


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as hooks:
        yield hooks


def _client(fake: FakeTwilio, username: str = SID, password: str = TOKEN) -> Client:
    client = Client(username, password, account_sid=SID)
    client.api.base_url = fake.base_url
    return client


@pytest.fixture
def client(fake: FakeTwilio) -> Iterator[Client]:
    sdk = _client(fake)
    yield sdk
    sdk.http_client.session.close()


async def _create(client: Client, **kwargs: Any) -> Any:
    return await asyncio.to_thread(client.messages.create, **kwargs)


async def _raw_post(
    fake: FakeTwilio,
    form: dict[str, str],
    *,
    account: str = SID,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    auth = {"Authorization": "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()}
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.messages_url(account), data=form, headers=auth) as response,
    ):
        return response.status, await response.json(), dict(response.headers)


def _params(request: CapturedRequest) -> dict[str, str]:
    return {name: values[0] for name, values in request.form().items()}


def _valid(url: str, request: CapturedRequest) -> bool:
    validator = RequestValidator(TOKEN)
    return bool(validator.validate(url, _params(request), request.headers["X-Twilio-Signature"]))


# -- signing ---------------------------------------------------------------------------------


def test_signature_matches_the_known_vector_and_the_sdk_validator() -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    signature = twilio_signature("12345", url, params)
    assert signature == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert RequestValidator("12345").validate(url, params, signature)
    assert twilio_signature("12345", url, list(params.items())) == signature


# -- sending ---------------------------------------------------------------------------------


async def test_sdk_send_returns_the_message_resource(fake: FakeTwilio, client: Client) -> None:
    message = await _create(client, to=USER, from_=SENDER, body="Hello from outbound")

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert message.status == "queued"
    assert message.num_segments == "1"
    assert message.direction == "outbound-api"
    assert message.account_sid == SID
    sent = fake.requests[-1]
    assert sent.method == "POST"
    assert sent.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert _params(sent) == {"To": USER, "From": SENDER, "Body": "Hello from outbound"}
    assert sent.headers["Authorization"].startswith("Basic ")
    assert fake.messages[message.sid].to == USER


async def test_raw_answer_is_201_with_every_documented_field(fake: FakeTwilio) -> None:
    status, body, _ = await _raw_post(fake, {"To": USER, "From": SENDER, "Body": "ж" * 71})

    assert status == 201
    assert set(body) == RESOURCE_FIELDS
    assert body["num_segments"] == "2"  # UCS-2: 71 characters take two parts of 67
    assert body["num_media"] == "0"
    assert body["error_code"] is None
    assert body["api_version"] == "2010-04-01"
    assert body["uri"] == f"/2010-04-01/Accounts/{SID}/Messages/{body['sid']}.json"
    assert body["subresource_uris"]["media"].endswith(f"/Messages/{body['sid']}/Media.json")
    assert re.fullmatch(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000", body["date_created"])
    assert parsedate_to_datetime(body["date_created"]).tzinfo is not None


async def test_messaging_service_send_is_accepted_then_queued(
    fake: FakeTwilio, client: Client, receiver: WebhookReceiver
) -> None:
    service = "MG" + "b2" * 16
    message = await _create(
        client, to=USER, messaging_service_sid=service, body="hi", status_callback=receiver.url()
    )
    assert message.status == "accepted"
    assert message.from_ is None
    assert message.num_segments == "0"

    hooks = await receiver.wait_for(3)
    statuses = [_params(h)["MessageStatus"] for h in hooks]
    assert statuses == ["queued", "sent", "delivered"]
    assert all(_params(h)["MessagingServiceSid"] == service for h in hooks)


async def test_fetch_returns_the_stored_resource(fake: FakeTwilio, client: Client) -> None:
    fake.callback_sequence = []
    created = await _create(client, to=USER, from_=SENDER, body="fetch me")
    fetched = await asyncio.to_thread(client.messages(created.sid).fetch)
    assert fetched.sid == created.sid
    assert fetched.body == "fetch me"

    with pytest.raises(TwilioRestException) as missing:
        await asyncio.to_thread(client.messages("SM" + "0" * 32).fetch)
    assert (missing.value.status, missing.value.code) == (404, 20404)


async def _raw_get(fake: FakeTwilio, uri: str, password: str = TOKEN) -> tuple[int, Any]:
    auth = {"Authorization": "Basic " + base64.b64encode(f"{SID}:{password}".encode()).decode()}
    async with (
        aiohttp.ClientSession() as session,
        session.get(fake.base_url + uri, headers=auth) as response,
    ):
        return response.status, await response.json()


async def test_the_messages_list_filters_and_pages_as_twilio(
    fake: FakeTwilio, client: Client
) -> None:
    for i in range(3):
        await _create(client, to=USER, from_=SENDER, body=f"m{i}")
    await _create(client, to="+15558675311", from_=SENDER, body="another number")
    await _create(client, to=USER, from_="+15017122662", body="another sender")
    await fake.drain()  # every message has been sent: it has its date_sent
    today = datetime.now(UTC).date()
    # The SDK's own paging follows next_page_uri.
    listed = await asyncio.to_thread(
        client.messages.list, to=USER, from_=SENDER, date_sent_after=today, page_size=2
    )
    assert [m.body for m in listed] == ["m2", "m1", "m0"]  # newest first
    sent = fake.requests[-2:]
    assert [r.query.get("PageSize") for r in sent] == ["2", "2"]
    assert sent[0].query["DateSent>"] == f"{today.isoformat()}T00:00:00Z"
    assert sent[1].query["PageToken"].startswith("PASM")

    path = f"/2010-04-01/Accounts/{SID}/Messages.json"
    status, first = await _raw_get(
        fake, f"{path}?To=%2B15558675310&DateSent%3E={today.isoformat()}&PageSize=2"
    )
    assert status == 200
    assert [m["body"] for m in first["messages"]] == ["another sender", "m2"]
    assert (first["page"], first["page_size"], first["start"], first["end"]) == (0, 2, 0, 1)
    assert first["previous_page_uri"] is None
    status, second = await _raw_get(fake, first["next_page_uri"])
    assert [m["body"] for m in second["messages"]] == ["m1", "m0"]
    assert second["next_page_uri"] is None
    assert (second["page"], second["start"], second["end"]) == (1, 2, 3)

    tomorrow = (today + timedelta(days=1)).isoformat()
    yesterday = (today - timedelta(days=1)).isoformat()
    for query, count in [
        (f"DateSent%3E={tomorrow}", 0),
        (f"DateSent%3C={yesterday}", 0),
        (f"DateSent={today.isoformat()}", 5),
        ("From=%2B15017122662", 1),
    ]:
        status, page = await _raw_get(fake, f"{path}?{query}")
        assert (status, len(page["messages"])) == (200, count), query
    # A message not sent yet has no date_sent: no DateSent filter finds it.
    fake.callback_delay = 5
    await _create(client, to=USER, from_=SENDER, body="not sent yet")
    _, page = await _raw_get(fake, f"{path}?To=%2B15558675310&DateSent%3E={yesterday}")
    assert "not sent yet" not in [m["body"] for m in page["messages"]]
    _, page = await _raw_get(fake, f"{path}?To=%2B15558675310")
    assert page["messages"][0]["body"] == "not sent yet"

    assert (await _raw_get(fake, f"{path}?PageSize=1001"))[0] == 400
    assert (await _raw_get(fake, f"{path}?DateSent=soon"))[0] == 400
    status, body = await _raw_get(fake, path, password="wrong")
    assert (status, body["code"]) == (401, 20003)


async def test_api_key_credentials_are_accepted(fake: FakeTwilio) -> None:
    key_sid = "SK" + "c3" * 16
    fake.api_keys[key_sid] = "key-secret"
    sdk = _client(fake, key_sid, "key-secret")
    try:
        message = await _create(sdk, to=USER, from_=SENDER, body="via api key")
    finally:
        sdk.http_client.session.close()
    assert message.status == "queued"


# -- authentication --------------------------------------------------------------------------


async def test_bad_credentials_are_refused(fake: FakeTwilio) -> None:
    sdk = _client(fake, SID, "wrong-token")
    try:
        with pytest.raises(TwilioRestException) as refused:
            await _create(sdk, to=USER, from_=SENDER, body="hi")
    finally:
        sdk.http_client.session.close()
    assert (refused.value.status, refused.value.code) == (401, 20003)
    assert fake.messages == {}


async def test_missing_auth_and_foreign_account_path(fake: FakeTwilio) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.messages_url(), data={"To": USER}) as response,
    ):
        assert response.status == 401
        assert (await response.json())["code"] == 20003
        assert response.headers["WWW-Authenticate"].startswith("Basic")

    other = "AC" + "d4" * 16
    status, body, _ = await _raw_post(
        fake, {"To": USER, "From": SENDER, "Body": "x"}, account=other
    )
    assert (status, body["code"]) == (404, 20404)


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": SENDER, "Body": "hi"}, 21604),
        ({"To": "5558675310", "From": SENDER, "Body": "hi"}, 21211),
        ({"To": "+1555", "From": SENDER, "Body": "hi"}, 21211),
        ({"To": USER, "Body": "hi"}, 21603),
        ({"To": USER, "From": "not a number!", "Body": "hi"}, 21212),
        ({"To": USER, "MessagingServiceSid": "MGshort", "Body": "hi"}, 21701),
        ({"To": USER, "From": SENDER}, 21602),
        ({"To": USER, "From": SENDER, "Body": "x" * 1601}, 21617),
        ({**VALID, "ContentSid": "HX123"}, 21655),
        ({**VALID, "ContentSid": "HX" + "0" * 32, "ContentVariables": "[1]"}, 21656),
        ({**VALID, "ContentSid": "HX" + "0" * 32, "ContentVariables": "{bad"}, 21656),
        ({"To": "whatsapp:" + USER, "From": SENDER, "Body": "hi"}, 21910),
        ({"To": USER, "From": "whatsapp:" + SENDER, "Body": "hi"}, 21910),
        ({**VALID, "MediaUrl": "ftp://example.com/a.png"}, 21620),
        ({**VALID, "StatusCallback": "https://bad_host.example.com/cb"}, 21609),
    ],
)
async def test_invalid_requests_get_twilio_errors(
    fake: FakeTwilio, form: dict[str, str], code: int
) -> None:
    status, body, _ = await _raw_post(fake, form)
    assert status == 400
    assert body["code"] == code
    assert body["status"] == 400
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert fake.messages == {}


async def test_number_lists_give_their_errors(fake: FakeTwilio, client: Client) -> None:
    fake.invalid_numbers.add("+15550000001")
    fake.unsubscribed.add("+15550000002")
    fake.landlines.add("+15550000003")
    for number, code in [("+15550000001", 21211), ("+15550000002", 21610), ("+15550000003", 21614)]:
        with pytest.raises(TwilioRestException) as rejected:
            await _create(client, to=number, from_=SENDER, body="hi")
        assert (rejected.value.status, rejected.value.code) == (400, code)


async def test_unknown_sender_is_refused_when_senders_are_configured(fake: FakeTwilio) -> None:
    fake.sender_numbers = {SENDER, "whatsapp:+14155238886"}
    status, body, _ = await _raw_post(fake, {"To": USER, "From": "+15550009999", "Body": "x"})
    assert (status, body["code"]) == (400, 21606)
    form = {"To": "whatsapp:" + USER, "From": "whatsapp:+15550009999", "Body": "x"}
    status, body, _ = await _raw_post(fake, form)
    assert (status, body["code"]) == (400, 63007)
    status, _, _ = await _raw_post(fake, {**form, "From": "whatsapp:+14155238886"})
    assert status == 201


# -- faults ----------------------------------------------------------------------------------


async def test_429_with_retry_after_then_success(fake: FakeTwilio, client: Client) -> None:
    fake.fail_next(status=429, retry_after=3)

    status, body, headers = await _raw_post(fake, VALID)
    assert (status, body["code"]) == (429, 20429)
    assert headers["Retry-After"] == "3"

    fake.fail_next(status=429)
    with pytest.raises(TwilioRestException) as limited:
        await _create(client, to=USER, from_=SENDER, body="hi")
    assert limited.value.status == 429
    message = await _create(client, to=USER, from_=SENDER, body="hi")
    assert message.status == "queued"
    assert len(fake.requests) == 3


async def test_500_and_custom_bodies(fake: FakeTwilio, client: Client) -> None:
    fake.fail_next(status=500)
    with pytest.raises(TwilioRestException) as failed:
        await _create(client, to=USER, from_=SENDER, body="hi")
    assert (failed.value.status, failed.value.code) == (500, 20500)

    fake.fail_next(2, status=503, body={"code": 20503, "message": "down", "status": 503})
    for _ in range(2):
        status, body, _ = await _raw_post(fake, VALID)
        assert (status, body["message"]) == (503, "down")
    assert fake.pending_faults == 0
    assert fake.messages == {}


async def test_dropped_connection(fake: FakeTwilio, client: Client) -> None:
    fake.drop_next()
    with pytest.raises(requests.ConnectionError):
        await _create(client, to=USER, from_=SENDER, body="hi")
    assert len(fake.requests) == 1  # captured although never answered
    assert fake.messages == {}
    assert (await _create(client, to=USER, from_=SENDER, body="hi")).status == "queued"


async def test_latency_and_slow_requests(fake: FakeTwilio) -> None:
    fake.latency = 0.05
    fake.slow_next(1, 0.25)
    started = time.monotonic()
    status, _, _ = await _raw_post(fake, VALID)
    assert status == 201
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await _raw_post(fake, VALID)
    assert time.monotonic() - started < 0.25


async def test_dropped_after_the_message_was_created(fake: FakeTwilio) -> None:
    fake.drop_after_next()
    with pytest.raises(aiohttp.ClientError):
        await _raw_post(fake, VALID)
    assert len(fake.messages) == 1  # created, though its answer never came
    status, _, _ = await _raw_post(fake, VALID)
    assert (status, len(fake.messages)) == (201, 2)


async def test_an_outage_answers_every_call_then_ends(fake: FakeTwilio) -> None:
    fake.down_for(0.3)
    assert fake.down
    for _ in range(2):
        status, body, _ = await _raw_post(fake, VALID)
        assert (status, body["code"]) == (503, 20503)
    fake.down_for(0.3, status=None)
    with pytest.raises(aiohttp.ClientError):
        await _raw_post(fake, VALID)
    await asyncio.sleep(0.35)
    assert not fake.down
    assert (await _raw_post(fake, VALID))[0] == 201
    assert len(fake.messages) == 1


async def test_a_share_of_calls_is_slow() -> None:
    async with FakeTwilio(SID, TOKEN, slow_share=0.25, slow_seconds=0.3) as fake:
        took = []
        for _ in range(8):
            started = time.monotonic()
            await _raw_post(fake, VALID)
            took.append(time.monotonic() - started >= 0.3)
        # One call in four, spread evenly: the 4th and the 8th.
        assert took == [False, False, False, True] * 2


def test_the_command_line_sets_the_slow_share() -> None:
    args = fakes_cli.parser().parse_args(["twilio", "--slow-share", "0.1", "--slow-seconds", "5"])
    fake = fakes_cli.build_fake(args)
    assert (fake.slow_share, fake.slow_seconds) == (0.1, 5.0)


async def test_concurrency_limit_answers_20429(fake: FakeTwilio) -> None:
    fake.max_concurrent = 1
    fake.latency = 0.2
    results = await asyncio.gather(_raw_post(fake, VALID), _raw_post(fake, VALID))
    assert sorted(status for status, _, _ in results) == [201, 429]
    assert any(body.get("code") == 20429 for _, body, _ in results)


# -- status callbacks ------------------------------------------------------------------------


async def test_status_callbacks_are_signed_and_validate_with_the_sdk(
    fake: FakeTwilio, client: Client, receiver: WebhookReceiver
) -> None:
    url = receiver.url("/twilio/status?tenant=t1")
    message = await _create(client, to=USER, from_=SENDER, body="hi", status_callback=url)

    hooks = await receiver.wait_for(2)
    await fake.drain()
    assert [_params(h)["MessageStatus"] for h in hooks] == ["sent", "delivered"]
    for hook in hooks:
        params = _params(hook)
        assert _valid(url, hook)
        assert not RequestValidator("other-token").validate(
            url, params, hook.headers["X-Twilio-Signature"]
        )
        assert params["MessageSid"] == params["SmsSid"] == message.sid
        assert params["SmsStatus"] == params["MessageStatus"]
        assert (params["AccountSid"], params["From"], params["To"]) == (SID, SENDER, USER)
        assert params["ApiVersion"] == "2010-04-01"
        assert "ErrorCode" not in params
        assert hook.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
        assert hook.query_string == "tenant=t1"
    assert re.fullmatch(r"\d{10}", _params(hooks[1])["RawDlrDoneDate"])
    assert [r.status for r in fake.callback_results] == [200, 200]
    fetched = await asyncio.to_thread(client.messages(message.sid).fetch)
    assert fetched.status == "delivered"
    assert fetched.date_sent is not None


async def test_failing_number_ends_undelivered_with_error_code(
    fake: FakeTwilio, client: Client, receiver: WebhookReceiver
) -> None:
    fake.failing_numbers[USER] = "30003"
    message = await _create(
        client, to=USER, from_=SENDER, body="hi", status_callback=receiver.url()
    )
    hooks = await receiver.wait_for(2)
    assert [(_params(h)["MessageStatus"], _params(h).get("ErrorCode")) for h in hooks] == [
        ("sent", None),
        ("undelivered", "30003"),
    ]
    assert all(_valid(receiver.url(), h) for h in hooks)
    await fake.drain()
    assert fake.messages[message.sid].resource()["error_code"] == 30003


async def test_dropped_callbacks_never_arrive_and_the_resource_still_tells_the_status(
    fake: FakeTwilio, client: Client, receiver: WebhookReceiver
) -> None:
    fake.drop_callbacks()
    message = await _create(
        client, to=USER, from_=SENDER, body="hi", status_callback=receiver.url()
    )
    await fake.drain()
    assert receiver.requests == []
    assert [(r.status, r.error) for r in fake.callback_results] == [(None, "dropped (fault)")] * 2
    fetched = await asyncio.to_thread(client.messages(message.sid).fetch)
    assert fetched.status == "delivered"
    fake.restore_callbacks()
    await fake.deliver(message.sid, "delivered")
    assert len(await receiver.wait_for(1)) == 1


async def test_a_count_of_dropped_callbacks(
    fake: FakeTwilio, client: Client, receiver: WebhookReceiver
) -> None:
    fake.drop_callbacks(1)
    await _create(client, to=USER, from_=SENDER, body="hi", status_callback=receiver.url())
    hooks = await receiver.wait_for(1)
    await fake.drain()
    assert [_params(h)["MessageStatus"] for h in hooks] == ["delivered"]


async def test_webhook_failures_are_recorded(fake: FakeTwilio, client: Client) -> None:
    async with WebhookReceiver(status=500) as broken:
        await _create(client, to=USER, from_=SENDER, body="hi", status_callback=broken.url())
        await broken.wait_for(2)
        await fake.drain()
    assert [r.status for r in fake.callback_results] == [500, 500]
    assert not any(r.ok for r in fake.callback_results)


async def test_the_callbacks_given_up_on_are_counted_by_cause(
    fake: FakeTwilio, client: Client, receiver: WebhookReceiver
) -> None:
    async with WebhookReceiver(status=500) as broken:
        await _create(client, to=USER, from_=SENDER, body="hi", status_callback=broken.url())
        await broken.wait_for(2)
        await fake.drain()
    await _create(client, to=USER, from_=SENDER, body="hi", status_callback=receiver.url())
    await receiver.wait_for(2)
    fake.drop_callbacks(1)
    await _create(client, to=USER, from_=SENDER, body="hi", status_callback=receiver.url())
    await fake.drain()
    expected = {"posted": 6, "accepted": 3, "failed": {"HTTP 500": 2, "dropped": 1}}
    assert fake.callback_tally() == expected
    async with (
        aiohttp.ClientSession() as session,
        session.get(fake.base_url + CALLBACK_TALLY_PATH) as response,
    ):
        assert response.status == 200
        assert await response.json() == expected


def _slow_receiver(seconds: float) -> WebhookReceiver:
    async def answer(_request: CapturedRequest) -> web.Response:
        await asyncio.sleep(seconds)
        return web.Response()

    return WebhookReceiver(responder=answer)


async def test_a_callback_times_out_from_when_it_is_sent_not_while_it_queues(
    client: Client,
) -> None:
    # 400 callbacks through 100 connections to a receiver taking 0.3 s each: the last ones wait
    # about 0.9 s for a connection, then are answered 0.3 s after being sent, within 1 s.
    async with FakeTwilio(SID, TOKEN, callback_timeout=1.0) as fake, _slow_receiver(0.3) as hooks:
        fake.callback_sequence = []
        client.api.base_url = fake.base_url
        message = await _create(
            client, to=USER, from_=SENDER, body="hi", status_callback=hooks.url()
        )
        statuses = await asyncio.gather(*(fake.deliver(message.sid, "sent") for _ in range(400)))
        assert statuses == [200] * 400
        assert fake.callback_tally() == {"posted": 400, "accepted": 400, "failed": {}}


async def test_a_callback_not_answered_in_time_is_given_up_as_a_timeout(client: Client) -> None:
    async with FakeTwilio(SID, TOKEN, callback_timeout=0.2) as fake, _slow_receiver(1.0) as hooks:
        fake.callback_sequence = []
        client.api.base_url = fake.base_url
        message = await _create(
            client, to=USER, from_=SENDER, body="hi", status_callback=hooks.url()
        )
        assert await fake.deliver(message.sid, "sent") is None
        assert fake.callback_tally() == {"posted": 1, "accepted": 0, "failed": {"timeout": 1}}


async def test_a_callback_answered_too_slowly_in_all_times_out_however_it_trickles(
    client: Client,
) -> None:
    # The receiver answers at once but sends its body a byte every 0.1 s (0.8 s in all): the
    # whole exchange, not the gaps between its reads, has the 0.4 s.
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n")
        try:
            for _ in range(8):
                await writer.drain()
                await asyncio.sleep(0.1)
                writer.write(b"x")
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with FakeTwilio(SID, TOKEN, callback_timeout=0.4) as fake:
            fake.callback_sequence = []
            client.api.base_url = fake.base_url
            message = await _create(
                client,
                to=USER,
                from_=SENDER,
                body="hi",
                status_callback=f"http://127.0.0.1:{port}/status",
            )
            assert await fake.deliver(message.sid, "sent") is None
            assert fake.callback_tally() == {"posted": 1, "accepted": 0, "failed": {"timeout": 1}}
    finally:
        server.close()
        await server.wait_closed()


async def test_on_demand_duplicate_and_out_of_order_callbacks(
    fake: FakeTwilio, client: Client, receiver: WebhookReceiver
) -> None:
    fake.callback_sequence = []
    url = receiver.url()
    message = await _create(client, to=USER, from_=SENDER, body="hi", status_callback=url)

    assert await fake.deliver(message.sid, "delivered") == 200
    assert await fake.deliver(message.sid, "delivered") == 200
    assert await fake.deliver(message.sid, "sent") == 200
    assert await fake.deliver(message.sid, "undelivered", error_code=30005) == 200

    hooks = receiver.requests
    assert [_params(h)["MessageStatus"] for h in hooks] == [
        "delivered",
        "delivered",
        "sent",
        "undelivered",
    ]
    assert _params(hooks[-1])["ErrorCode"] == "30005"
    assert all(_valid(url, h) for h in hooks)


# -- WhatsApp --------------------------------------------------------------------------------

WA_SENDER = "whatsapp:+14155238886"
WA_USER = "whatsapp:" + USER


async def test_whatsapp_free_form_outside_the_window_fails_with_63016(
    fake: FakeTwilio, client: Client, receiver: WebhookReceiver
) -> None:
    url = receiver.url()
    message = await _create(client, to=WA_USER, from_=WA_SENDER, body="hi", status_callback=url)
    assert message.status == "queued"  # accepted: the failure comes asynchronously

    (hook,) = await receiver.wait_for(1)
    await fake.drain()
    assert (_params(hook)["MessageStatus"], _params(hook)["ErrorCode"]) == ("failed", "63016")
    assert _valid(url, hook)
    assert fake.messages[message.sid].error_code == 63016


async def test_whatsapp_template_and_in_window_messages_are_delivered(
    fake: FakeTwilio, client: Client, receiver: WebhookReceiver
) -> None:
    url = receiver.url()
    template = await _create(
        client,
        to=WA_USER,
        from_=WA_SENDER,
        content_sid="HX" + "ab" * 16,
        content_variables='{"1": "Alice", "2": "10:30"}',
        status_callback=url,
    )
    await receiver.wait_for(2)
    assert fake.messages[template.sid].status == "delivered"
    assert fake.messages[template.sid].content_variables == {"1": "Alice", "2": "10:30"}

    inbound = await fake.send_inbound(receiver.url("/inbound"), USER, WA_SENDER, "Hi!", True)
    assert inbound == 200
    assert fake.window_open(USER)
    reply = await _create(client, to=WA_USER, from_=WA_SENDER, body="hello", status_callback=url)
    hooks = await receiver.wait_for(5)
    assert fake.messages[reply.sid].status == "delivered"
    assert [_params(h)["MessageStatus"] for h in hooks[3:]] == ["sent", "delivered"]


async def test_whatsapp_inbound_webhook_fields(fake: FakeTwilio, receiver: WebhookReceiver) -> None:
    url = receiver.url("/twilio/inbound")
    assert await fake.send_inbound(url, USER, WA_SENDER, "Hello", whatsapp=True) == 200

    (hook,) = receiver.requests
    params = _params(hook)
    assert _valid(url, hook)
    assert params["From"] == WA_USER
    assert params["To"] == WA_SENDER
    assert params["WaId"] == USER.lstrip("+")
    assert params["ProfileName"]
    assert params["SmsStatus"] == "received"
    assert params["MessageSid"] == params["SmsSid"] == params["SmsMessageSid"]
    assert (params["NumMedia"], params["NumSegments"]) == ("0", "1")
    assert "OptOutType" not in params


# -- inbound and opt-out ---------------------------------------------------------------------


async def test_inbound_stop_opts_out_and_start_opts_back_in(
    fake: FakeTwilio, client: Client, receiver: WebhookReceiver
) -> None:
    url = receiver.url("/twilio/inbound?k=secret")
    assert await fake.send_inbound(url, USER, SENDER, " stop ") == 200
    params = _params(receiver.requests[-1])
    assert params["OptOutType"] == "STOP"
    assert params["Body"] == " stop "
    assert _valid(url, receiver.requests[-1])
    assert USER in fake.unsubscribed

    with pytest.raises(TwilioRestException) as blocked:
        await _create(client, to=USER, from_=SENDER, body="still there?")
    assert blocked.value.code == 21610

    await fake.send_inbound(url, USER, SENDER, "STOP please")  # not a keyword
    assert "OptOutType" not in _params(receiver.requests[-1])
    await fake.send_inbound(url, USER, SENDER, "help")
    assert _params(receiver.requests[-1])["OptOutType"] == "HELP"
    await fake.send_inbound(url, USER, SENDER, "UNSTOP")
    assert _params(receiver.requests[-1])["OptOutType"] == "START"
    assert USER not in fake.unsubscribed
    assert (await _create(client, to=USER, from_=SENDER, body="welcome back")).status == "queued"


async def test_inbound_extra_parameters_are_signed(
    fake: FakeTwilio, receiver: WebhookReceiver
) -> None:
    url = receiver.url()
    await fake.send_inbound(
        url,
        USER,
        SENDER,
        "see picture",
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/media/ME1",
        MediaContentType0="image/jpeg",
    )
    (hook,) = receiver.requests
    assert _params(hook)["MediaUrl0"] == "https://api.twilio.com/media/ME1"
    assert _valid(url, hook)
    raw = parse_qs(hook.text)
    assert raw["NumMedia"] == ["1"]
