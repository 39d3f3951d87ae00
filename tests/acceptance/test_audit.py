"""The audit log: who changed which template, configuration, channel, key, user or webhook
endpoint, when and what, without secrets; written with the change (both databases)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from outbound.adapters.db.models import AuditEvent
from outbound.app import Container
from outbound.config import Settings
from outbound.schemas import Role, TemplateUpdate
from tests.helpers import SECRET, Setup, Tenant


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        secret_key=SECRET,
        default_region="FR",
        webhook_allowed_hosts="127.0.0.1",
    )


def _audit(tenant: Tenant, **params: str) -> list[dict[str, Any]]:
    response = tenant.get("/v1/audit", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def test_catalog_changes_name_who_what_and_when(tenant: Tenant, setup: Setup) -> None:
    template_id = setup.template["id"]
    changed = tenant.patch(f"/v1/templates/{template_id}", {"default_text": "Hello {CustomerName}"})
    assert changed.status_code == 200, changed.text
    [update] = _audit(tenant, target_id=template_id, action="template.updated")
    assert update["changes"] == {
        "default_text": {
            "from": "Hi {CustomerName}, case {CaseName} was updated.",
            "to": "Hello {CustomerName}",
        }
    }
    assert update["via"] == "api" and update["actor_role"] == "admin"
    assert update["actor_key_id"] is not None
    actions = [row["action"] for row in _audit(tenant) if row["via"] == "api"]
    # Newest first: the set-up made a channel, a template and a configuration (its keys were
    # made outside the API).
    assert actions == [
        "template.updated",
        "configuration.created",
        "template.created",
        "channel.created",
    ]


def test_credentials_and_secrets_never_appear(tenant: Tenant, container: Container) -> None:
    channel = tenant.post(
        "/v1/channels",
        {
            "name": "Twilio",
            "type": "sms",
            "provider": "twilio",
            "sender": "+15005550006",
            "credentials": {"account_sid": "AC123", "auth_token": "tok-very-secret"},
        },
    )
    assert channel.status_code == 201, channel.text
    channel_id = channel.json()["id"]
    tenant.patch(
        f"/v1/channels/{channel_id}",
        {"credentials": {"account_sid": "AC123", "auth_token": "tok-other-secret"}},
    )
    user = tenant.post(
        "/v1/users",
        {
            "email": "ana@example.com",
            "name": "Ana",
            "role": "agent",
            "password": "pw-secret-123456",
        },
    )
    assert user.status_code == 201, user.text
    key = tenant.post("/v1/api-keys", {"name": "CRM", "role": "sender"})
    assert key.status_code == 201, key.text
    assert tenant.delete(f"/v1/api-keys/{key.json()['id']}").status_code == 204
    endpoint = tenant.post(
        "/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/hooks", "events": ["*"]}
    )
    assert endpoint.status_code == 201, endpoint.text

    rows = _audit(tenant)
    text = json.dumps(rows)
    for secret in (
        "tok-very-secret",
        "tok-other-secret",
        "pw-secret-123456",
        key.json()["key"],
        endpoint.json()["secret"],
    ):
        assert secret not in text
    [channel_update] = [r for r in rows if r["action"] == "channel.updated"]
    assert channel_update["changes"] == {"credentials": "(changed)"}
    [created_user] = [r for r in rows if r["action"] == "user.created"]
    assert created_user["changes"]["password"] == "(changed)"
    assert created_user["changes"]["email"] == {"from": None, "to": "ana@example.com"}
    assert {r["action"] for r in rows} >= {
        "channel.created",
        "api_key.created",
        "api_key.revoked",
        "webhook_endpoint.created",
    }


def test_the_log_is_per_organisation_and_for_admins(
    tenant: Tenant, other_tenant: Tenant, setup: Setup
) -> None:
    # The other organisation sees its own keys being made, nothing of the first one's.
    theirs = _audit(other_tenant)
    assert {r["action"] for r in theirs} == {"api_key.created"}
    mine = {r["target_id"] for r in _audit(tenant)}
    assert not mine & {r["target_id"] for r in theirs}
    assert tenant.get("/v1/audit", role=Role.SENDER).status_code == 403
    assert tenant.get("/v1/audit", role=Role.AGENT).status_code == 403


def test_pages_and_filters(tenant: Tenant, setup: Setup) -> None:
    for n in range(3):
        tenant.patch(f"/v1/templates/{setup.template['id']}", {"name": f"T{n}"})
    params = {"limit": 2, "target_type": "template"}
    first = tenant.get("/v1/audit", params=params).json()
    assert len(first["data"]) == 2 and first["next_cursor"]
    rest = tenant.get("/v1/audit", params={**params, "cursor": first["next_cursor"]}).json()
    assert rest["next_cursor"] is None
    ids = [r["id"] for r in first["data"] + rest["data"]]
    assert len(set(ids)) == 4 and all(i.startswith("aud_") for i in ids)
    newest_first = [r["occurred_at"] for r in first["data"] + rest["data"]]
    assert newest_first == sorted(newest_first, reverse=True)
    assert [r["changes"]["name"]["to"] for r in first["data"]] == ["T2", "T1"]
    assert tenant.get("/v1/audit", params={"cursor": "x"}).status_code == 422


def test_a_refused_change_leaves_no_audit_row(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    refused = tenant.delete(f"/v1/templates/{setup.template['id']}")  # used by a configuration
    assert refused.status_code == 409
    assert _audit(tenant, action="template.deleted") == []


def test_changes_outside_the_api_are_recorded_as_the_command_line(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    container.templates.update(tenant.org_id, setup.template["id"], TemplateUpdate(name="Renamed"))
    [row] = _audit(tenant, action="template.updated")
    assert (row["via"], row["actor_key_id"]) == ("cli", None)
    with container.db.read() as session:
        rows = session.execute(
            sa.select(AuditEvent.action).where(AuditEvent.org_id == tenant.org_id)
        ).scalars()
        assert sorted(set(rows)) == [
            "api_key.created",
            "channel.created",
            "configuration.created",
            "template.created",
            "template.updated",
        ]


def test_console_callers_are_told_apart() -> None:
    from outbound.console.access import CONSOLE_KEY_ID as CONSOLES
    from outbound.services.audit import CONSOLE_KEY_ID

    assert CONSOLES == CONSOLE_KEY_ID
