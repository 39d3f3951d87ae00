"""Console sessions over HTTP, on both databases: listed per user, signed out one by one or
all but this one, and ended everywhere by signing out, a new password, a deactivation."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from outbound.app import Container
from outbound.console.routes import auth
from outbound.console.session import COOKIE_NAME
from outbound.schemas import UserCreate
from tests.helpers import Tenant

PASSWORD = "console-password-1"


@pytest.fixture(autouse=True)
def _no_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "FAILED_SIGN_IN_DELAY_SECONDS", 0.0)


@pytest.fixture
def other_browser(client: TestClient) -> Iterator[TestClient]:
    with TestClient(client.app) as second:
        yield second


def _token(client: TestClient, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match
    return match.group(1)


def _user(container: Container, tenant: Tenant, role: str = "agent") -> str:
    user = container.users.create(
        tenant.org_id,
        UserCreate(email=f"{role}@example.com", name=role.title(), role=role, password=PASSWORD),
    )
    return user.id


def _sign_in(client: TestClient, email: str, agent: str) -> None:
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": _token(client, "/login")},
        headers={"User-Agent": agent},
        follow_redirects=False,
    )
    assert response.status_code == 303


def _signed_in(client: TestClient) -> bool:
    return client.get("/messages", follow_redirects=False).status_code == 200


def test_a_user_signs_out_their_other_sessions(
    container: Container, tenant: Tenant, client: TestClient, other_browser: TestClient
) -> None:
    _user(container, tenant)
    _sign_in(client, "agent@example.com", "Laptop browser")
    _sign_in(other_browser, "agent@example.com", "Phone browser")
    page = client.get("/account")
    assert page.status_code == 200
    assert "Laptop browser" in page.text and "Phone browser" in page.text
    assert page.text.count("this session") == 1
    response = client.post(
        "/account/sessions/end-others",
        data={"csrf_token": _token(client, "/account")},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/account?ended=1"
    assert "1 session was signed out." in client.get(response.headers["location"]).text
    assert _signed_in(client)
    assert not _signed_in(other_browser)
    assert "Phone browser" not in client.get("/account").text


def test_one_session_is_signed_out_from_the_list_and_only_the_users_own(
    container: Container, tenant: Tenant, client: TestClient, other_browser: TestClient
) -> None:
    _user(container, tenant)
    _user(container, tenant, "supervisor")
    _sign_in(client, "agent@example.com", "Laptop browser")
    _sign_in(other_browser, "supervisor@example.com", "Phone browser")
    [theirs] = [s.key for s in container.console_sessions.list(_id(container, tenant, "sup"))]
    token = _token(client, "/account")
    answer = client.post("/account/sessions/end", data={"csrf_token": token, "key": theirs})
    assert "0 sessions were signed out." in answer.text
    assert _signed_in(other_browser)
    _sign_in(other_browser, "agent@example.com", "Phone browser")
    [mine, phone] = [s.key for s in container.console_sessions.list(_id(container, tenant, "ag"))]
    assert client.post("/account/sessions/end", data={"csrf_token": token, "key": mine})
    assert _signed_in(client)  # not this one: "Sign out" does that
    client.post("/account/sessions/end", data={"csrf_token": token, "key": phone})
    assert not _signed_in(other_browser)


def _id(container: Container, tenant: Tenant, prefix: str) -> str:
    [user] = [
        u for u in container.users.list(tenant.org_id, None, 10).data if u.email.startswith(prefix)
    ]
    return user.id


def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(
    container: Container, tenant: Tenant, client: TestClient, other_browser: TestClient
) -> None:
    _user(container, tenant)
    _sign_in(client, "agent@example.com", "Laptop browser")
    other_browser.cookies.set(COOKIE_NAME, client.cookies[COOKIE_NAME])
    assert _signed_in(other_browser)
    client.post("/logout", data={"csrf_token": _token(client, "/account")})
    assert not _signed_in(other_browser)


def test_a_new_password_or_a_deactivation_ends_the_users_sessions(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    user_id = _user(container, tenant)
    _sign_in(client, "agent@example.com", "Laptop browser")
    assert tenant.patch(f"/v1/users/{user_id}", {"name": "Agent"}).status_code == 200
    assert _signed_in(client)  # other changes leave the sessions alone
    assert tenant.patch(f"/v1/users/{user_id}", {"password": "another-password-2"}).is_success
    assert not _signed_in(client)
    assert container.console_sessions.list(user_id) == []
    response = client.post(
        "/login",
        data={
            "email": "agent@example.com",
            "password": "another-password-2",
            "csrf_token": _token(client, "/login"),
        },
        follow_redirects=False,
    )
    assert response.status_code == 303 and _signed_in(client)
    assert tenant.patch(f"/v1/users/{user_id}", {"active": False}).is_success
    assert container.console_sessions.list(user_id) == []
    # A user whom nothing else names is deleted with their sessions.
    assert tenant.delete(f"/v1/users/{user_id}").status_code == 204


def test_an_admin_signs_a_user_out_everywhere(
    container: Container, tenant: Tenant, client: TestClient, other_browser: TestClient
) -> None:
    user_id = _user(container, tenant)
    _user(container, tenant, "admin")
    _sign_in(other_browser, "agent@example.com", "Phone browser")
    _sign_in(client, "admin@example.com", "Laptop browser")
    page = client.get("/users")
    assert "Sign Agent out everywhere" in page.text
    token = _token(client, "/users")
    path = f"/users/{user_id}/sessions/end"
    # The agent may not (their role), nor may a form without its token.
    assert (
        other_browser.post(path, data={"csrf_token": _token(other_browser, "/account")}).status_code
        == 403
    )
    assert client.post(path, data={"csrf_token": "forged"}).status_code == 403
    assert _signed_in(other_browser)
    response = client.post(path, data={"csrf_token": token}, follow_redirects=False)
    assert response.headers["location"] == "/users?done=signed-out"
    assert not _signed_in(other_browser)
    assert _signed_in(client)
    assert client.post("/users/unknown/sessions/end", data={"csrf_token": token}).status_code == 404
