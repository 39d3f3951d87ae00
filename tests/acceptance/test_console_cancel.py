"""Canceling a queued message from the console, over HTTP on both databases: the service of
``POST /v1/messages/{id}/cancel``, behind the CSRF token and the admin role."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from outbound.app import Container
from outbound.console.routes import auth
from outbound.schemas import UserCreate
from tests.helpers import Tenant, contact, make_setup

PASSWORD = "console-password-1"


@pytest.fixture(autouse=True)
def _no_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "FAILED_SIGN_IN_DELAY_SECONDS", 0.0)


def _token(client: TestClient, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match
    return match.group(1)


def _sign_in(container: Container, tenant: Tenant, client: TestClient, role: str) -> str:
    email = f"{role}@example.com"
    user = container.users.create(
        tenant.org_id, UserCreate(email=email, name=role.title(), role=role, password=PASSWORD)
    )
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": _token(client, "/login")},
        follow_redirects=False,
    )
    assert response.status_code == 303
    return user.id


def _queued(tenant: Tenant) -> str:
    setup = make_setup(tenant)
    response = tenant.post(
        "/v1/outbound/send", {"configuration_id": setup.config_id, "contacts": [contact()]}
    )
    assert response.status_code == 202, response.text
    message_id: str = response.json()["results"][0]["message_id"]
    return message_id


def test_an_admin_cancels_a_queued_message_once(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    message_id = _queued(tenant)
    user_id = _sign_in(container, tenant, client, "admin")
    page = client.get(f"/messages/{message_id}")
    assert "Cancel message" in page.text
    path = f"/messages/{message_id}/cancel"
    # Without the session's token: refused, nothing changes.
    assert client.post(path, data={"csrf_token": "forged"}).status_code == 403
    assert container.tracking.get(tenant.org_id, message_id).status == "queued"
    token = _token(client, f"/messages/{message_id}")
    response = client.post(path, data={"csrf_token": token}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, f"/messages/{message_id}")
    message = container.tracking.get(tenant.org_id, message_id)
    assert message.status == "canceled"
    assert message.history and message.history[-1].actor == f"user:{user_id}"
    page = client.get(f"/messages/{message_id}")
    assert "Cancel message" not in page.text
    # Again (another tab): the message is no longer queued; said on its page.
    again = client.post(path, data={"csrf_token": token})
    assert again.status_code == 409
    assert "can no longer be canceled" in again.text


@pytest.mark.parametrize("role", ["supervisor", "agent"])
def test_other_roles_may_not_cancel(
    container: Container, tenant: Tenant, client: TestClient, role: str
) -> None:
    message_id = _queued(tenant)
    _sign_in(container, tenant, client, role)
    page = client.get(f"/messages/{message_id}")
    assert page.status_code == 200 and "Cancel message" not in page.text
    token = _token(client, f"/messages/{message_id}")
    refused = client.post(f"/messages/{message_id}/cancel", data={"csrf_token": token})
    assert refused.status_code == 403
    assert container.tracking.get(tenant.org_id, message_id).status == "queued"
