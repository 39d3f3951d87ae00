"""The console's sign-in, session cookie, CSRF protection and roles, over HTTP."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from outbound.app import Container, create_app
from outbound.console.routes import auth
from outbound.console.session import COOKIE_NAME
from outbound.schemas import UserCreate, UserUpdate
from tests.helpers import Tenant

PASSWORD = "console-password-1"


def _user(container: Container, tenant: Tenant, email: str, role: str, **extra: str) -> str:
    user = container.users.create(
        tenant.org_id,
        UserCreate(email=email, name=email.split("@")[0], role=role, password=PASSWORD, **extra),
    )
    return user.id


def _token(client: TestClient, path: str = "/login") -> str:
    page = client.get(path)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def _sign_in(client: TestClient, email: str, password: str = PASSWORD) -> object:
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": _token(client)},
        follow_redirects=False,
    )


@pytest.fixture(autouse=True)
def _no_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "FAILED_SIGN_IN_DELAY_SECONDS", 0.0)


def test_signing_in_sets_a_protected_cookie_and_leads_home(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    _user(container, tenant, "ada@example.com", "admin")
    home = client.get("/", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (303, "/login")
    response = _sign_in(client, "ADA@example.com ")
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert response.headers["location"] == "/dashboard"  # type: ignore[attr-defined]
    cookie = response.headers["set-cookie"]  # type: ignore[attr-defined]
    assert cookie.startswith(COOKIE_NAME + "=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "script-src" not in page.headers["content-security-policy"]  # 'self' only
    assert client.get("/", follow_redirects=False).headers["location"] == "/dashboard"


def test_the_cookie_is_secure_over_https(container: Container, tenant: Tenant) -> None:
    _user(container, tenant, "ada@example.com", "admin")
    with TestClient(create_app(container, run_worker=False), base_url="https://testserver") as c:
        response = _sign_in(c, "ada@example.com")
        assert "Secure" in response.headers["set-cookie"]  # type: ignore[attr-defined]


def test_next_stays_on_the_site(container: Container, tenant: Tenant, client: TestClient) -> None:
    _user(container, tenant, "ada@example.com", "admin")
    assert (
        client.get("/messages?status=failed", follow_redirects=False).headers["location"]
        == "/login?next=%2Fmessages%3Fstatus%3Dfailed"
    )
    for target, expected in (
        ("/messages?status=failed", "/messages?status=failed"),
        ("//evil.example/x", "/dashboard"),
        ("https://evil.example/", "/dashboard"),
    ):
        client.cookies.clear()
        response = client.post(
            "/login",
            data={
                "email": "ada@example.com",
                "password": PASSWORD,
                "next": target,
                "csrf_token": _token(client),
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == expected


def test_htmx_requests_without_a_session_are_sent_to_sign_in(client: TestClient) -> None:
    response = client.get("/dashboard", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["hx-redirect"] == "/login?next=%2Fdashboard"


def test_state_changes_need_the_sessions_csrf_token(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    _user(container, tenant, "ada@example.com", "admin")
    missing = client.post("/login", data={"email": "ada@example.com", "password": PASSWORD})
    assert missing.status_code == 403
    assert "This form has expired" in missing.text
    # A token of another session is worth nothing in this one.
    with TestClient(create_app(container, run_worker=False)) as other:
        foreign = _token(other)
    refused = client.post(
        "/login", data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": foreign}
    )
    assert refused.status_code == 403
    assert _sign_in(client, "ada@example.com").status_code == 303  # type: ignore[attr-defined]
    # Signed in, a new session: the token of the sign-in page no longer works.
    old = _token(client, "/login")
    assert client.post("/logout", headers={"X-CSRF-Token": "nope"}).status_code == 403
    assert (
        client.post("/logout", data={"csrf_token": old}, follow_redirects=False).status_code == 303
    )


def test_a_forged_or_altered_cookie_is_no_session(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    _user(container, tenant, "ada@example.com", "admin")
    _sign_in(client, "ada@example.com")
    value = client.cookies[COOKIE_NAME]
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_repeated_failures_lock_the_account(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    _user(container, tenant, "ada@example.com", "admin")
    for _ in range(auth.ACCOUNT_FAILURE_LIMIT):
        wrong = _sign_in(client, "ada@example.com", "wrong password!")
        assert wrong.status_code == 400  # type: ignore[attr-defined]
        assert "The e-mail address or the password is wrong." in wrong.text  # type: ignore[attr-defined]
    locked = _sign_in(client, "ada@example.com")
    assert locked.status_code == 429  # type: ignore[attr-defined]
    assert "Too many failed sign-ins. Try again in 15 minutes." in locked.text  # type: ignore[attr-defined]
    assert int(locked.headers["retry-after"]) > 800  # type: ignore[attr-defined]


def test_unknown_or_inactive_users_cannot_sign_in(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    user_id = _user(container, tenant, "ada@example.com", "admin")
    _user(container, tenant, "bo@example.com", "admin")
    assert _sign_in(client, "nobody@example.com").status_code == 400  # type: ignore[attr-defined]
    assert _sign_in(client, "not an address").status_code == 400  # type: ignore[attr-defined]
    assert _sign_in(client, "bo@example.com").status_code == 303  # type: ignore[attr-defined]
    client.cookies.clear()
    assert _sign_in(client, "ada@example.com").status_code == 303  # type: ignore[attr-defined]
    container.users.update(tenant.org_id, user_id, UserUpdate(active=False))
    # The session ends with the user's deactivation.
    assert client.get("/dashboard", follow_redirects=False).status_code == 303
    client.cookies.clear()
    assert _sign_in(client, "ada@example.com").status_code == 400  # type: ignore[attr-defined]


def test_roles_decide_what_is_shown_and_allowed(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    _user(container, tenant, "camille@example.com", "agent")
    response = _sign_in(client, "camille@example.com")
    assert response.headers["location"] == "/workspace"  # type: ignore[attr-defined]
    page = client.get("/messages")
    assert page.status_code == 200
    assert 'href="/dashboard"' not in page.text
    refused = client.get("/dashboard")
    assert refused.status_code == 403
    assert "Your role does not give access to this page." in refused.text


def test_the_users_language_and_zone_are_used(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    _user(
        container, tenant, "ada@example.com", "admin", ui_language="fr-FR", time_zone="Europe/Paris"
    )
    assert (
        "Connexion à outbound"
        in client.get("/login", headers={"Accept-Language": "fr-CH, en;q=0.5"}).text
    )
    assert "Sign in to outbound" in client.get("/login").text
    _sign_in(client, "ada@example.com")
    page = client.get("/dashboard", headers={"Accept-Language": "en"})
    assert '<html lang="fr">' in page.text
    assert "Tableau de bord" in page.text
    assert "(Europe/Paris)" in page.text
