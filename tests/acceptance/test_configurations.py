"""Outbound configurations: which channel and template a send uses."""

from __future__ import annotations

from typing import Any

from tests.helpers import Setup, Tenant, assert_error, contact

MISSING_ID = "00000000-0000-0000-0000-000000000000"


def _whatsapp(tenant: Tenant) -> tuple[str, str]:
    """A WhatsApp channel and template; returns their ids."""
    channel = tenant.post(
        "/v1/channels",
        {"name": "WA", "type": "whatsapp", "provider": "sandbox", "sender": "+33612340000"},
    )
    assert channel.status_code == 201, channel.text
    template = tenant.post(
        "/v1/templates",
        {
            "name": "WA template",
            "channel_type": "whatsapp",
            "default_locale": "en-US",
            "default_text": "Hi {CustomerName}",
        },
    )
    assert template.status_code == 201, template.text
    return channel.json()["id"], template.json()["id"]


def config_body(setup: Setup, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Reminders",
        "channel_type": "sms",
        "channel_id": setup.channel["id"],
        "template_id": setup.template["id"],
    }
    body.update(overrides)
    return body


def test_create_configuration(tenant: Tenant, setup: Setup) -> None:
    response = tenant.post("/v1/outbound-configurations", config_body(setup))
    assert response.status_code == 201, response.text
    created = response.json()
    assert len(created["id"]) == 36 and created["id"] != setup.config_id
    assert created["show_in_timeline"] is False
    assert created["active"] is True
    assert created["conversation_mode"] == "on_response"
    assert created["default_locale"] is None
    assert created["channel_type"] == "sms"
    assert created["channel_id"] == setup.channel["id"]
    assert created["template_id"] == setup.template["id"]
    assert tenant.get(f"/v1/outbound-configurations/{created['id']}").json() == created
    listed = tenant.get("/v1/outbound-configurations").json()
    assert {c["id"] for c in listed["data"]} == {created["id"], setup.config_id}
    assert listed["next_cursor"] is None

    body = config_body(setup, id="my-own-id")
    assert_error(tenant.post("/v1/outbound-configurations", body), 422, "invalid_request", "id")
    ids = {
        tenant.post("/v1/outbound-configurations", config_body(setup, name=f"c{i}")).json()["id"]
        for i in range(3)
    }
    assert len(ids) == 3

    body = config_body(
        setup,
        show_in_timeline=True,
        default_locale="fr_fr",
        conversation_mode="on_send",
        active=False,
    )
    created = tenant.post("/v1/outbound-configurations", body).json()
    assert created["show_in_timeline"] is True
    assert created["default_locale"] == "fr-FR"
    assert created["conversation_mode"] == "on_send"
    assert created["active"] is False


def test_invalid_configuration_is_422_naming_the_field(tenant: Tenant, setup: Setup) -> None:
    cases = [
        (config_body(setup, name=""), "name"),
        (config_body(setup, channel_type="fax"), "channel_type"),
        (config_body(setup, show_in_timeline="yes"), "show_in_timeline"),
        (config_body(setup, show_in_timeline=1), "show_in_timeline"),
        (config_body(setup, active="false"), "active"),
        (config_body(setup, default_locale="xx-YY"), "default_locale"),
        (config_body(setup, conversation_mode="always"), "conversation_mode"),
        ({k: v for k, v in config_body(setup).items() if k != "template_id"}, "template_id"),
    ]
    for body, field in cases:
        assert_error(
            tenant.post("/v1/outbound-configurations", body), 422, "invalid_request", field
        )
    assert len(tenant.get("/v1/outbound-configurations").json()["data"]) == 1

    error = assert_error(
        tenant.post("/v1/outbound-configurations", config_body(setup, channel_id=MISSING_ID)),
        422,
        "invalid_request",
        "channel_id",
    )
    assert MISSING_ID in error["message"]
    error = assert_error(
        tenant.post("/v1/outbound-configurations", config_body(setup, template_id=MISSING_ID)),
        422,
        "invalid_request",
        "template_id",
    )
    assert MISSING_ID in error["message"]
    assert len(tenant.get("/v1/outbound-configurations").json()["data"]) == 1


