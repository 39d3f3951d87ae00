"""Webhooks, replies, conversations, consent keywords and the WhatsApp window (sandbox)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from outbound.adapters.db.models import Channel, ConsentEvent, InboundMessage, Message
from outbound.app import Container, create_app
from outbound.errors import CredentialsError, RecipientOptedOutError
from outbound.schemas import Role
from outbound.testing import FakeClock, ScriptedProvider
from tests.helpers import Setup, Tenant, contact, make_setup, make_tenant

CUSTOMER = "+33612345678"


def _webhook(
    tenant: Tenant, setup: Setup, payload: dict[str, Any], token: str | None = None
) -> Any:
    url = setup.channel["webhook_url"]
    if token is not None:
        url = url.split("?")[0] + f"?token={token}"
    return tenant.client.post(url, json=payload)


def _send(tenant: Tenant, setup: Setup, **overrides: Any) -> dict[str, Any]:
    response = tenant.post(
        "/v1/outbound/send",
        {"configuration_id": setup.config_id, "contacts": [contact(CUSTOMER, **overrides)]},
    )
    assert response.status_code == 202, response.text
    return dict(response.json()["results"][0])


async def _dispatch(container: Container) -> None:
    await container.dispatcher().run_once()
    await container.providers["sandbox"].drain()  # type: ignore[attr-defined]


async def test_reply_opens_then_continues_a_conversation(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    sent = _send(tenant, setup)
    await _dispatch(container)
    clock.advance(60)
    first = _webhook(tenant, setup, {"id": "in-1", "from": "06 12 34 56 78", "body": "Merci !"})
    assert first.status_code == 200, first.text
    clock.advance(60)
    _webhook(tenant, setup, {"id": "in-2", "from": CUSTOMER, "body": "When will it arrive?"})
    conversations = tenant.get("/v1/conversations", role=Role.AGENT).json()["data"]
    assert len(conversations) == 1
    conversation = tenant.get(f"/v1/conversations/{conversations[0]['id']}", role=Role.AGENT)
    assert conversation.status_code == 200
    body = conversation.json()
    assert body["customer_number"] == CUSTOMER
    assert body["configuration_id"] == setup.config_id
    assert [(m["direction"], m["body"]) for m in body["messages"]] == [
        ("outbound", "Hi Ana, case CAS-1 was updated."),
        ("inbound", "Merci !"),
        ("inbound", "When will it arrive?"),
    ]
    with container.db.read() as session:
        replies = session.execute(sa.select(InboundMessage.in_reply_to)).scalars().all()
    assert replies == [sent["message_id"], sent["message_id"]]


def test_a_reply_with_nul_or_half_surrogates_is_kept_readable(tenant: Tenant, setup: Setup) -> None:
    """A provider's callback cannot be refused without losing the customer's message: what no
    database can store is dropped (NUL) or replaced (U+FFFD), and every listing still answers."""
    raw = b'{"id": "in-\\u0000x", "from": "+33612345678", "body": "a\\u0000b\\ud800c\\udfff"}'
    response = tenant.client.post(
        setup.channel["webhook_url"], content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    for path in ("/v1/conversations", "/v1/messages"):
        assert tenant.get(path, role=Role.ADMIN).status_code == 200, path
    (conversation,) = tenant.get("/v1/conversations", role=Role.AGENT).json()["data"]
    shown = tenant.get(f"/v1/conversations/{conversation['id']}", role=Role.AGENT).json()
    assert [m["body"] for m in shown["messages"]] == ["ab\ufffdc\ufffd"]


async def test_duplicate_inbound_is_stored_once(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    for _ in range(3):
        assert (
            _webhook(tenant, setup, {"id": "in-1", "from": CUSTOMER, "body": "hi"}).status_code
            == 200
        )
    with container.db.read() as session:
        assert session.execute(sa.select(sa.func.count(InboundMessage.id))).scalar_one() == 1


def test_bad_or_missing_token_is_refused_and_nothing_is_stored(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    payload = {"id": "in-1", "from": CUSTOMER, "body": "hi"}
    assert _webhook(tenant, setup, payload, token="wrong").status_code == 403
    no_token = tenant.client.post(f"/webhooks/{setup.channel['id']}", json=payload)
    assert no_token.status_code == 403
    assert no_token.json()["error"]["code"] == "invalid_signature"
    assert tenant.client.post("/webhooks/nope?token=x", json=payload).status_code == 404
    with container.db.read() as session:
        assert session.execute(sa.select(sa.func.count(InboundMessage.id))).scalar_one() == 0


async def test_stop_withdraws_consent_and_start_restores_it(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    _webhook(tenant, setup, {"id": "in-1", "from": CUSTOMER, "body": "STOP"})
    skipped = _send(tenant, setup)
    assert (skipped["status"], skipped["reason"]) == ("skipped", "consent_withdrawn")
    assert tenant.get("/v1/conversations", role=Role.AGENT).json()["data"] == []
    _webhook(tenant, setup, {"id": "in-2", "from": CUSTOMER, "body": "start"})
    assert _send(tenant, setup)["status"] == "queued"
    with container.db.read() as session:
        events = session.execute(
            sa.select(ConsentEvent.action, ConsentEvent.source).order_by(ConsentEvent.id)
        ).all()
    assert [tuple(e) for e in events] == [("opt_out", "keyword"), ("opt_in", "keyword")]


async def test_consent_is_per_channel(tenant: Tenant, setup: Setup) -> None:
    _webhook(tenant, setup, {"id": "in-1", "from": CUSTOMER, "body": "ARRET"})
    other = tenant.post(
        "/v1/channels",
        {"name": "SMS 2", "type": "sms", "provider": "sandbox", "sender": "+15005550007"},
    ).json()
    config = tenant.post(
        "/v1/outbound-configurations",
        {
            "name": "other",
            "channel_type": "sms",
            "channel_id": other["id"],
            "template_id": setup.template["id"],
        },
    ).json()
    response = tenant.post(
        "/v1/outbound/send", {"configuration_id": config["id"], "contacts": [contact(CUSTOMER)]}
    )
    assert response.json()["results"][0]["status"] == "queued"


async def test_help_gets_the_channel_help_text(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    tenant.patch(f"/v1/channels/{setup.channel['id']}", {"options": {"help_text": "Call 3630."}})
    _webhook(tenant, setup, {"id": "in-1", "from": CUSTOMER, "body": "help"})
    await _dispatch(container)
    with container.db.read() as session:
        reply = session.execute(
            sa.select(Message).where(Message.reason == "help_reply")
        ).scalar_one()
    assert (reply.to_number, reply.body, reply.status) == (CUSTOMER, "Call 3630.", "delivered")
    listed = tenant.get("/v1/messages")
    assert listed.status_code == 200
    shown = tenant.get(f"/v1/messages/{reply.id}").json()
    assert (shown["request_id"], shown["configuration_id"], shown["body"]) == (
        None,
        None,
        "Call 3630.",
    )


async def test_status_webhook_is_idempotent_and_never_moves_backwards(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    tenant.patch(f"/v1/channels/{setup.channel['id']}", {"options": {"delivery_delay": 3600}})
    sent = _send(tenant, setup)
    await container.dispatcher().run_once()
    pid = tenant.get(f"/v1/messages/{sent['message_id']}").json()["provider_message_id"]
    for status in ("delivered", "delivered", "sent"):
        assert (
            _webhook(tenant, setup, {"provider_message_id": pid, "status": status}).status_code
            == 200
        )
    detail = tenant.get(f"/v1/messages/{sent['message_id']}").json()
    assert detail["status"] == "delivered"
    assert [h["status"] for h in detail["history"]] == ["queued", "sending", "sent", "delivered"]
    await container.providers["sandbox"].aclose()  # type: ignore[attr-defined]


@pytest.fixture
def whatsapp(tenant: Tenant) -> Setup:
    channel = tenant.post(
        "/v1/channels",
        {"name": "WA", "type": "whatsapp", "provider": "sandbox", "sender": "+14155238886"},
    ).json()
    template = tenant.post(
        "/v1/templates",
        {
            "name": "wa",
            "channel_type": "whatsapp",
            "default_locale": "en-US",
            "default_text": "Hi {CustomerName}, case {CaseName}",
        },
    ).json()
    config = tenant.post(
        "/v1/outbound-configurations",
        {
            "name": "wa",
            "channel_type": "whatsapp",
            "channel_id": channel["id"],
            "template_id": template["id"],
        },
    ).json()
    return Setup(channel, template, config)


def test_whatsapp_free_form_outside_the_window_is_refused_up_front(
    tenant: Tenant, whatsapp: Setup, clock: FakeClock
) -> None:
    refused = _send(tenant, whatsapp)
    assert refused["status"] == "rejected"
    assert refused["reason"].startswith("outside_whatsapp_window")
    as_template = _send(tenant, whatsapp, sendastemplate=True)
    assert as_template["status"] == "queued"
    detail = tenant.get(f"/v1/messages/{as_template['message_id']}").json()
    assert detail["status"] == "queued"
    _webhook(tenant, whatsapp, {"id": "wa-1", "from": f"whatsapp:{CUSTOMER}", "body": "hello"})
    assert _send(tenant, whatsapp)["status"] == "queued"
    clock.advance(24 * 3600 + 1)
    assert _send(tenant, whatsapp)["status"] == "rejected"


# --- provider errors that change the channel or the recipient -------------------------------


@pytest.fixture
def stenant(scripted_container: Container) -> Iterator[Tenant]:
    with TestClient(create_app(scripted_container, run_worker=False)) as client:
        yield make_tenant(scripted_container, client)


async def test_unsubscribed_recipient_error_withdraws_consent(
    stenant: Tenant, scripted_container: Container, provider: ScriptedProvider
) -> None:
    setup = make_setup(stenant)
    provider.fail_next(CUSTOMER, RecipientOptedOutError("unsubscribed", code="21610"))
    first = _send(stenant, setup)
    await scripted_container.dispatcher().run_once()
    detail = stenant.get(f"/v1/messages/{first['message_id']}").json()
    assert (detail["status"], detail["error_code"]) == ("failed", "21610")
    assert _send(stenant, setup)["reason"] == "consent_withdrawn"
    with scripted_container.db.read() as session:
        source = session.execute(sa.select(ConsentEvent.source)).scalar_one()
    assert source == "provider_error"


async def test_bad_credentials_stop_the_channel_instead_of_failing_its_queue(
    stenant: Tenant, scripted_container: Container, provider: ScriptedProvider
) -> None:
    setup = make_setup(stenant)
    provider.fail_next(CUSTOMER, CredentialsError("Authenticate", code="20003"))
    ids = [
        r["message_id"]
        for r in stenant.post(
            "/v1/outbound/send",
            {
                "configuration_id": setup.config_id,
                "contacts": [contact(CUSTOMER), contact("+33612345679"), contact("+33612345670")],
            },
        ).json()["results"]
    ]
    dispatcher = scripted_container.dispatcher()
    await dispatcher.run_once(limit=1)
    channel = stenant.get(f"/v1/channels/{setup.channel['id']}").json()
    assert channel["healthy"] is False
    assert "20003" in channel["health_detail"]
    first = stenant.get(f"/v1/messages/{ids[0]}").json()
    assert (first["status"], first["attempts"]) == ("queued", 0)
    assert await dispatcher.run_once() == 0  # the whole channel waits
    assert len(provider.sent) == 1
    stenant.patch(f"/v1/channels/{setup.channel['id']}", {"credentials": {}})
    assert await dispatcher.run_once() == 3
    assert {stenant.get(f"/v1/messages/{i}").json()["status"] for i in ids} == {"sent"}
    with scripted_container.db.read() as session:
        assert session.execute(sa.select(Channel.healthy)).scalar_one() is True


def test_only_admins_see_the_webhook_token(tenant: Tenant, setup: Setup) -> None:
    admin_view = tenant.get(f"/v1/channels/{setup.channel['id']}").json()["webhook_url"]
    assert "?token=" in admin_view
    for path in (f"/v1/channels/{setup.channel['id']}", "/v1/channels"):
        body = tenant.get(path, role=Role.SENDER).text
        assert admin_view.split("token=")[1] not in body


async def test_a_report_that_outruns_the_send_record_is_applied_once_recorded(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    import uuid

    from outbound.adapters.providers import sandbox

    tenant.patch(f"/v1/channels/{setup.channel['id']}", {"options": {"delivery_delay": 3600}})
    sent = _send(tenant, setup)
    pid = "SBX" + uuid.uuid5(sandbox._NAMESPACE, sent["message_id"]).hex
    early = _webhook(tenant, setup, {"provider_message_id": pid, "status": "delivered"})
    assert early.status_code == 200
    assert _status_of(tenant, sent["message_id"]) == "queued"
    await container.dispatcher().run_once()
    detail = tenant.get(f"/v1/messages/{sent['message_id']}").json()
    assert detail["status"] == "delivered"
    assert [h["status"] for h in detail["history"]] == ["queued", "sending", "sent", "delivered"]
    await container.providers["sandbox"].aclose()  # type: ignore[attr-defined]


def _status_of(tenant: Tenant, message_id: str) -> str:
    return str(tenant.get(f"/v1/messages/{message_id}").json()["status"])
