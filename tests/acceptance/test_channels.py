"""Channels: provisioned senders with write-only credentials, encrypted at rest."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from outbound.app import Container
from outbound.services.channels import ChannelService
from tests.helpers import Setup, Tenant, assert_error

SECRET = "TOPSECRET-9f8e7d6c"
OTHER_SECRET = "ROTATED-1a2b3c4d"


def channel_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Main SMS",
        "type": "sms",
        "provider": "sandbox",
        "sender": "+15005550006",
    }
    body.update(overrides)
    return body


def _raw_columns(container: Container, channel_id: str) -> str:
    with container.db.read() as session:
        row = session.execute(
            sa.text("SELECT * FROM channels WHERE id = :id"), {"id": channel_id}
        ).one()
    return " ".join(str(value) for value in row)


def test_create_get_list_channel(tenant: Tenant, clock: Any) -> None:
    response = tenant.post("/v1/channels", channel_body(sender="+1 (500) 555-0006"))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == "Main SMS"
    assert created["type"] == "sms"
    assert created["provider"] == "sandbox"
    assert created["sender"] == "+15005550006"
    assert created["has_credentials"] is False
    assert created["credential_fields"] == []
    assert created["options"] == {}
    assert created["healthy"] is True
    assert created["base_url"] is None
    assert len(created["id"]) == 36

    assert tenant.get(f"/v1/channels/{created['id']}").json() == created

    clock.advance(1)
    second = tenant.post(
        "/v1/channels", channel_body(name="WhatsApp", type="whatsapp", sender="+33612345678")
    )
    assert second.status_code == 201, second.text
    listed = tenant.get("/v1/channels").json()
    assert listed["next_cursor"] is None
    assert [c["id"] for c in listed["data"]] == [second.json()["id"], created["id"]]

    page = tenant.get("/v1/channels", params={"limit": 1}).json()
    assert [c["id"] for c in page["data"]] == [second.json()["id"]]
    rest = tenant.get("/v1/channels", params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert [c["id"] for c in rest["data"]] == [created["id"]]
    assert rest["next_cursor"] is None

    for sender in ("ACME", "Acme 24", "ABCDEFGHIJK"):
        response = tenant.post("/v1/channels", channel_body(name=sender, sender=sender))
        assert response.status_code == 201, response.text
        assert response.json()["sender"] == sender
    response = tenant.post("/v1/channels", channel_body(type="whatsapp", sender="ACME"))
    error = assert_error(response, 422, "invalid_request", "sender")
    assert "E.164" in error["message"]
    whatsapp = tenant.post("/v1/channels", channel_body(type="whatsapp", sender="+33612345678"))
    assert whatsapp.status_code == 201, whatsapp.text
    # Changing a WhatsApp sender to an alphanumeric ID is refused too.
    patched = tenant.patch(f"/v1/channels/{whatsapp.json()['id']}", {"sender": "ACME"})
    assert_error(patched, 422, "invalid_request", "sender")


def test_credentials_are_write_only_and_encrypted(tenant: Tenant, container: Container) -> None:
    credentials = {"api_key": SECRET, "account": "acme-user"}
    response = tenant.post("/v1/channels", channel_body(credentials=credentials))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["has_credentials"] is True
    assert created["credential_fields"] == ["account", "api_key"]
    assert "credentials" not in created
    channel_id = created["id"]

    for text in (
        response.text,
        tenant.get(f"/v1/channels/{channel_id}").text,
        tenant.get("/v1/channels").text,
    ):
        assert SECRET not in text
        assert "acme-user" not in text
        assert "credentials_encrypted" not in text

    # At rest: encrypted, yet the service can still read them.
    raw = _raw_columns(container, channel_id)
    assert SECRET not in raw and "acme-user" not in raw
    with container.db.read() as session:
        token = session.execute(
            sa.text("SELECT credentials_encrypted FROM channels WHERE id = :id"), {"id": channel_id}
        ).scalar_one()
    assert container.secrets.decrypt(token) == credentials

    # Rotating them: the response again shows only which fields are set.
    patched = tenant.patch(f"/v1/channels/{channel_id}", {"credentials": {"token": OTHER_SECRET}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["credential_fields"] == ["token"]
    assert patched.json()["has_credentials"] is True
    assert OTHER_SECRET not in patched.text
    raw = _raw_columns(container, channel_id)
    assert OTHER_SECRET not in raw and SECRET not in raw

    # Patching something else keeps them.
    renamed = tenant.patch(f"/v1/channels/{channel_id}", {"name": "Renamed"}).json()
    assert renamed["credential_fields"] == ["token"]
    assert renamed["has_credentials"] is True

    cleared = tenant.patch(f"/v1/channels/{channel_id}", {"credentials": {}}).json()
    assert cleared["has_credentials"] is False
    assert cleared["credential_fields"] == []


def test_patch_channel(tenant: Tenant, clock: Any) -> None:
    created = tenant.post("/v1/channels", channel_body(options={"region": "eu"})).json()
    clock.advance(5)
    response = tenant.patch(
        f"/v1/channels/{created['id']}",
        {"name": "Renamed", "sender": "+1 500 555 0007", "options": {"region": "us"}},
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["name"] == "Renamed"
    assert patched["sender"] == "+15005550007"
    assert patched["options"] == {"region": "us"}
    assert patched["type"] == "sms" and patched["provider"] == "sandbox"
    assert patched["created_at"] == created["created_at"]
    assert patched["updated_at"] > created["updated_at"]
    assert tenant.get(f"/v1/channels/{created['id']}").json() == patched

    # Refused changes leave the channel as it was.
    channel_id = created["id"]
    assert_error(
        tenant.patch(f"/v1/channels/{channel_id}", {"sender": "not a number!"}),
        422,
        "invalid_request",
        "sender",
    )
    assert_error(
        tenant.patch(f"/v1/channels/{channel_id}", {"type": "whatsapp"}),
        422,
        "invalid_request",
        "type",
    )
    assert_error(
        tenant.patch(f"/v1/channels/{channel_id}", {"name": ""}), 422, "invalid_request", "name"
    )
    assert_error(
        tenant.patch(f"/v1/channels/{channel_id}", {"base_url": "ftp://x"}),
        422,
        "invalid_request",
        "base_url",
    )
    assert tenant.get(f"/v1/channels/{channel_id}").json() == patched
    assert_error(
        tenant.patch("/v1/channels/00000000-0000-0000-0000-000000000000", {"name": "x"}),
        404,
        "not_found",
    )


def test_delete_channel_unless_in_use(tenant: Tenant, setup: Setup) -> None:
    created = tenant.post("/v1/channels", channel_body()).json()
    response = tenant.delete(f"/v1/channels/{created['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert_error(tenant.get(f"/v1/channels/{created['id']}"), 404, "not_found")
    assert_error(tenant.delete(f"/v1/channels/{created['id']}"), 404, "not_found")
    assert [c["id"] for c in tenant.get("/v1/channels").json()["data"]] == [setup.channel["id"]]

    channel_id = setup.channel["id"]
    error = assert_error(tenant.delete(f"/v1/channels/{channel_id}"), 409, "channel_in_use")
    assert "Case updates" in error["message"]
    assert setup.config_id in error["message"]
    assert tenant.get(f"/v1/channels/{channel_id}").status_code == 200

    assert tenant.delete(f"/v1/outbound-configurations/{setup.config_id}").status_code == 204
    assert tenant.delete(f"/v1/channels/{channel_id}").status_code == 204
    assert tenant.get("/v1/channels").json()["data"] == []


def test_invalid_channels_are_422_naming_the_field(tenant: Tenant, container: Container) -> None:
    """Every provider is installed here; each has its own requirements."""
    for provider in ("telesign", "acs"):
        body = channel_body(
            type="whatsapp",
            provider=provider,
            credentials={"customer_id": "c", "api_key": SECRET, "access_key": SECRET},
            base_url="https://x.example",
        )
        error = assert_error(tenant.post("/v1/channels", body), 422, "invalid_request", "provider")
        assert "WhatsApp" in error["message"]
    missing = channel_body(provider="twilio", credentials={"account_sid": "AC1"})
    error = assert_error(
        tenant.post("/v1/channels", missing), 422, "invalid_request", "credentials.auth_token"
    )
    assert SECRET not in error["message"]
    no_url = channel_body(provider="acs", credentials={"access_key": SECRET})
    assert_error(tenant.post("/v1/channels", no_url), 422, "invalid_request", "base_url")
    assert tenant.get("/v1/channels").json()["data"] == []

    twilio = tenant.post(
        "/v1/channels",
        channel_body(provider="twilio", credentials={"account_sid": "AC1", "auth_token": SECRET}),
    )
    assert twilio.status_code == 201, twilio.text
    assert twilio.json()["credential_fields"] == ["account_sid", "auth_token"]
    assert SECRET not in twilio.text
    # Credentials a provider needs cannot be dropped.
    dropped = tenant.patch(f"/v1/channels/{twilio.json()['id']}", {"credentials": {}})
    assert_error(dropped, 422, "invalid_request", "credentials.account_sid")
    assert tenant.get(f"/v1/channels/{twilio.json()['id']}").json()["has_credentials"] is True

    # A deployment where only the sandbox adapter is installed.
    existing = tenant.get("/v1/channels").json()["data"]
    assert len(existing) == 1
    container.channels = ChannelService(
        container.db, container.secrets, container.clock, ["sandbox"]
    )
    credentials = {
        "account_sid": "AC1",
        "auth_token": SECRET,
        "customer_id": "c",
        "api_key": SECRET,
        "access_key": SECRET,
    }
    for provider in ("twilio", "telesign", "acs"):
        body = channel_body(
            provider=provider, credentials=credentials, base_url="https://x.example"
        )
        error = assert_error(tenant.post("/v1/channels", body), 422, "invalid_request", "provider")
        assert provider in error["message"]
        assert "sandbox" in error["message"]  # what is available
        assert SECRET not in error["message"]
    assert_error(
        tenant.post("/v1/channels", channel_body(provider="nexmo")),
        422,
        "invalid_request",
        "provider",
    )
    assert_error(
        tenant.post("/v1/channels", channel_body(type="fax")), 422, "invalid_request", "type"
    )
    assert tenant.get("/v1/channels").json()["data"] == existing

    bad = [
        ("sms", "+1234"),
        ("sms", "+33 abc"),
        ("sms", "hello world!"),
        ("sms", "ABCDEFGHIJKL"),  # 12 characters: too long for a sender ID
        ("sms", "Acmé"),
        ("sms", "12"),
        ("sms", "   "),
        ("whatsapp", "ACME"),
        ("whatsapp", "+1234"),
    ]
    for channel_type, sender in bad:
        response = tenant.post("/v1/channels", channel_body(type=channel_type, sender=sender))
        assert_error(response, 422, "invalid_request", "sender")
    assert tenant.get("/v1/channels").json()["data"] == existing

    cases = [
        (channel_body(name=""), "name"),
        (channel_body(name="x" * 201), "name"),
        (channel_body(credential={"a": "b"}), "credential"),
        (channel_body(credentials={"api_key": 123}), "credentials.api_key"),
        (channel_body(base_url="not-a-url"), "base_url"),
        ({"name": "x", "type": "sms", "provider": "sandbox"}, "sender"),
    ]
    for body, field in cases:
        assert_error(tenant.post("/v1/channels", body), 422, "invalid_request", field)
    assert tenant.get("/v1/channels").json()["data"] == existing
