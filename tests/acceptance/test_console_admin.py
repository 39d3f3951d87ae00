"""The console's admin screens over HTTP, on both databases: CSRF, roles, French, an API
key's secret shown once, a flow run cancelled."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from outbound.app import Container
from outbound.console.routes import auth
from outbound.schemas import (
    CaseCreate,
    ChannelCreate,
    ConfigurationCreate,
    TemplateCreate,
    UserCreate,
)
from outbound.services.auth import list_api_keys
from tests.helpers import Tenant

PASSWORD = "console-password-1"
FLOW = """\
name: reminder
configuration: Reminders
trigger:
  type: instant
source:
  records: contacts
"""


@pytest.fixture(autouse=True)
def _no_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "FAILED_SIGN_IN_DELAY_SECONDS", 0.0)


def _token(client: TestClient, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match
    return match.group(1)


def _signed_in(
    container: Container, tenant: Tenant, client: TestClient, role: str = "admin", **extra: str
) -> str:
    email = f"{role}@example.com"
    user = container.users.create(
        tenant.org_id,
        UserCreate(email=email, name=role.title(), role=role, password=PASSWORD, **extra),
    )
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": _token(client, "/login")},
        follow_redirects=False,
    )
    assert response.status_code == 303
    return user.id


def test_forms_without_the_csrf_token_change_nothing(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    _signed_in(container, tenant, client)
    refused = client.post("/users", data={"email": "x@example.com", "name": "X", "role": "agent"})
    assert refused.status_code == 403
    assert client.post("/users/api-keys", data={"name": "k", "role": "sender"}).status_code == 403
    assert client.post("/settings", data={"reopen_closed": "1"}).status_code == 403
    assert client.post("/flows/new", data={"source": FLOW}).status_code == 403
    emails = [u.email for u in container.users.list(tenant.org_id, None, 50).data]
    assert emails == ["admin@example.com"]
    assert container.flows.list(tenant.org_id, None, 50).data == []


@pytest.mark.parametrize(
    ("role", "allowed", "refused"),
    [
        ("agent", [], ["/users", "/settings", "/flows", "/contacts", "/routing", "/cases"]),
        ("supervisor", ["/routing", "/contacts", "/cases"], ["/users", "/settings", "/flows"]),
    ],
)
def test_roles_decide_the_admin_screens(
    container: Container,
    tenant: Tenant,
    client: TestClient,
    role: str,
    allowed: list[str],
    refused: list[str],
) -> None:
    _signed_in(container, tenant, client, role)
    for path in allowed:
        assert client.get(path).status_code == 200, path
    for path in refused:
        assert client.get(path).status_code == 403, path
    if role == "supervisor":
        token = _token(client, "/contacts")
        assert client.post("/contacts/import", data={"csrf_token": token}).status_code == 403


def test_the_admin_screens_speak_french(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    _signed_in(container, tenant, client, ui_language="fr-FR")
    expected = {
        "/users": "Utilisateurs et clés d\u2019API",
        "/settings": "Paramètres de l\u2019organisation",
        "/routing": "Simulateur",
        "/flows": "Aucun flux pour l\u2019instant.",
        "/contacts": "Trouver un contact",
        "/cases": "Numéro de dossier",
    }
    for path, text in expected.items():
        assert text in client.get(path).text, path


def test_a_keys_secret_is_shown_once_and_revoking_refuses_it(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    _signed_in(container, tenant, client)
    token = _token(client, "/users")
    created = client.post(
        "/users/api-keys", data={"name": "CRM", "role": "sender", "csrf_token": token}
    )
    assert created.status_code == 200
    secret = re.search(r'<code id="new-key" class="mono">([^<]+)</code>', created.text)
    assert secret
    key = secret.group(1)
    assert key not in client.get("/users").text
    bearer = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/contacts", headers=bearer).status_code == 200
    keys = list_api_keys(container.db, tenant.org_id, None, 100).data
    key_id = next(k.id for k in keys if k.name == "CRM")
    assert f'action="/users/api-keys/{key_id}/revoke"' in client.get("/users").text
    revoked = client.post(
        f"/users/api-keys/{key_id}/revoke",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert revoked.status_code == 303
    assert client.get("/v1/contacts", headers=bearer).status_code == 401


def test_a_run_is_followed_then_cancelled(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    org = tenant.org_id
    channel = container.channels.create(
        org, ChannelCreate(name="SMS", type="sms", provider="sandbox", sender="+15005550006")
    )
    template = container.templates.create(
        org,
        TemplateCreate(name="Hi", channel_type="sms", default_locale="en", default_text="Hi"),
    )
    container.configurations.create(
        org,
        ConfigurationCreate(
            name="Reminders", channel_type="sms", channel_id=channel.id, template_id=template.id
        ),
    )
    _signed_in(container, tenant, client)
    token = _token(client, "/flows/new")
    saved = client.post(
        "/flows/new",
        data={"source": FLOW, "action": "save", "csrf_token": token},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    flow_path = saved.headers["location"].split("?")[0]
    started = client.post(f"{flow_path}/runs", data={"csrf_token": token}, follow_redirects=False)
    assert started.status_code == 303
    run_path = started.headers["location"]
    # No worker here: the run waits, and its page asks for its progress every second.
    progress = client.get(f"{run_path}/progress").text
    assert 'hx-trigger="every 1s"' in progress and "Cancel the run" in progress
    cancelled = client.post(
        f"{run_path}/cancel", data={"csrf_token": token}, follow_redirects=False
    )
    assert cancelled.status_code == 303
    progress = client.get(f"{run_path}/progress").text
    assert "canceled" in progress
    assert "hx-trigger" not in progress and "Cancel the run" not in progress
    assert container.flows.get_run(org, run_path.rsplit("/", 1)[1]).status.value == "canceled"


def test_cases_are_found_and_resolved(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    org = tenant.org_id
    case = container.records.create_case(org, CaseCreate(number="CAS-9", title="Late parcel"))
    container.records.create_case(org, CaseCreate(number="CAS-10", title="Broken lid"))
    _signed_in(container, tenant, client)
    found = client.get("/cases", params={"number": "CAS-9"}).text
    assert "Late parcel" in found and "Broken lid" not in found
    token = _token(client, "/cases")
    resolved = client.post(
        f"/cases/{case.id}/status",
        data={"status": "resolved", "back": "/cases?status=active", "csrf_token": token},
        follow_redirects=False,
    )
    assert (resolved.status_code, resolved.headers["location"]) == (303, "/cases?status=active")
    assert container.records.get_case(org, case.id).status.value == "resolved"
    active = client.get("/cases", params={"status": "active"}).text
    assert "Late parcel" not in active and "Broken lid" in active
    assert "Reactivate CAS-9" in client.get("/cases", params={"status": "resolved"}).text
