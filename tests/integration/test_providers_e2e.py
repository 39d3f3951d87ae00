"""End to end with the real adapters against the fake providers, callbacks included.

The service runs on a real port (the fakes call its webhooks); the API is driven in-process.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient

from outbound.adapters.db.models import ConsentEvent, InboundMessage, Message
from outbound.app import Container, build_container, create_app
from outbound.config import Settings
from outbound.testing.fakes import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_API_KEY,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_CUSTOMER_ID,
    FakeACS,
    FakeTeleSign,
    FakeTwilio,
)
from tests.helpers import Tenant, contact, make_tenant

CUSTOMER = "+33612345678"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live(settings: Settings) -> Iterator[tuple[Container, Tenant]]:
    port = _free_port()
    live_settings = settings.model_copy(
        update={"public_base_url": f"http://127.0.0.1:{port}", "retry_base_seconds": 0.05}
    )
    container = build_container(live_settings)
    container.migrate()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(container, run_worker=False), port=port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    with TestClient(create_app(container, run_worker=False)) as client:
        try:
            yield container, make_tenant(container, client)
        finally:
            # The server stops first (uvicorn lets the callbacks it is handling finish), then
            # the client's exit closes the container. The other way round, a callback still in
            # its transaction gave its connection back to a pool already disposed, where it
            # stayed open until collected.
            server.should_exit = True
            thread.join(10)
    # Close the pool's connections now rather than when they are collected (a warning then).
    container.db.dispose()


def _channel(tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    response = tenant.post("/v1/channels", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _configuration(tenant: Tenant, channel: dict[str, Any], **extra: Any) -> str:
    kind = channel["type"]
    template = tenant.post(
        "/v1/templates",
        {
            "name": f"t-{channel['id']}",
            "channel_type": kind,
            "default_locale": "en-US",
            "default_text": "Hi {CustomerName}, case {CaseName}",
            **({"content_sid": "HX" + "a" * 32} if kind == "whatsapp" else {}),
        },
    ).json()
    config = tenant.post(
        "/v1/outbound-configurations",
        {
            "name": f"c-{channel['id']}",
            "channel_type": kind,
            "channel_id": channel["id"],
            "template_id": template["id"],
            **extra,
        },
    )
    assert config.status_code == 201, config.text
    return str(config.json()["id"])


def _send(tenant: Tenant, config_id: str, *numbers: str, **overrides: Any) -> list[str]:
    response = tenant.post(
        "/v1/outbound/send",
        {"configuration_id": config_id, "contacts": [contact(n, **overrides) for n in numbers]},
    )
    assert response.status_code == 202, response.text
    return [r["message_id"] for r in response.json()["results"]]


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def _status(tenant: Tenant, message_id: str) -> str:
    return str(tenant.get(f"/v1/messages/{message_id}").json()["status"])


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(callback_delay=0.01) as fake:
        yield fake


def _twilio_channel(tenant: Tenant, fake: FakeTwilio, kind: str = "sms") -> dict[str, Any]:
    return _channel(
        tenant,
        {
            "name": f"twilio {kind}",
            "type": kind,
            "provider": "twilio",
            "sender": "+15005550006",
            "base_url": fake.base_url,
            "credentials": {"account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN},
        },
    )


async def test_twilio_sms_is_sent_and_delivery_reported_through_signed_callbacks(
    live: tuple[Container, Tenant], twilio: FakeTwilio
) -> None:
    container, tenant = live
    config_id = _configuration(tenant, _twilio_channel(tenant, twilio))
    (message_id,) = _send(tenant, config_id, CUSTOMER)
    assert await container.dispatcher().run_once() == 1
    await _until(lambda: _status(tenant, message_id) == "delivered")
    detail = tenant.get(f"/v1/messages/{message_id}").json()
    assert detail["provider_message_id"] in twilio.messages
    assert [h["status"] for h in detail["history"]] == ["queued", "sending", "sent", "delivered"]
    assert all(result.status == 200 for result in twilio.callback_results)


async def test_twilio_duplicate_and_out_of_order_callbacks_change_nothing(
    live: tuple[Container, Tenant], twilio: FakeTwilio
) -> None:
    container, tenant = live
    twilio.callback_sequence = ()
    config_id = _configuration(tenant, _twilio_channel(tenant, twilio))
    (message_id,) = _send(tenant, config_id, CUSTOMER)
    await container.dispatcher().run_once()
    sid = tenant.get(f"/v1/messages/{message_id}").json()["provider_message_id"]
    for status in ("delivered", "delivered", "sent"):
        assert await twilio.deliver(sid, status) == 200
    detail = tenant.get(f"/v1/messages/{message_id}").json()
    assert detail["status"] == "delivered"
    assert [h["status"] for h in detail["history"]] == ["queued", "sending", "sent", "delivered"]


async def test_twilio_429_retry_after_then_success(
    live: tuple[Container, Tenant], twilio: FakeTwilio
) -> None:
    container, tenant = live
    config_id = _configuration(tenant, _twilio_channel(tenant, twilio))
    twilio.fail_next(status=429, retry_after=1)
    (message_id,) = _send(tenant, config_id, CUSTOMER)
    dispatcher = container.dispatcher()
    await dispatcher.run_once()
    detail = tenant.get(f"/v1/messages/{message_id}").json()
    assert (detail["status"], detail["error_code"]) == ("queued", "20429")
    assert await dispatcher.run_once() == 0  # Retry-After: 1 s not over yet
    await asyncio.sleep(1.05)
    assert await dispatcher.run_once() == 1
    await _until(lambda: _status(tenant, message_id) == "delivered")


async def test_twilio_invalid_number_fails_at_once_with_its_code(
    live: tuple[Container, Tenant], twilio: FakeTwilio
) -> None:
    container, tenant = live
    twilio.invalid_numbers.add("+33612345679")
    config_id = _configuration(tenant, _twilio_channel(tenant, twilio))
    (message_id,) = _send(tenant, config_id, "+33612345679")
    await container.dispatcher().run_once()
    detail = tenant.get(f"/v1/messages/{message_id}").json()
    assert (detail["status"], detail["error_code"]) == ("failed", "21211")
    assert detail["attempts"] == 1


async def test_twilio_bad_credentials_mark_the_channel_unhealthy(
    live: tuple[Container, Tenant], twilio: FakeTwilio
) -> None:
    container, tenant = live
    channel = _twilio_channel(tenant, twilio)
    tenant.patch(
        f"/v1/channels/{channel['id']}",
        {"credentials": {"account_sid": DEFAULT_ACCOUNT_SID, "auth_token": "wrong"}},
    )
    config_id = _configuration(tenant, channel)
    ids = _send(tenant, config_id, CUSTOMER, "+33612345679", "+33612345670")
    dispatcher = container.dispatcher()
    await dispatcher.run_once()
    seen = tenant.get(f"/v1/channels/{channel['id']}").json()
    assert seen["healthy"] is False
    assert {_status(tenant, i) for i in ids} == {"queued"}
    tenant.patch(
        f"/v1/channels/{channel['id']}",
        {"credentials": {"account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN}},
    )
    assert await dispatcher.run_once() == 3
    await _until(lambda: {_status(tenant, i) for i in ids} == {"delivered"})


async def test_twilio_stop_reply_withdraws_consent(
    live: tuple[Container, Tenant], twilio: FakeTwilio
) -> None:
    container, tenant = live
    channel = _twilio_channel(tenant, twilio)
    config_id = _configuration(tenant, channel)
    url = f"{container.settings.public_base_url}/webhooks/{channel['id']}"
    assert await twilio.send_inbound(url, from_=CUSTOMER, to="+15005550006", body="STOP") == 200
    response = tenant.post(
        "/v1/outbound/send", {"configuration_id": config_id, "contacts": [contact(CUSTOMER)]}
    )
    assert response.json()["results"][0]["reason"] == "consent_withdrawn"


async def test_twilio_unsubscribed_error_withdraws_consent(
    live: tuple[Container, Tenant], twilio: FakeTwilio
) -> None:
    container, tenant = live
    twilio.unsubscribed.add(CUSTOMER)
    config_id = _configuration(tenant, _twilio_channel(tenant, twilio))
    (message_id,) = _send(tenant, config_id, CUSTOMER)
    await container.dispatcher().run_once()
    assert tenant.get(f"/v1/messages/{message_id}").json()["error_code"] == "21610"
    with container.db.read() as session:
        assert session.execute(sa.select(ConsentEvent.source)).scalar_one() == "provider_error"


async def test_twilio_whatsapp_template_and_session_messages(
    live: tuple[Container, Tenant], twilio: FakeTwilio
) -> None:
    container, tenant = live
    channel = _twilio_channel(tenant, twilio, "whatsapp")
    config_id = _configuration(tenant, channel)
    (template_id,) = _send(tenant, config_id, CUSTOMER, sendastemplate=True)
    await container.dispatcher().run_once()
    await _until(lambda: _status(tenant, template_id) == "delivered")
    sent = {k: v[0] for k, v in twilio.requests[-1].form().items()}
    assert sent["To"] == f"whatsapp:{CUSTOMER}"
    assert sent["ContentSid"] == "HX" + "a" * 32
    assert sent["ContentVariables"] == '{"1": "Ana", "2": "CAS-1"}'
    assert "Body" not in sent
    url = f"{container.settings.public_base_url}/webhooks/{channel['id']}"
    status = await twilio.send_inbound(
        url, from_=CUSTOMER, to="+15005550006", body="hello", whatsapp=True
    )
    assert status == 200
    (session_id,) = _send(tenant, config_id, CUSTOMER)
    await container.dispatcher().run_once()
    await _until(lambda: _status(tenant, session_id) == "delivered")
    assert twilio.requests[-1].form()["Body"] == ["Hi Ana, case CAS-1"]


async def test_telesign_sms_end_to_end(live: tuple[Container, Tenant]) -> None:
    container, tenant = live
    async with FakeTeleSign(callback_delay=0.01) as fake:
        channel = _channel(
            tenant,
            {
                "name": "ts",
                "type": "sms",
                "provider": "telesign",
                "sender": "+15005550006",
                "base_url": fake.base_url,
                "credentials": {"customer_id": DEFAULT_CUSTOMER_ID, "api_key": DEFAULT_API_KEY},
            },
        )
        (message_id,) = _send(tenant, _configuration(tenant, channel), CUSTOMER)
        await container.dispatcher().run_once()
        await _until(lambda: _status(tenant, message_id) == "delivered")
        form = fake.requests[-1].form()
        assert (form["phone_number"], form["message_type"]) == (["33612345678"], ["ARN"])
        # A STOP through TeleSign (numbers without "+") withdraws consent for that number.
        status = await fake.send_inbound(
            channel["webhook_url"], "33612345678", "+15005550006", "STOP"
        )
        assert status == 200
        config_id = tenant.get("/v1/outbound-configurations").json()["data"][0]["id"]
        response = tenant.post(
            "/v1/outbound/send", {"configuration_id": config_id, "contacts": [contact(CUSTOMER)]}
        )
        assert response.json()["results"][0]["reason"] == "consent_withdrawn"


async def test_acs_retry_after_a_lost_response_is_not_a_second_sms(
    live: tuple[Container, Tenant],
) -> None:
    container, tenant = live
    async with FakeACS(callback_delay=0.01) as fake:
        channel = _channel(
            tenant,
            {
                "name": "acs",
                "type": "sms",
                "provider": "acs",
                "sender": "+18005550100",
                "base_url": fake.base_url,
                "credentials": {"access_key": DEFAULT_ACCESS_KEY},
            },
        )
        fake.subscription_url = channel["webhook_url"]
        assert await fake.validate_subscription()
        (message_id,) = _send(tenant, _configuration(tenant, channel), CUSTOMER)
        fake.slow_next(1, 30)  # the send goes through but its answer never comes in time
        container.http._timeout = aiohttp.ClientTimeout(total=0.5)  # a short request timeout
        dispatcher = container.dispatcher()
        await dispatcher.run_once()
        assert _status(tenant, message_id) == "queued"
        await asyncio.sleep(0.2)
        await dispatcher.run_once()
        await _until(lambda: _status(tenant, message_id) == "delivered")
        assert fake.sends == 1
        ids = {r.json()["smsRecipients"][0]["repeatabilityRequestId"] for r in fake.requests}
        assert len(ids) == 1


async def test_failover_to_the_fallback_channel_when_the_primary_is_down(
    live: tuple[Container, Tenant], twilio: FakeTwilio
) -> None:
    container, tenant = live
    async with FakeTeleSign(callback_delay=0.01) as telesign:
        primary = _twilio_channel(tenant, twilio)
        fallback = _channel(
            tenant,
            {
                "name": "ts",
                "type": "sms",
                "provider": "telesign",
                "sender": "+15005550007",
                "base_url": telesign.base_url,
                "credentials": {"customer_id": DEFAULT_CUSTOMER_ID, "api_key": DEFAULT_API_KEY},
            },
        )
        config_id = _configuration(tenant, primary, fallback_channel_id=fallback["id"])
        twilio.fail_next(count=10, status=503)
        (message_id,) = _send(tenant, config_id, CUSTOMER)
        await container.dispatcher().run_once()
        await _until(lambda: _status(tenant, message_id) == "delivered")
        with container.db.read() as session:
            row = session.get(Message, message_id)
            assert row is not None
            assert (row.provider, row.sent_via_channel_id) == ("telesign", fallback["id"])
            assert row.from_number == "+15005550007"
        # The customer's reply through the fallback channel answers that message.
        status = await telesign.send_inbound(
            fallback["webhook_url"], "33612345678", "+15005550007", "Thanks"
        )
        assert status == 200
        with container.db.read() as session:
            reply = session.execute(sa.select(InboundMessage)).scalar_one()
            assert reply.in_reply_to == message_id
        history = tenant.get(f"/v1/messages/{message_id}").json()["history"]
        assert ("sent", "failover") in [(h["status"], h["source"]) for h in history]


async def test_twilio_whatsapp_sends_each_language_its_own_approved_template(
    live: tuple[Container, Tenant], twilio: FakeTwilio
) -> None:
    """Twilio's content templates have one language each: a localization's own Content SID,
    else the default's, and the record says which language (and text) was sent."""
    container, tenant = live
    channel = _twilio_channel(tenant, twilio, "whatsapp")
    english, french = "HX" + "a" * 32, "HX" + "b" * 32
    template = tenant.post(
        "/v1/templates",
        {
            "name": "per language",
            "channel_type": "whatsapp",
            "default_locale": "en-US",
            "default_text": "Hi {CustomerName}, case {CaseName}",
            "localizations": {
                "fr-FR": "Bonjour {CustomerName}, dossier {CaseName}",
                "de-DE": "Hallo {CustomerName}, Fall {CaseName}",
            },
            "content_sid": english,
            "content_sids": {"fr-FR": french},
        },
    )
    assert template.status_code == 201, template.text
    config = tenant.post(
        "/v1/outbound-configurations",
        {
            "name": "per language",
            "channel_type": "whatsapp",
            "channel_id": channel["id"],
            "template_id": template.json()["id"],
        },
    ).json()
    numbers = {"fr-FR": "+33612345671", "en-US": "+33612345672", "de-DE": "+33612345673"}
    numbers |= {"fr-BE": "+33612345674"}
    response = tenant.post(
        "/v1/outbound/send",
        {
            "configuration_id": config["id"],
            "contacts": [
                contact(number, locale=locale, sendastemplate=True)
                for locale, number in numbers.items()
            ],
        },
    )
    assert response.status_code == 202, response.text
    results = response.json()["results"]
    assert [r["locale"] for r in results] == ["fr-FR", "en-US", "en-US", "fr-FR"]
    assert await container.dispatcher().run_once() == 4
    sent = {
        form["To"][0].removeprefix("whatsapp:"): form["ContentSid"][0]
        for form in (request.form() for request in twilio.requests)
        if "ContentSid" in form
    }
    assert sent == {
        numbers["fr-FR"]: french,
        numbers["en-US"]: english,
        numbers["de-DE"]: english,  # no approved German template: the default's, in English
        numbers["fr-BE"]: french,
    }
    records = [tenant.get(f"/v1/messages/{r['message_id']}").json() for r in results]
    assert [(m["locale"], m["content_sid"], m["body"]) for m in records] == [
        ("fr-FR", french, "Bonjour Ana, dossier CAS-1"),
        ("en-US", english, "Hi Ana, case CAS-1"),
        ("en-US", english, "Hi Ana, case CAS-1"),
        ("fr-FR", french, "Bonjour Ana, dossier CAS-1"),
    ]


