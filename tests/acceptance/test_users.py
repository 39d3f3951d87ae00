"""Users of an organisation through the HTTP API: fields, validation, roles, passwords,
deletion and deactivation, and the isolation of organisations."""

from __future__ import annotations

import logging
from typing import Any

import argon2
import pytest
import sqlalchemy as sa

from outbound.adapters.db.models import Conversation, PresenceChange, User
from outbound.adapters.passwords import Passwords
from outbound.app import Container
from outbound.schemas import Role
from outbound.services.users import UserService
from outbound.testing import FakeClock
from tests.acceptance.test_auth_and_tenancy import assert_error
from tests.helpers import Tenant

MISSING_ID = "00000000-0000-0000-0000-000000000000"
PASSWORD = "correct horse battery"


def make_user(tenant: Tenant, email: str = "ana@example.com", **fields: Any) -> dict[str, Any]:
    body = {"email": email, "name": email.split("@")[0].title(), **fields}
    response = tenant.post("/v1/users", body)
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


def user_key(tenant: Tenant, user_id: str, role: str = "agent") -> str:
    response = tenant.post("/v1/api-keys", {"role": role, "user_id": user_id})
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def as_key(tenant: Tenant, key: str, method: str, path: str, json: Any = None) -> Any:
    return tenant.client.request(
        method, path, json=json, headers={"Authorization": f"Bearer {key}"}
    )


# --- fields ---------------------------------------------------------------------------------


def test_create_read_list_and_update_users(tenant: Tenant, clock: FakeClock) -> None:
    created = make_user(
        tenant,
        "  Ana.Lopez@Example.COM ",
        name=" Ana López ",
        role="supervisor",
        languages=["FR_fr", "fr-FR", "es", "1033"],
        skills=[" Billing ", "billing", "VIP  clients"],
        capacity=5,
        time_zone="Europe/Paris",
        ui_language="fr",
    )
    assert created["email"] == "ana.lopez@example.com"
    assert created["name"] == "Ana López"
    assert created["role"] == "supervisor"
    assert created["languages"] == ["fr-FR", "es", "en-US"]
    assert created["skills"] == ["Billing", "VIP clients"]
    assert created["capacity"] == 5
    assert (created["active"], created["has_password"]) == (True, False)
    assert (created["time_zone"], created["ui_language"]) == ("Europe/Paris", "fr")
    assert created["presence"] == {
        "user_id": created["id"],
        "status": "offline",
        "online": False,
        "since": None,
        "last_seen_at": None,
    }
    assert created["created_at"] == created["updated_at"]

    # Defaults: an agent of capacity 3, speaking nothing in particular.
    clock.advance(1)
    bob = make_user(tenant, "bob@example.com")
    assert (bob["role"], bob["capacity"], bob["languages"], bob["skills"]) == (
        "agent",
        3,
        [],
        [],
    )
    assert (bob["time_zone"], bob["ui_language"]) == (None, None)

    assert tenant.get(f"/v1/users/{created['id']}").json() == created
    listed = tenant.get("/v1/users").json()
    assert [u["id"] for u in listed["data"]] == [bob["id"], created["id"]]

    clock.advance(60)
    patched = tenant.patch(
        f"/v1/users/{created['id']}",
        {"name": "Ana", "capacity": 0, "skills": ["returns"], "time_zone": None, "role": "agent"},
    )
    assert patched.status_code == 200, patched.text
    after = patched.json()
    assert (after["name"], after["capacity"], after["skills"], after["role"]) == (
        "Ana",
        0,
        ["returns"],
        "agent",
    )
    assert after["time_zone"] is None and after["ui_language"] == "fr"
    assert after["languages"] == ["fr-FR", "es", "en-US"]
    assert after["updated_at"] > after["created_at"] == created["created_at"]
    assert tenant.get(f"/v1/users/{created['id']}").json() == after


