"""Per-contact rules that depend on the channel: body limits, empty bodies, WhatsApp-only
options, and conversations opened on send."""

from __future__ import annotations

from typing import Any

from outbound.schemas import Role
from tests.helpers import Setup, Tenant, contact


def _send(tenant: Tenant, config_id: str, *contacts: dict[str, Any]) -> list[dict[str, Any]]:
    response = tenant.post(
        "/v1/outbound/send", {"configuration_id": config_id, "contacts": list(contacts)}
    )
    assert response.status_code == 202, response.text
    return list(response.json()["results"])


def test_empty_rendered_text_is_rejected(tenant: Tenant, setup: Setup) -> None:
    template = tenant.post(
        "/v1/templates",
        {"name": "bare", "channel_type": "sms", "default_locale": "en", "default_text": "{Text}"},
    ).json()
    tenant.patch(f"/v1/outbound-configurations/{setup.config_id}", {"template_id": template["id"]})
    results = _send(
        tenant,
        setup.config_id,
        contact(contextitems={"Text": "  "}),
        contact(contextitems={"Text": "hello"}),
    )
    assert [(r["status"], r["reason"]) for r in results] == [
        ("rejected", "empty_body"),
        ("queued", None),
    ]


def test_body_limit_follows_the_provider(tenant: Tenant, setup: Setup) -> None:
    # The sandbox carries up to 2000 characters; Twilio and TeleSign 1600, ACS 2048.
    fits = contact(contextitems={"CustomerName": "x" * 1900, "CaseName": "C"})
    too_long = contact(contextitems={"CustomerName": "x" * 2000, "CaseName": "C"})
    results = _send(tenant, setup.config_id, fits, too_long)
    assert results[0]["status"] == "queued"
    assert results[1]["reason"].startswith("body_too_long")
    assert "limit 2000" in results[1]["reason"]


def test_sendastemplate_is_refused_on_sms(tenant: Tenant, setup: Setup) -> None:
    (result,) = _send(tenant, setup.config_id, contact(sendastemplate=True))
    assert result["status"] == "rejected"
    assert result["reason"].startswith("sendastemplate_needs_whatsapp")


def test_whatsapp_messages_carry_no_sms_encoding(tenant: Tenant) -> None:
    channel = tenant.post(
        "/v1/channels",
        {"name": "WA", "type": "whatsapp", "provider": "sandbox", "sender": "+14155238886"},
    ).json()
    template = tenant.post(
        "/v1/templates",
        {
            "name": "wa",
            "channel_type": "whatsapp",
            "default_locale": "en",
            "default_text": "Hi {CustomerName} {CaseName}",
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
    (result,) = _send(tenant, config["id"], contact(sendastemplate=True))
    message = tenant.get(f"/v1/messages/{result['message_id']}").json()
    assert (message["encoding"], message["segments"]) == (None, None)


def test_on_send_configurations_open_a_conversation_per_recipient(
    tenant: Tenant, setup: Setup
) -> None:
    tenant.patch(f"/v1/outbound-configurations/{setup.config_id}", {"conversation_mode": "on_send"})
    _send(tenant, setup.config_id, contact("+33612345678"), contact("+33612345679"))
    _send(tenant, setup.config_id, contact("+33612345678"))
    conversations = tenant.get("/v1/conversations", role=Role.AGENT).json()["data"]
    assert sorted(c["customer_number"] for c in conversations) == ["+33612345678", "+33612345679"]
    first = next(c for c in conversations if c["customer_number"] == "+33612345678")
    detail = tenant.get(f"/v1/conversations/{first['id']}", role=Role.AGENT).json()
    assert [m["direction"] for m in detail["messages"]] == ["outbound", "outbound"]


def test_fallback_channel_must_be_another_provider_of_the_same_type(
    tenant: Tenant, setup: Setup
) -> None:
    same_provider = tenant.post(
        "/v1/channels",
        {"name": "SMS 2", "type": "sms", "provider": "sandbox", "sender": "+15005550007"},
    ).json()
    response = tenant.patch(
        f"/v1/outbound-configurations/{setup.config_id}",
        {"fallback_channel_id": same_provider["id"]},
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "fallback_channel_id"
    missing = tenant.patch(
        f"/v1/outbound-configurations/{setup.config_id}", {"fallback_channel_id": "nope"}
    )
    assert missing.status_code == 422
    twilio = tenant.post(
        "/v1/channels",
        {
            "name": "Twilio",
            "type": "sms",
            "provider": "twilio",
            "sender": "+15005550008",
            "credentials": {"account_sid": "AC" + "1" * 32, "auth_token": "t"},
        },
    ).json()
    ok = tenant.patch(
        f"/v1/outbound-configurations/{setup.config_id}", {"fallback_channel_id": twilio["id"]}
    )
    assert ok.status_code == 200
    assert ok.json()["fallback_channel_id"] == twilio["id"]
    in_use = tenant.delete(f"/v1/channels/{twilio['id']}")
    assert in_use.status_code == 409


def test_twilio_channels_accept_a_messaging_service_sender(tenant: Tenant) -> None:
    body = {
        "name": "MS",
        "type": "sms",
        "provider": "twilio",
        "sender": "MG" + "0123456789abcdef" * 2,
        "credentials": {"account_sid": "AC" + "1" * 32, "auth_token": "t"},
    }
    assert tenant.post("/v1/channels", body).status_code == 201
    sandbox = {**body, "provider": "sandbox", "credentials": {}}
    refused = tenant.post("/v1/channels", sandbox)
    assert (refused.status_code, refused.json()["error"]["field"]) == (422, "sender")


def test_changing_the_channel_cannot_make_it_its_own_fallback(tenant: Tenant, setup: Setup) -> None:
    twilio = tenant.post(
        "/v1/channels",
        {
            "name": "Twilio",
            "type": "sms",
            "provider": "twilio",
            "sender": "+15005550008",
            "credentials": {"account_sid": "AC" + "1" * 32, "auth_token": "t"},
        },
    ).json()
    path = f"/v1/outbound-configurations/{setup.config_id}"
    assert tenant.patch(path, {"fallback_channel_id": twilio["id"]}).status_code == 200
    refused = tenant.patch(path, {"channel_id": twilio["id"]})
    assert (refused.status_code, refused.json()["error"]["field"]) == (422, "fallback_channel_id")


def test_derived_template_variables_match_the_rendered_text(tenant: Tenant) -> None:
    channel = tenant.post(
        "/v1/channels",
        {"name": "WA", "type": "whatsapp", "provider": "sandbox", "sender": "+14155238886"},
    ).json()
    template = tenant.post(
        "/v1/templates",
        {
            "name": "wa",
            "channel_type": "whatsapp",
            "default_locale": "en",
            "default_text": "Hi {CustomerName}, urgent: {Urgent}, items: {Count}",
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
    item = contact(
        sendastemplate=True, contextitems={"customername": "Ana", "Urgent": True, "Count": 3.0}
    )
    (result,) = _send(tenant, config["id"], item)
    assert result["status"] == "queued", result
    message = tenant.get(f"/v1/messages/{result['message_id']}").json()
    assert message["body"] == "Hi Ana, urgent: true, items: 3"
    assert message["template_parameters"] == {"1": "Ana", "2": "true", "3": "3"}