def test_channel_type_mismatch_is_422(tenant: Tenant, setup: Setup) -> None:
    wa_channel, wa_template = _whatsapp(tenant)
    cases = [
        # sms configuration with a WhatsApp channel
        (config_body(setup, channel_id=wa_channel), "channel_id"),
        # sms configuration with a WhatsApp template
        (config_body(setup, template_id=wa_template), "template_id"),
        # WhatsApp configuration with sms channel and template
        (config_body(setup, channel_type="whatsapp", template_id=wa_template), "channel_id"),
        (config_body(setup, channel_type="whatsapp", channel_id=wa_channel), "template_id"),
    ]
    for body, field in cases:
        error = assert_error(
            tenant.post("/v1/outbound-configurations", body), 422, "channel_type_mismatch", field
        )
        assert "whatsapp" in error["message"] and "sms" in error["message"]
    ok = tenant.post(
        "/v1/outbound-configurations",
        config_body(
            setup,
            name="WA",
            channel_type="whatsapp",
            channel_id=wa_channel,
            template_id=wa_template,
        ),
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["channel_type"] == "whatsapp"


def test_patch_configuration(tenant: Tenant, setup: Setup, clock: Any) -> None:
    wa_channel, wa_template = _whatsapp(tenant)
    path = f"/v1/outbound-configurations/{setup.config_id}"
    before = tenant.get(path).json()
    assert_error(
        tenant.patch(path, {"name": "Changed", "channel_id": wa_channel}),
        422,
        "channel_type_mismatch",
        "channel_id",
    )
    assert_error(
        tenant.patch(path, {"name": "Changed", "template_id": wa_template}),
        422,
        "channel_type_mismatch",
        "template_id",
    )
    assert_error(
        tenant.patch(path, {"name": "Changed", "template_id": MISSING_ID}),
        422,
        "invalid_request",
        "template_id",
    )
    assert_error(
        tenant.patch(path, {"name": "Changed", "channel_id": MISSING_ID}),
        422,
        "invalid_request",
        "channel_id",
    )
    assert_error(
        tenant.patch(path, {"name": "Changed", "default_locale": "nope-nope"}),
        422,
        "invalid_request",
        "default_locale",
    )
    assert_error(
        tenant.patch(path, {"channel_type": "whatsapp"}), 422, "invalid_request", "channel_type"
    )
    assert tenant.get(path).json() == before
    assert_error(
        tenant.patch(f"/v1/outbound-configurations/{MISSING_ID}", {"name": "x"}),
        404,
        "not_found",
    )

    other_template = tenant.post(
        "/v1/templates",
        {
            "name": "Other",
            "channel_type": "sms",
            "default_locale": "de-DE",
            "default_text": "Hallo {CustomerName}",
        },
    ).json()
    clock.advance(3)
    response = tenant.patch(
        f"/v1/outbound-configurations/{setup.config_id}",
        {
            "name": "Renamed",
            "show_in_timeline": False,
            "default_locale": "1036",
            "template_id": other_template["id"],
            "conversation_mode": "on_send",
        },
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["id"] == setup.config_id
    assert patched["name"] == "Renamed"
    assert patched["show_in_timeline"] is False
    assert patched["default_locale"] == "fr-FR"
    assert patched["template_id"] == other_template["id"]
    assert patched["channel_id"] == setup.channel["id"]
    assert patched["conversation_mode"] == "on_send"
    assert patched["created_at"] == setup.configuration["created_at"]
    assert patched["updated_at"] > setup.configuration["updated_at"]
    assert tenant.get(f"/v1/outbound-configurations/{setup.config_id}").json() == patched

    cleared = tenant.patch(
        f"/v1/outbound-configurations/{setup.config_id}", {"default_locale": None}
    )
    assert cleared.json()["default_locale"] is None
    assert cleared.json()["name"] == "Renamed"  # untouched


def test_inactive_or_deleted_configuration_refuses_sends(tenant: Tenant, setup: Setup) -> None:
    path = f"/v1/outbound-configurations/{setup.config_id}"
    assert tenant.patch(path, {"active": False}).json()["active"] is False
    body = {"configuration_id": setup.config_id, "contacts": [contact()]}
    error = assert_error(
        tenant.post("/v1/outbound/send", body), 409, "configuration_inactive", "configuration_id"
    )
    assert "not active" in error["message"]
    # Not even an idempotent request is recorded.
    assert_error(
        tenant.post("/v1/outbound/send", body, headers={"Idempotency-Key": "k1"}),
        409,
        "configuration_inactive",
        "configuration_id",
    )
    assert tenant.get("/v1/messages").json()["data"] == []

    assert tenant.patch(path, {"active": True}).json()["active"] is True
    sent = tenant.post("/v1/outbound/send", body, headers={"Idempotency-Key": "k1"})
    assert sent.status_code == 202, sent.text
    assert sent.json()["queued"] == 1

    path = f"/v1/outbound-configurations/{setup.config_id}"
    response = tenant.delete(path)
    assert response.status_code == 204
    assert_error(tenant.get(path), 404, "not_found")
    assert_error(tenant.delete(path), 404, "not_found")
    assert tenant.get("/v1/outbound-configurations").json()["data"] == []
    sent = tenant.post(
        "/v1/outbound/send", {"configuration_id": setup.config_id, "contacts": [contact()]}
    )
    assert_error(sent, 404, "not_found", "configuration_id")
