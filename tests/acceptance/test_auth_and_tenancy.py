"""API keys, roles and the isolation of organisations from each other."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from outbound.adapters.db.models import ApiKey
from outbound.app import Container
from outbound.schemas import Role
from outbound.services.auth import hash_key
from outbound.web.throttle import FailureThrottle
from tests.helpers import Setup, Tenant, assert_error, contact, make_setup

MISSING_ID = "00000000-0000-0000-0000-000000000000"


def _send(tenant: Tenant, setup: Setup, role: Role = Role.ADMIN) -> Any:
    return tenant.post(
        "/v1/outbound/send", {"configuration_id": setup.config_id, "contacts": [contact()]}, role
    )


# --- authentication -------------------------------------------------------------------------


def test_missing_authorization_is_401_everywhere(tenant: Tenant, setup: Setup) -> None:
    requests = [
        ("GET", "/v1/organization", None),
        ("GET", "/v1/channels", None),
        ("POST", "/v1/channels", {"name": "x", "type": "sms", "provider": "sandbox"}),
        ("GET", f"/v1/templates/{setup.template['id']}", None),
        ("GET", "/v1/outbound-configurations", None),
        ("POST", "/v1/outbound/send", {"configuration_id": setup.config_id, "contacts": []}),
        ("GET", "/v1/messages", None),
        ("GET", "/v1/timeline/CASE-1", None),
        ("POST", "/v1/api-keys", {"role": "admin"}),
    ]
    for method, path, body in requests:
        response = tenant.client.request(method, path, json=body)
        error = assert_error(response, 401, "unauthenticated")
        assert "Bearer" in error["message"]

    response = tenant.client.post("/v1/outbound/send", json={"contacts": "nope"})
    assert_error(response, 401, "unauthenticated")
    response = tenant.post("/v1/templates", {"name": 3}, Role.AGENT)
    assert_error(response, 403, "forbidden")


def test_malformed_unknown_or_revoked_key_is_401(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    admin_key = tenant.keys[Role.ADMIN]
    for value in (
        "",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        admin_key,  # no scheme
        f"Basic {admin_key}",
        f"Token {admin_key}",
        "Bearer ob_unknown-key",
        f"Bearer {admin_key}x",
        f"Bearer {admin_key[:-1]}",
    ):
        response = tenant.client.get("/v1/channels", headers={"Authorization": value})
        assert_error(response, 401, "unauthenticated")
        response = tenant.client.post(
            "/v1/outbound/send",
            json={"configuration_id": setup.config_id, "contacts": [contact()]},
            headers={"Authorization": value},
        )
        assert_error(response, 401, "unauthenticated")

    # Twenty failures from one address throttle it (test_auth_throttle.py): start afresh.
    tenant.client.app.state.auth_throttle = FailureThrottle()  # type: ignore[attr-defined]
    key = tenant.keys[Role.ADMIN]
    for value in (f"bearer {key}", f"BEARER {key}", f"Bearer  {key} "):
        assert (
            tenant.client.get("/v1/channels", headers={"Authorization": value}).status_code == 200
        )

    key = tenant.keys[Role.SENDER]
    assert tenant.get("/v1/channels", Role.SENDER).status_code == 200
    with container.db.transaction() as session:
        session.execute(
            sa.update(ApiKey)
            .where(ApiKey.key_hash == hash_key(key))
            .values(revoked_at=container.clock.now())
        )
    assert_error(tenant.get("/v1/channels", Role.SENDER), 401, "unauthenticated")


# --- roles ----------------------------------------------------------------------------------


def test_agent_can_only_track(tenant: Tenant, setup: Setup) -> None:
    assert_error(_send(tenant, setup, Role.AGENT), 403, "forbidden")
    template = {
        "name": "By agent",
        "channel_type": "sms",
        "default_locale": "en-US",
        "default_text": "Hi",
    }
    assert_error(tenant.post("/v1/templates", template, Role.AGENT), 403, "forbidden")
    channel = {"name": "c", "type": "sms", "provider": "sandbox", "sender": "+15005550006"}
    assert_error(tenant.post("/v1/channels", channel, Role.AGENT), 403, "forbidden")
    assert_error(tenant.post("/v1/api-keys", {"role": "admin"}, Role.AGENT), 403, "forbidden")
    error = assert_error(
        tenant.delete(f"/v1/templates/{setup.template['id']}", Role.AGENT), 403, "forbidden"
    )
    assert "agent" in error["message"]
    # Nothing was sent nor created.
    assert tenant.get("/v1/messages").json()["data"] == []
    names = [t["name"] for t in tenant.get("/v1/templates").json()["data"]]
    assert names == ["Case update"]

    # What was sent, an agent may follow.
    sent = _send(tenant, setup)
    assert sent.status_code == 202
    message_id = sent.json()["results"][0]["message_id"]
    assert tenant.get(f"/v1/messages/{message_id}", Role.AGENT).status_code == 200
    assert len(tenant.get("/v1/messages", Role.AGENT).json()["data"]) == 1
    assert tenant.get("/v1/timeline/CASE-1", Role.AGENT).status_code == 200
    assert tenant.get("/v1/organization", Role.AGENT).status_code == 200


def test_sender_can_send_and_read_but_not_administer(tenant: Tenant, setup: Setup) -> None:
    channel = {"name": "c2", "type": "sms", "provider": "sandbox", "sender": "+15005550007"}
    template = {"name": "T2", "channel_type": "sms", "default_locale": "en-US", "default_text": "x"}
    config = {
        "name": "C2",
        "channel_type": "sms",
        "channel_id": setup.channel["id"],
        "template_id": setup.template["id"],
    }
    forbidden = [
        ("POST", "/v1/channels", channel),
        ("PATCH", f"/v1/channels/{setup.channel['id']}", {"name": "renamed"}),
        ("DELETE", f"/v1/channels/{setup.channel['id']}", None),
        ("POST", "/v1/templates", template),
        ("PATCH", f"/v1/templates/{setup.template['id']}", {"name": "renamed"}),
        ("DELETE", f"/v1/templates/{setup.template['id']}", None),
        ("POST", "/v1/outbound-configurations", config),
        ("PATCH", f"/v1/outbound-configurations/{setup.config_id}", {"active": False}),
        ("DELETE", f"/v1/outbound-configurations/{setup.config_id}", None),
        ("POST", "/v1/api-keys", {"role": "sender"}),
    ]
    for method, path, body in forbidden:
        response = tenant.request(method, path, Role.SENDER, json=body)
        assert_error(response, 403, "forbidden")
    # Everything is as it was.
    assert tenant.get(f"/v1/channels/{setup.channel['id']}").json()["name"] == "SMS"
    assert tenant.get(f"/v1/templates/{setup.template['id']}").json()["name"] == "Case update"
    assert tenant.get(f"/v1/outbound-configurations/{setup.config_id}").json()["active"] is True
    assert len(tenant.get("/v1/channels").json()["data"]) == 1
    assert len(tenant.get("/v1/templates").json()["data"]) == 1
    assert len(tenant.get("/v1/outbound-configurations").json()["data"]) == 1

    # Sending, reading and previewing are allowed.
    response = _send(tenant, setup, Role.SENDER)
    assert response.status_code == 202, response.text
    for path in (
        "/v1/channels",
        f"/v1/channels/{setup.channel['id']}",
        "/v1/templates",
        f"/v1/templates/{setup.template['id']}",
        "/v1/outbound-configurations",
        f"/v1/outbound-configurations/{setup.config_id}",
        "/v1/messages",
        f"/v1/messages/{response.json()['results'][0]['message_id']}",
        "/v1/organization",
    ):
        assert tenant.get(path, Role.SENDER).status_code == 200, path
    preview = tenant.post(
        f"/v1/templates/{setup.template['id']}/preview",
        {"values": {"CustomerName": "Ana", "CaseName": "C"}},
        Role.SENDER,
    )
    assert preview.status_code == 200


# --- API keys -------------------------------------------------------------------------------


def test_api_keys(tenant: Tenant, container: Container) -> None:
    response = tenant.post("/v1/api-keys", {"role": "sender", "name": "CI pipeline"})
    assert response.status_code == 201, response.text
    created = response.json()
    key = created["key"]
    assert created["role"] == "sender"
    assert created["name"] == "CI pipeline"
    assert created["org_id"] == tenant.org_id
    assert key.startswith("ob_") and len(key) >= 40

    # The key works, with its role.
    auth = {"Authorization": f"Bearer {key}"}
    assert tenant.client.get("/v1/channels", headers=auth).status_code == 200
    channel = {"name": "c", "type": "sms", "provider": "sandbox", "sender": "+15005550006"}
    denied = tenant.client.post("/v1/channels", json=channel, headers=auth)
    assert_error(denied, 403, "forbidden")

    # Only the hash is stored.
    with container.db.read() as session:
        row = session.get(ApiKey, created["id"])
        assert row is not None
        assert row.key_hash != key
        assert row.key_hash == hash_key(key)
        assert row.org_id == tenant.org_id
        raw = session.execute(
            sa.text("SELECT * FROM api_keys WHERE id = :id"), {"id": created["id"]}
        ).one()
    assert all(key not in str(value) for value in raw)

    # Every key is new; a new admin key administers.
    first = tenant.post("/v1/api-keys", {"role": "admin"}).json()["key"]
    second = tenant.post("/v1/api-keys", {"role": "admin"}).json()["key"]
    assert first != second
    channel = {"name": "c", "type": "sms", "provider": "sandbox", "sender": "+15005550006"}
    response = tenant.client.post(
        "/v1/channels", json=channel, headers={"Authorization": f"Bearer {second}"}
    )
    assert response.status_code == 201, response.text

    # Only admins create keys, and only with a known role.
    assert_error(tenant.post("/v1/api-keys", {"role": "admin"}, Role.SENDER), 403, "forbidden")
    assert_error(tenant.post("/v1/api-keys", {"role": "root"}), 422, "invalid_request", "role")
    assert_error(tenant.post("/v1/api-keys", {}), 422, "invalid_request", "role")
    assert_error(
        tenant.post("/v1/api-keys", {"role": "admin", "name": ""}), 422, "invalid_request", "name"
    )
    assert_error(
        tenant.post("/v1/api-keys", {"role": "admin", "org_id": "x"}),
        422,
        "invalid_request",
        "org_id",
    )


def test_keys_are_per_organisation(tenant: Tenant, other_tenant: Tenant, setup: Setup) -> None:
    key = other_tenant.post("/v1/api-keys", {"role": "admin"}).json()["key"]
    auth = {"Authorization": f"Bearer {key}"}
    assert tenant.client.get("/v1/channels", headers=auth).json()["data"] == []
    org = tenant.client.get("/v1/organization", headers=auth).json()
    assert org["id"] == other_tenant.org_id

    # Idempotency keys are per organisation too.
    other = make_setup(other_tenant)
    headers = {"Idempotency-Key": "order-1"}
    first = tenant.post(
        "/v1/outbound/send",
        {"configuration_id": setup.config_id, "contacts": [contact()]},
        headers=headers,
    )
    second = other_tenant.post(
        "/v1/outbound/send",
        {"configuration_id": other.config_id, "contacts": [contact()]},
        headers=headers,
    )
    assert first.status_code == second.status_code == 202, second.text
    assert first.json()["request_id"] != second.json()["request_id"]
    assert second.json()["configuration_id"] == other.config_id


# --- tenancy --------------------------------------------------------------------------------


def _assert_no_leak(response: Any, *secrets: str, field: str | None = None) -> None:
    assert_error(response, 404, "not_found", field)
    for secret in secrets:
        assert secret not in response.text


def test_other_organisations_objects_are_out_of_reach(
    tenant: Tenant, other_tenant: Tenant, setup: Setup
) -> None:
    sent = _send(tenant, setup)
    message_id = sent.json()["results"][0]["message_id"]
    channel_id, template_id = setup.channel["id"], setup.template["id"]
    secrets = ("+15005550006", "Case update", "Case updates", "+33612345678", "Ana")

    for path in (
        f"/v1/channels/{channel_id}",
        f"/v1/templates/{template_id}",
        f"/v1/outbound-configurations/{setup.config_id}",
        f"/v1/messages/{message_id}",
    ):
        _assert_no_leak(other_tenant.get(path), *secrets)
    _assert_no_leak(
        other_tenant.post(f"/v1/templates/{template_id}/preview", {"values": {}}), *secrets
    )
    _assert_no_leak(other_tenant.patch(f"/v1/channels/{channel_id}", {"name": "x"}), *secrets)
    _assert_no_leak(other_tenant.patch(f"/v1/templates/{template_id}", {"name": "x"}), *secrets)
    _assert_no_leak(
        other_tenant.patch(f"/v1/outbound-configurations/{setup.config_id}", {"name": "x"}),
        *secrets,
    )
    _assert_no_leak(other_tenant.delete(f"/v1/outbound-configurations/{setup.config_id}"))
    _assert_no_leak(other_tenant.delete(f"/v1/templates/{template_id}"))
    _assert_no_leak(other_tenant.delete(f"/v1/channels/{channel_id}"))
    _assert_no_leak(_send(other_tenant, setup), *secrets, field="configuration_id")

    # The owner still sees everything unchanged.
    assert tenant.get(f"/v1/channels/{channel_id}").json()["name"] == "SMS"
    assert tenant.get(f"/v1/templates/{template_id}").json()["name"] == "Case update"
    assert tenant.get(f"/v1/outbound-configurations/{setup.config_id}").json()["name"] == (
        "Case updates"
    )
    assert tenant.get(f"/v1/messages/{message_id}").status_code == 200

    # A foreign id and an unknown id get the same answer.
    foreign = other_tenant.get(f"/v1/channels/{setup.channel['id']}").json()["error"]
    missing = other_tenant.get(f"/v1/channels/{MISSING_ID}").json()["error"]
    assert foreign["code"] == missing["code"] == "not_found"
    assert foreign["message"].replace(setup.channel["id"], MISSING_ID) == missing["message"]

    # Nor can another organisation's channel or template be referenced.
    own = make_setup(other_tenant)
    body = {
        "name": "Borrowed channel",
        "channel_type": "sms",
        "channel_id": setup.channel["id"],
        "template_id": own.template["id"],
    }
    error = assert_error(
        other_tenant.post("/v1/outbound-configurations", body), 422, "invalid_request", "channel_id"
    )
    assert "+15005550006" not in error["message"]
    body = {**body, "channel_id": own.channel["id"], "template_id": setup.template["id"]}
    assert_error(
        other_tenant.post("/v1/outbound-configurations", body),
        422,
        "invalid_request",
        "template_id",
    )
    patched = other_tenant.patch(
        f"/v1/outbound-configurations/{own.config_id}", {"template_id": setup.template["id"]}
    )
    assert_error(patched, 422, "invalid_request", "template_id")


def test_lists_and_timeline_show_only_own_organisation(
    tenant: Tenant, other_tenant: Tenant, setup: Setup
) -> None:
    other = make_setup(other_tenant)
    mine = _send(tenant, setup).json()
    theirs = _send(other_tenant, other).json()

    def ids(t: Tenant, path: str, **params: str) -> set[str]:
        response = t.get(path, params=params)
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["data"]}

    assert ids(tenant, "/v1/channels") == {setup.channel["id"]}
    assert ids(other_tenant, "/v1/channels") == {other.channel["id"]}
    assert ids(tenant, "/v1/templates") == {setup.template["id"]}
    assert ids(other_tenant, "/v1/templates") == {other.template["id"]}
    assert ids(tenant, "/v1/outbound-configurations") == {setup.config_id}
    assert ids(other_tenant, "/v1/outbound-configurations") == {other.config_id}
    assert ids(tenant, "/v1/messages") == {mine["results"][0]["message_id"]}
    assert ids(other_tenant, "/v1/messages") == {theirs["results"][0]["message_id"]}
    # Filters naming the other organisation's objects find nothing.
    assert ids(other_tenant, "/v1/messages", request_id=mine["request_id"]) == set()
    assert ids(other_tenant, "/v1/messages", configuration_id=setup.config_id) == set()
    assert ids(other_tenant, "/v1/messages", to="+33612345678") == {
        theirs["results"][0]["message_id"]
    }

    item = contact(
        contextitems={
            "CustomerName": "Ana",
            "CaseName": "C",
            "regardingobjectid": "CASE-42",
            "entityrelationshipname": "incident_msdyn_ocoutboundmessages",
        }
    )
    sent = tenant.post(
        "/v1/outbound/send", {"configuration_id": setup.config_id, "contacts": [item]}
    )
    assert sent.status_code == 202
    assert len(tenant.get("/v1/timeline/CASE-42").json()["data"]) == 1
    assert other_tenant.get("/v1/timeline/CASE-42").json() == {"data": [], "next_cursor": None}