def test_lists_are_paginated_and_filtered(tenant: Tenant, clock: FakeClock) -> None:
    ids = []
    for i in range(5):
        clock.advance(1)
        ids.append(make_user(tenant, f"u{i}@example.com", role="agent" if i % 2 else "admin")["id"])
    first = tenant.get("/v1/users", params={"limit": 2}).json()
    assert [u["id"] for u in first["data"]] == ids[:2:-1] and first["next_cursor"]
    second = tenant.get("/v1/users", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    third = tenant.get("/v1/users", params={"limit": 2, "cursor": second["next_cursor"]}).json()
    assert [u["id"] for u in second["data"] + third["data"]] == ids[2::-1]
    assert third["next_cursor"] is None

    agents = tenant.get("/v1/users", params={"role": "agent"}).json()["data"]
    assert [u["id"] for u in agents] == [ids[3], ids[1]]
    tenant.patch(f"/v1/users/{ids[0]}", {"active": False})
    inactive = tenant.get("/v1/users", params={"active": "false"}).json()["data"]
    assert [u["id"] for u in inactive] == [ids[0]]
    assert len(tenant.get("/v1/users", params={"active": "true"}).json()["data"]) == 4

    assert_error(tenant.get("/v1/users", params={"role": "root"}), 422, "invalid_request", "role")
    assert_error(tenant.get("/v1/users", params={"cursor": "x"}), 422, "invalid_request", "cursor")
    assert_error(tenant.get("/v1/users", params={"limit": 0}), 422, "invalid_request", "limit")


def test_email_addresses_are_unique_per_organisation_whatever_their_case(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    ana = make_user(tenant, "ana@example.com")
    bob = make_user(tenant, "bob@example.com")
    for email in ("ana@example.com", "ANA@Example.com", " ana@EXAMPLE.COM"):
        error = assert_error(
            tenant.post("/v1/users", {"email": email, "name": "Ana 2"}),
            409,
            "duplicate_email",
            "email",
        )
        assert "ana@" not in error["message"]
    assert_error(
        tenant.patch(f"/v1/users/{bob['id']}", {"email": "Ana@example.com"}),
        409,
        "duplicate_email",
        "email",
    )
    # Its own address, in another case, is no conflict.
    same = tenant.patch(f"/v1/users/{ana['id']}", {"email": "ANA@example.com"})
    assert same.status_code == 200 and same.json()["email"] == "ana@example.com"
    # Another organisation may have a user with that address.
    make_user(other_tenant, "ana@example.com")


BAD_USERS = [
    ({"email": "not an address"}, "email"),
    ({"email": ""}, "email"),
    ({"email": "ana@example"}, "email"),
    ({"email": 3}, "email"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "n" * 201}, "name"),
    ({"role": "root"}, "role"),
    ({"role": "sender"}, "role"),
    ({"languages": ["fr", "xx-YY"]}, "languages[1]"),
    ({"languages": "fr"}, "languages"),
    ({"languages": [1036]}, "languages[0]"),
    ({"languages": ["fr"] * 21}, "languages"),
    ({"skills": ["billing", "  "]}, "skills[1]"),
    ({"skills": ["s" * 101]}, "skills[0]"),
    ({"skills": [f"s{i}" for i in range(51)]}, "skills"),
    ({"capacity": 101}, "capacity"),
    ({"capacity": -1}, "capacity"),
    ({"capacity": "3"}, "capacity"),
    ({"capacity": 2.5}, "capacity"),
    ({"active": "yes"}, "active"),
    ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ({"time_zone": "europe/paris"}, "time_zone"),
    ({"ui_language": "klingon"}, "ui_language"),
    ({"password": "short"}, "password"),
    ({"password": "p" * 1025}, "password"),
    ({"password": 1234567890}, "password"),
    ({"org_id": "x"}, "org_id"),
    ({"name": "A\x00na"}, "name"),
]


@pytest.mark.parametrize(("change", "field"), BAD_USERS)
def test_bad_fields_are_422_naming_the_field(
    tenant: Tenant, change: dict[str, Any], field: str
) -> None:
    body = {"email": "ana@example.com", "name": "Ana", **change}
    error = assert_error(tenant.post("/v1/users", body), 422, "invalid_request", field)
    if "password" in change:
        assert str(change["password"]) not in error["message"]
    assert tenant.get("/v1/users").json()["data"] == []


def test_bad_changes_are_422_naming_the_field(tenant: Tenant) -> None:
    ana = make_user(tenant)
    path = f"/v1/users/{ana['id']}"
    for change, field in BAD_USERS:
        if field == "email" and change["email"] == "":
            continue
        assert_error(tenant.patch(path, change), 422, "invalid_request", field)
    # Fields that cannot be cleared refuse null, naming the field.
    for field in ("email", "name", "role", "languages", "skills", "capacity", "active"):
        error = assert_error(tenant.patch(path, {field: None}), 422, "invalid_request", field)
        assert "null" in error["message"]
    assert tenant.get(path).json() == ana
    assert_error(tenant.patch(f"/v1/users/{MISSING_ID}", {"name": "x"}), 404, "not_found")


# --- passwords ------------------------------------------------------------------------------


def test_passwords_are_argon2_hashes_never_shown_nor_logged(
    tenant: Tenant, container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = tenant.post(
        "/v1/users", {"email": "ana@example.com", "name": "Ana", "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    ana = response.json()
    assert ana["has_password"] is True
    assert "password" not in ana and PASSWORD not in response.text
    with container.db.read() as session:
        stored = session.get(User, ana["id"])
        assert stored is not None and stored.password_hash is not None
        assert stored.password_hash.startswith("$argon2id$")
        assert PASSWORD not in stored.password_hash
    for read in (tenant.get(f"/v1/users/{ana['id']}"), tenant.get("/v1/users")):
        assert "argon2" not in read.text and PASSWORD not in read.text

    users = container.users
    assert users.verify_password(tenant.org_id, "ANA@example.com", PASSWORD) is not None
    assert users.verify_password(tenant.org_id, "ana@example.com", PASSWORD + "!") is None
    assert users.verify_password(tenant.org_id, "bob@example.com", PASSWORD) is None
    assert users.verify_password(tenant.org_id, "not an address", PASSWORD) is None

    # A new password replaces it; null removes it (the user then only has keys).
    changed = tenant.patch(f"/v1/users/{ana['id']}", {"password": "another long one"})
    assert changed.status_code == 200 and "another long one" not in changed.text
    assert users.verify_password(tenant.org_id, "ana@example.com", PASSWORD) is None
    assert users.verify_password(tenant.org_id, "ana@example.com", "another long one")
    cleared = tenant.patch(f"/v1/users/{ana['id']}", {"password": None}).json()
    assert cleared["has_password"] is False
    assert users.verify_password(tenant.org_id, "ana@example.com", "another long one") is None

    assert PASSWORD not in caplog.text and "another long one" not in caplog.text


def test_a_password_is_rehashed_at_login_when_the_parameters_change(
    tenant: Tenant, container: Container
) -> None:
    ana = tenant.post(
        "/v1/users", {"email": "ana@example.com", "name": "Ana", "password": PASSWORD}
    ).json()

    def stored_hash() -> str:
        with container.db.read() as session:
            value = session.execute(
                sa.select(User.password_hash).where(User.id == ana["id"])
            ).scalar_one()
        assert isinstance(value, str)
        return value

    before = stored_hash()
    assert "m=65536,t=3,p=4" in before
    cheaper = Passwords(argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    service = UserService(container.db, container.clock, cheaper, presence_timeout=60)
    assert service.verify_password(tenant.org_id, "ana@example.com", "wrong password") is None
    assert stored_hash() == before
    assert service.verify_password(tenant.org_id, "ana@example.com", PASSWORD) is not None
    after = stored_hash()
    assert after != before and "m=1024,t=1,p=1" in after
    assert service.verify_password(tenant.org_id, "ana@example.com", PASSWORD) is not None
    assert stored_hash() == after

    # A deactivated user cannot log in, even with the right password.
    tenant.patch(f"/v1/users/{ana['id']}", {"active": False})
    assert service.verify_password(tenant.org_id, "ana@example.com", PASSWORD) is None


# --- roles ----------------------------------------------------------------------------------


def test_only_admins_manage_users_and_supervisors_read_them(tenant: Tenant) -> None:
    ana = make_user(tenant)
    path = f"/v1/users/{ana['id']}"
    for role in (Role.SUPERVISOR, Role.AGENT, Role.SENDER):
        assert_error(
            tenant.post("/v1/users", {"email": "x@example.com", "name": "X"}, role),
            403,
            "forbidden",
        )
        assert_error(tenant.patch(path, {"name": "X"}, role), 403, "forbidden")
        assert_error(tenant.delete(path, role), 403, "forbidden")
    assert tenant.get("/v1/users", Role.SUPERVISOR).json()["data"][0]["id"] == ana["id"]
    assert tenant.get(path, Role.SUPERVISOR).json() == ana
    for role in (Role.AGENT, Role.SENDER):
        assert_error(tenant.get("/v1/users", role), 403, "forbidden")
        assert_error(tenant.get(path, role), 403, "forbidden")
    assert tenant.get(path).json() == ana


def test_me_is_the_user_a_key_belongs_to(tenant: Tenant) -> None:
    ana = make_user(tenant, role="agent")
    key = user_key(tenant, ana["id"])
    me = as_key(tenant, key, "GET", "/v1/users/me")
    assert me.status_code == 200, me.text
    assert me.json()["id"] == ana["id"] and me.json()["email"] == "ana@example.com"
    # Keys of the organisation itself belong to nobody.
    for role in Role:
        error = assert_error(tenant.get("/v1/users/me", role), 404, "no_user")
        assert "user_id" in error["message"]
    assert_error(tenant.client.get("/v1/users/me"), 401, "unauthenticated")


def test_an_admin_may_neither_demote_deactivate_nor_delete_themself(tenant: Tenant) -> None:
    boss = make_user(tenant, "boss@example.com", role="admin")
    key = user_key(tenant, boss["id"], "admin")
    path = f"/v1/users/{boss['id']}"
    for change in ({"role": "agent"}, {"active": False}):
        assert_error(as_key(tenant, key, "PATCH", path, change), 409, "own_user")
    assert_error(as_key(tenant, key, "DELETE", path), 409, "own_user")
    # Other changes of their own are fine; so is another admin demoting them.
    renamed = as_key(tenant, key, "PATCH", path, {"name": "The Boss", "role": "admin"})
    assert renamed.status_code == 200, renamed.text
    assert tenant.patch(path, {"role": "supervisor"}).json()["role"] == "supervisor"


# --- deleting and deactivating --------------------------------------------------------------


def test_delete_removes_a_user_nothing_names(tenant: Tenant) -> None:
    ana = make_user(tenant)
    response = tenant.delete(f"/v1/users/{ana['id']}")
    assert response.status_code == 204 and response.content == b""
    assert_error(tenant.get(f"/v1/users/{ana['id']}"), 404, "not_found")
    assert_error(tenant.delete(f"/v1/users/{ana['id']}"), 404, "not_found")
    # The address is free again.
    make_user(tenant)


def test_delete_deactivates_a_user_with_history(
    tenant: Tenant, container: Container, clock: FakeClock
) -> None:
    with_key = make_user(tenant, "key@example.com")
    key = user_key(tenant, with_key["id"])
    assert as_key(tenant, key, "PUT", "/v1/users/me/presence", {"status": "available"}).json()[
        "online"
    ]
    with_changes = make_user(tenant, "presence@example.com")
    tenant.put(f"/v1/users/{with_changes['id']}/presence", {"status": "busy"})
    assigned = make_user(tenant, "assigned@example.com")
    with container.db.transaction() as session:
        session.add(
            Conversation(
                org_id=tenant.org_id,
                channel_id=MISSING_ID,
                customer_number="+33612345678",
                assigned_to=assigned["id"],
                created_at=clock.now(),
                updated_at=clock.now(),
                last_message_at=clock.now(),
            )
        )

    clock.advance(5)
    for user in (with_key, with_changes, assigned):
        assert tenant.delete(f"/v1/users/{user['id']}").status_code == 204
        kept = tenant.get(f"/v1/users/{user['id']}").json()
        assert kept["active"] is False
        assert kept["presence"]["status"] == "offline" and kept["presence"]["online"] is False
    # Their keys are revoked for good: reactivating them does not bring them back.
    error = assert_error(as_key(tenant, key, "GET", "/v1/users/me"), 401, "unauthenticated")
    assert key not in error["message"]
    listed = tenant.get("/v1/api-keys", params={"user_id": with_key["id"]}).json()["data"]
    assert listed[0]["revoked_at"] is not None
    tenant.patch(f"/v1/users/{with_key['id']}", {"active": True})
    assert_error(as_key(tenant, key, "GET", "/v1/users/me"), 401, "unauthenticated")
    # Deleting again changes nothing.
    assert tenant.delete(f"/v1/users/{with_changes['id']}").status_code == 204
    with container.db.read() as session:
        changes = session.execute(
            sa.select(PresenceChange.status, PresenceChange.source)
            .where(PresenceChange.user_id == with_changes["id"])
            .order_by(PresenceChange.id)
        ).all()
    assert [tuple(c) for c in changes] == [("busy", "supervisor"), ("offline", "system")]


def test_a_deactivated_users_keys_stop_and_come_back_when_reactivated(tenant: Tenant) -> None:
    ana = make_user(tenant)
    key = user_key(tenant, ana["id"])
    as_key(tenant, key, "PUT", "/v1/users/me/presence", {"status": "available"})
    off = tenant.patch(f"/v1/users/{ana['id']}", {"active": False})
    assert off.status_code == 200
    assert off.json()["active"] is False and off.json()["presence"]["status"] == "offline"
    error = assert_error(as_key(tenant, key, "GET", "/v1/messages"), 401, "unauthenticated")
    assert "deactivated" in error["message"]
    # No new key for a deactivated user either.
    assert_error(
        tenant.post("/v1/api-keys", {"role": "agent", "user_id": ana["id"]}),
        422,
        "invalid_request",
        "user_id",
    )
    back = tenant.patch(f"/v1/users/{ana['id']}", {"active": True}).json()
    assert back["active"] is True and back["presence"]["status"] == "offline"
    assert as_key(tenant, key, "GET", "/v1/messages").status_code == 200


# --- tenancy --------------------------------------------------------------------------------


def test_other_organisations_users_are_out_of_reach(tenant: Tenant, other_tenant: Tenant) -> None:
    ana = make_user(tenant)
    theirs = make_user(other_tenant, "zoe@example.com")
    path = f"/v1/users/{ana['id']}"
    for response in (
        other_tenant.get(path),
        other_tenant.patch(path, {"name": "Stolen"}),
        other_tenant.delete(path),
        other_tenant.get(f"{path}/presence"),
        other_tenant.put(f"{path}/presence", {"status": "available"}),
    ):
        error = assert_error(response, 404, "not_found")
        assert "ana@example.com" not in response.text
        missing = other_tenant.get(f"/v1/users/{MISSING_ID}").json()["error"]
        assert error["message"].replace(ana["id"], MISSING_ID) == missing["message"]
    assert [u["id"] for u in other_tenant.get("/v1/users").json()["data"]] == [theirs["id"]]
    assert [p["user_id"] for p in other_tenant.get("/v1/presence").json()["data"]] == [theirs["id"]]
    # Nor can another organisation's user be given a key.
    assert_error(
        other_tenant.post("/v1/api-keys", {"role": "agent", "user_id": ana["id"]}),
        422,
        "invalid_request",
        "user_id",
    )
    assert tenant.get(path).json() == ana
