"""API keys of users (acting as the user, never above their role), listing, revoking, the
throttled record of their last use, and the supervisor role."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from outbound.adapters.db.models import ApiKey
from outbound.app import build_container, create_app
from outbound.config import Settings
from outbound.schemas import Role
from outbound.testing import FakeClock
from tests.acceptance.test_auth_and_tenancy import assert_error
from tests.acceptance.test_users import MISSING_ID, as_key, make_user, user_key
from tests.helpers import Setup, Tenant, contact

KEY_FIELDS = {"id", "prefix", "name", "role", "user_id", "created_at", "last_used_at", "revoked_at"}


def test_a_users_key_acts_as_that_user(tenant: Tenant) -> None:
    ana = make_user(tenant, role="agent")
    response = tenant.post(
        "/v1/api-keys", {"role": "agent", "user_id": ana["id"], "name": "Ana's console"}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    key = created["key"]
    assert (created["user_id"], created["role"], created["name"]) == (
        ana["id"],
        "agent",
        "Ana's console",
    )
    assert created["prefix"] == key[:10] and key.startswith("ob_")
    assert as_key(tenant, key, "GET", "/v1/users/me").json()["id"] == ana["id"]
    # With the role of the key: an agent reads messages, and may not send.
    assert as_key(tenant, key, "GET", "/v1/messages").status_code == 200
    assert_error(as_key(tenant, key, "GET", "/v1/channels"), 403, "forbidden")


@pytest.mark.parametrize(
    ("user_role", "allowed"),
    [
        ("agent", {"agent"}),
        ("supervisor", {"supervisor", "agent"}),
        ("admin", {"admin", "sender", "supervisor", "agent"}),
    ],
)
def test_a_key_never_has_a_role_above_its_user(
    tenant: Tenant, user_role: str, allowed: set[str]
) -> None:
    user = make_user(tenant, f"{user_role}@example.com", role=user_role)
    for role in Role:
        response = tenant.post("/v1/api-keys", {"role": role.value, "user_id": user["id"]})
        if role.value in allowed:
            assert response.status_code == 201, response.text
        else:
            error = assert_error(response, 422, "role_above_user", "role")
            assert user_role in error["message"]


def test_bad_key_requests_are_422_naming_the_field(tenant: Tenant) -> None:
    for body, field in [
        ({"role": "agent", "user_id": MISSING_ID}, "user_id"),
        ({"role": "agent", "user_id": ""}, "user_id"),
        ({"role": "agent", "user_id": 3}, "user_id"),
        ({"role": "boss"}, "role"),
        ({"role": "agent", "name": "n" * 201}, "name"),
        ({"role": "agent", "prefix": "ob_x"}, "prefix"),
    ]:
        assert_error(tenant.post("/v1/api-keys", body), 422, "invalid_request", field)


def test_keys_are_listed_without_their_secrets(tenant: Tenant, clock: FakeClock) -> None:
    ana = make_user(tenant)
    clock.advance(1)
    first = tenant.post("/v1/api-keys", {"role": "agent", "user_id": ana["id"]}).json()
    clock.advance(1)
    second = tenant.post("/v1/api-keys", {"role": "sender", "name": "CRM"}).json()

    response = tenant.get("/v1/api-keys")
    assert response.status_code == 200, response.text
    listed = response.json()["data"]
    # The tenant's own keys (one per role) come first in time, so last in the list.
    assert [k["id"] for k in listed[:2]] == [second["id"], first["id"]]
    assert len(listed) == 2 + len(Role)
    for key in listed:
        assert set(key) == KEY_FIELDS
    for secret in [first["key"], second["key"], *tenant.keys.values()]:
        assert secret not in response.text
    assert listed[1] == {
        "id": first["id"],
        "prefix": first["key"][:10],
        "name": "api key",
        "role": "agent",
        "user_id": ana["id"],
        "created_at": first["created_at"],
        "last_used_at": None,
        "revoked_at": None,
    }
    mine = tenant.get("/v1/api-keys", params={"user_id": ana["id"]}).json()["data"]
    assert [k["id"] for k in mine] == [first["id"]]
    page = tenant.get("/v1/api-keys", params={"limit": 1}).json()
    assert [k["id"] for k in page["data"]] == [second["id"]] and page["next_cursor"]
    rest = tenant.get("/v1/api-keys", params={"cursor": page["next_cursor"]}).json()
    assert rest["data"][0]["id"] == first["id"]

    for role in (Role.SUPERVISOR, Role.AGENT, Role.SENDER):
        assert_error(tenant.get("/v1/api-keys", role), 403, "forbidden")
        assert_error(tenant.delete(f"/v1/api-keys/{first['id']}", role), 403, "forbidden")
        assert_error(tenant.post("/v1/api-keys", {"role": "agent"}, role), 403, "forbidden")


@pytest.fixture
def second_process(settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    """Another API process on the same database."""
    other = build_container(settings, clock=clock)
    with TestClient(create_app(other, run_worker=False)) as test_client:
        yield test_client
    other.db.dispose()


def test_a_revoked_key_is_refused_at_once_by_every_process(
    tenant: Tenant, second_process: TestClient, clock: FakeClock, setup: Setup
) -> None:
    created = tenant.post("/v1/api-keys", {"role": "sender", "name": "CI"}).json()
    auth = {"Authorization": f"Bearer {created['key']}"}
    send = {"configuration_id": setup.config_id, "contacts": [contact()]}
    assert second_process.post("/v1/outbound/send", json=send, headers=auth).status_code == 202
    assert tenant.client.get("/v1/messages", headers=auth).status_code == 200

    clock.advance(3)
    response = tenant.delete(f"/v1/api-keys/{created['id']}")
    assert response.status_code == 204 and response.content == b""
    for client in (tenant.client, second_process):
        error = assert_error(
            client.post("/v1/outbound/send", json=send, headers=auth), 401, "unauthenticated"
        )
        assert created["key"] not in error["message"]
        assert_error(client.get("/v1/messages", headers=auth), 401, "unauthenticated")
    listed = tenant.get("/v1/api-keys").json()["data"]
    revoked = next(k for k in listed if k["id"] == created["id"])
    assert revoked["revoked_at"] == clock.now().isoformat().replace("+00:00", "Z")

    # Revoking again changes nothing; unknown keys are 404.
    clock.advance(3)
    assert tenant.delete(f"/v1/api-keys/{created['id']}").status_code == 204
    again = next(k for k in tenant.get("/v1/api-keys").json()["data"] if k["id"] == created["id"])
    assert again["revoked_at"] == revoked["revoked_at"]
    assert_error(tenant.delete(f"/v1/api-keys/{MISSING_ID}"), 404, "not_found")


def test_another_organisations_keys_are_out_of_reach(tenant: Tenant, other_tenant: Tenant) -> None:
    created = tenant.post("/v1/api-keys", {"role": "sender"}).json()
    assert_error(other_tenant.delete(f"/v1/api-keys/{created['id']}"), 404, "not_found")
    theirs = {k["id"] for k in other_tenant.get("/v1/api-keys").json()["data"]}
    assert created["id"] not in theirs and len(theirs) == len(Role)
    ana = make_user(tenant)
    filtered = other_tenant.get("/v1/api-keys", params={"user_id": ana["id"]}).json()
    assert filtered == {"data": [], "next_cursor": None}
    assert (
        tenant.client.get(
            "/v1/messages", headers={"Authorization": f"Bearer {created['key']}"}
        ).status_code
        == 200
    )


def test_last_use_is_written_at_most_once_a_minute(
    tenant: Tenant, clock: FakeClock, container: Any
) -> None:
    created = tenant.post("/v1/api-keys", {"role": "sender"}).json()
    key_id, auth = created["id"], {"Authorization": f"Bearer {created['key']}"}
    writes: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_KEYS"):
            writes.append(statement)

    def last_used() -> Any:
        with container.db.read() as session:
            return session.execute(
                sa.select(ApiKey.last_used_at).where(ApiKey.id == key_id)
            ).scalar_one()

    sa.event.listen(container.db.engine, "before_cursor_execute", count)
    try:
        start = clock.now()
        for _ in range(20):
            assert tenant.client.get("/v1/messages", headers=auth).status_code == 200
            clock.advance(2)
        assert last_used() == start
        assert len(writes) == 1
        clock.advance(30)  # 70 s after the first use
        tenant.client.get("/v1/messages", headers=auth)
        assert last_used() == clock.now()
        assert len(writes) == 2
    finally:
        sa.event.remove(container.db.engine, "before_cursor_execute", count)
    listed = next(k for k in tenant.get("/v1/api-keys").json()["data"] if k["id"] == key_id)
    assert listed["last_used_at"] == clock.now().isoformat().replace("+00:00", "Z")


def test_lowering_a_users_role_revokes_their_keys_above_it(tenant: Tenant) -> None:
    boss = make_user(tenant, "boss@example.com", role="admin")
    admin_key = user_key(tenant, boss["id"], "admin")
    supervisor_key = user_key(tenant, boss["id"], "supervisor")
    agent_key = user_key(tenant, boss["id"], "agent")
    assert as_key(tenant, admin_key, "GET", "/v1/channels").status_code == 200

    assert tenant.patch(f"/v1/users/{boss['id']}", {"role": "supervisor"}).status_code == 200
    assert_error(as_key(tenant, admin_key, "GET", "/v1/channels"), 401, "unauthenticated")
    assert as_key(tenant, supervisor_key, "GET", "/v1/users").status_code == 200
    tenant.patch(f"/v1/users/{boss['id']}", {"role": "agent"})
    assert_error(as_key(tenant, supervisor_key, "GET", "/v1/users"), 401, "unauthenticated")
    assert as_key(tenant, agent_key, "GET", "/v1/users/me").status_code == 200
    # Raising the role again does not bring the revoked keys back.
    tenant.patch(f"/v1/users/{boss['id']}", {"role": "admin"})
    assert_error(as_key(tenant, admin_key, "GET", "/v1/channels"), 401, "unauthenticated")
    keys = tenant.get("/v1/api-keys", params={"user_id": boss["id"]}).json()["data"]
    revoked = {k["role"]: k["revoked_at"] is not None for k in keys}
    assert revoked == {"admin": True, "supervisor": True, "agent": False}


def test_supervisors_read_what_agents_read_and_oversee_people(tenant: Tenant, setup: Setup) -> None:
    sent = tenant.post(
        "/v1/outbound/send", {"configuration_id": setup.config_id, "contacts": [contact()]}
    )
    message_id = sent.json()["results"][0]["message_id"]
    for path in (
        "/v1/organization",
        "/v1/messages",
        f"/v1/messages/{message_id}",
        "/v1/conversations",
        "/v1/contacts",
        "/v1/cases",
        "/v1/users",
        "/v1/presence",
    ):
        assert tenant.get(path, Role.SUPERVISOR).status_code == 200, path
    send = {"configuration_id": setup.config_id, "contacts": [contact()]}
    assert_error(tenant.post("/v1/outbound/send", send, Role.SUPERVISOR), 403, "forbidden")
    assert_error(tenant.get("/v1/channels", Role.SUPERVISOR), 403, "forbidden")
    assert_error(tenant.post("/v1/api-keys", {"role": "agent"}, Role.SUPERVISOR), 403, "forbidden")