async def test_twilio_whatsapp_template_parameters_without_context_slugs(
    live: tuple[Container, Tenant], twilio: FakeTwilio
) -> None:
    """Dynamics' guidance for approved templates leaves the slugs out of contextitems: the
    parameters are sent, and the stored body puts them at their placeholders' positions."""
    container, tenant = live
    channel = _twilio_channel(tenant, twilio, "whatsapp")
    config_id = _configuration(tenant, channel)
    response = tenant.post(
        "/v1/outbound/send",
        {
            "configuration_id": config_id,
            "contacts": [
                contact(
                    CUSTOMER,
                    contextitems={"regardingobjectid": "CAS-1"},
                    sendastemplate=True,
                    templateparameters={"1": "Ana", "2": "CAS-9"},
                ),
                # A parameter left out keeps its placeholder as written in the stored body.
                contact(
                    "+33612345679",
                    contextitems={},
                    sendastemplate=True,
                    templateparameters={"2": "CAS-8"},
                ),
            ],
        },
    )
    assert response.status_code == 202, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["queued", "queued"]
    assert await container.dispatcher().run_once() == 2
    variables = sorted(r.form()["ContentVariables"][0] for r in twilio.requests)
    assert variables == ['{"1": "Ana", "2": "CAS-9"}', '{"2": "CAS-8"}']
    bodies = [tenant.get(f"/v1/messages/{r['message_id']}").json()["body"] for r in results]
    assert bodies == ["Hi Ana, case CAS-9", "Hi {CustomerName}, case CAS-8"]


def test_the_fake_twilio_command_line_posts_a_customer_message(
    live: tuple[Container, Tenant], capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m outbound.testing.fakes twilio-inbound``: a reply, by SMS or WhatsApp,
    without writing Python."""
    from outbound.testing.fakes.__main__ import main

    container, tenant = live
    base = str(container.settings.public_base_url)
    for kind, number in (("sms", "+33612345611"), ("whatsapp", "+33612345612")):
        channel = _channel(
            tenant,
            {
                "name": f"twilio {kind}",
                "type": kind,
                "provider": "twilio",
                "sender": "+15005550006",
                "base_url": "http://127.0.0.1:9",
                "credentials": {
                    "account_sid": DEFAULT_ACCOUNT_SID,
                    "auth_token": DEFAULT_AUTH_TOKEN,
                },
            },
        )
        url = f"{base}/webhooks/{channel['id']}"
        args = [url, "--from", number, "--to", "+15005550006", "--body", f"hello by {kind}"]
        if kind == "whatsapp":
            args.append("--whatsapp")
        assert main(["twilio-inbound", *args]) == 0
        assert capsys.readouterr().out.strip() == "200"
        if kind == "whatsapp":
            # The customer wrote: free-form text may be sent for 24 hours.
            config_id = _configuration(tenant, channel)
            response = tenant.post(
                "/v1/outbound/send",
                {"configuration_id": config_id, "contacts": [contact(number)]},
            )
            assert response.json()["results"][0]["status"] == "queued", response.text
    with container.db.read() as session:
        stored = session.execute(
            sa.select(InboundMessage.from_number, InboundMessage.body).order_by(
                InboundMessage.from_number
            )
        ).all()
    assert [tuple(row) for row in stored] == [
        ("+33612345611", "hello by sms"),
        ("+33612345612", "hello by whatsapp"),
    ]
    # A wrong token is refused by the service's signature check: exit status 1.
    assert (
        main(
            [
                "twilio-inbound",
                url,
                "--from",
                number,
                "--to",
                "+1500",
                "--body",
                "x",
                "--auth-token",
                "wrong",
            ]
        )
        == 1
    )
