"""Presence: statuses set by users and supervisors, being online (available and seen within
the timeout), heartbeats, throttled "seen" writes, and the record of changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from outbound.adapters.db.models import PresenceChange, User
from outbound.app import Container, build_container, create_app
from outbound.config import Settings, SettingsError, load_settings
from outbound.schemas import Role
from outbound.testing import FakeClock
from tests.acceptance.test_auth_and_tenancy import assert_error
from tests.acceptance.test_users import as_key, make_user, user_key
from tests.helpers import Tenant


def iso(clock: FakeClock) -> str:
    return clock.now().isoformat().replace("+00:00", "Z")


def presence_of(tenant: Tenant, user_id: str) -> dict[str, Any]:
    """As a supervisor sees it (without refreshing the user's own "seen")."""
    response = tenant.get(f"/v1/users/{user_id}/presence", Role.SUPERVISOR)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_an_available_agent_is_online_while_seen_within_the_timeout(
    tenant: Tenant, clock: FakeClock
) -> None:
    ana = make_user(tenant)
    key = user_key(tenant, ana["id"])
    start = iso(clock)
    mine = as_key(tenant, key, "GET", "/v1/users/me/presence").json()
    assert mine == {
        "user_id": ana["id"],
        "status": "offline",
        "online": False,
        "since": None,
        "last_seen_at": start,
    }

    clock.advance(1)
    response = as_key(tenant, key, "PUT", "/v1/users/me/presence", {"status": "available"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "user_id": ana["id"],
        "status": "available",
        "online": True,
        "since": iso(clock),
        "last_seen_at": start,
    }
    since = iso(clock)

    clock.advance(59)  # 60 s after she was last seen: still online
    assert presence_of(tenant, ana["id"])["online"] is True
    clock.advance(1.5)
    quiet = presence_of(tenant, ana["id"])
    assert (quiet["status"], quiet["online"], quiet["since"]) == ("available", False, since)
    listed = tenant.get("/v1/presence", Role.SUPERVISOR).json()["data"]
    assert listed == [quiet]

    # Any request with her key counts as being seen; so does a heartbeat.
    assert as_key(tenant, key, "GET", "/v1/messages").status_code == 200
    assert presence_of(tenant, ana["id"])["online"] is True
    clock.advance(61)
    beat = as_key(tenant, key, "POST", "/v1/users/me/heartbeat")
    assert beat.status_code == 200, beat.text
    assert beat.json()["online"] is True and beat.json()["last_seen_at"] == iso(clock)

    # Busy, away, dnd and offline are never online, seen or not.
    for status in ("busy", "dnd", "away", "offline"):
        changed = as_key(tenant, key, "PUT", "/v1/users/me/presence", {"status": status})
        assert changed.json()["status"] == status and changed.json()["online"] is False


def test_seen_is_written_at_most_every_15_seconds_per_user(
    tenant: Tenant, clock: FakeClock, container: Container
) -> None:
    ana = make_user(tenant)
    first, second = user_key(tenant, ana["id"]), user_key(tenant, ana["id"])
    writes: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE USERS"):
            writes.append(statement)

    sa.event.listen(container.db.engine, "before_cursor_execute", count)
    try:
        start = iso(clock)
        for i in range(14):
            key = first if i % 2 else second
            assert as_key(tenant, key, "GET", "/v1/users/me").status_code == 200
            clock.advance(1)
        assert len(writes) == 1
        assert presence_of(tenant, ana["id"])["last_seen_at"] == start
        clock.advance(1)  # 15 s after the write
        as_key(tenant, first, "GET", "/v1/users/me")
        assert len(writes) == 2
        assert presence_of(tenant, ana["id"])["last_seen_at"] == iso(clock)
    finally:
        sa.event.remove(container.db.engine, "before_cursor_execute", count)


def test_supervisors_see_and_set_everyones_presence(tenant: Tenant, clock: FakeClock) -> None:
    ana = make_user(tenant, "ana@example.com")
    bob = make_user(tenant, "bob@example.com")
    boss = make_user(tenant, "boss@example.com", role="supervisor")
    boss_key = user_key(tenant, boss["id"], "supervisor")
    as_key(
        tenant, user_key(tenant, ana["id"]), "PUT", "/v1/users/me/presence", {"status": "available"}
    )

    clock.advance(1)
    set_by_boss = as_key(
        tenant, boss_key, "PUT", f"/v1/users/{bob['id']}/presence", {"status": "busy"}
    )
    assert set_by_boss.status_code == 200, set_by_boss.text
    # Setting someone's status does not make them seen.
    assert set_by_boss.json() == {
        "user_id": bob["id"],
        "status": "busy",
        "online": False,
        "since": iso(clock),
        "last_seen_at": None,
    }
    everyone = {p["user_id"]: p for p in tenant.get("/v1/presence", Role.SUPERVISOR).json()["data"]}
    assert {uid: (p["status"], p["online"]) for uid, p in everyone.items()} == {
        ana["id"]: ("available", True),
        bob["id"]: ("busy", False),
        boss["id"]: ("offline", False),
    }

    def ids(**params: Any) -> set[str]:
        response = tenant.get("/v1/presence", params=params)
        assert response.status_code == 200, response.text
        return {p["user_id"] for p in response.json()["data"]}

    assert ids(online="true") == {ana["id"]}
    assert ids(online="false") == {bob["id"], boss["id"]}
    assert ids(status="busy") == {bob["id"]}
    assert ids(status="busy", online="true") == set()
    clock.advance(120)
    assert ids(online="true") == set()
    page = tenant.get("/v1/presence", params={"limit": 2}).json()
    rest = tenant.get("/v1/presence", params={"cursor": page["next_cursor"]}).json()
    assert len(page["data"]) == 2 and len(rest["data"]) == 1

    # Admins may too; deactivated users are left out and cannot be set.
    tenant.put(f"/v1/users/{ana['id']}/presence", {"status": "away"})
    tenant.patch(f"/v1/users/{bob['id']}", {"active": False})
    assert ids() == {ana["id"], boss["id"]}
    assert_error(
        tenant.put(f"/v1/users/{bob['id']}/presence", {"status": "available"}),
        409,
        "user_inactive",
    )


def test_presence_changes_are_recorded_with_who_and_when(
    tenant: Tenant, clock: FakeClock, container: Container
) -> None:
    ana = make_user(tenant)
    key = user_key(tenant, ana["id"])
    boss = make_user(tenant, "boss@example.com", role="supervisor")
    boss_key = user_key(tenant, boss["id"], "supervisor")
    times = []
    for status in ("available", "available", "busy", "offline"):
        clock.advance(10)
        times.append(clock.now())
        as_key(tenant, key, "PUT", "/v1/users/me/presence", {"status": status})
    clock.advance(10)
    by_boss = clock.now()
    as_key(tenant, boss_key, "PUT", f"/v1/users/{ana['id']}/presence", {"status": "away"})
    clock.advance(10)
    tenant.put(f"/v1/users/{ana['id']}/presence", {"status": "dnd"})

    with container.db.read() as session:
        rows = session.execute(
            sa.select(PresenceChange)
            .where(PresenceChange.user_id == ana["id"])
            .order_by(PresenceChange.id)
        ).scalars()
        changes = [
            (c.previous_status, c.status, c.source, c.changed_by, c.changed_at, c.org_id)
            for c in rows
        ]
    start = times[0]
    assert changes == [
        ("offline", "available", "user", ana["id"], start, tenant.org_id),
        ("available", "busy", "user", ana["id"], times[2], tenant.org_id),
        ("busy", "offline", "user", ana["id"], times[3], tenant.org_id),
        ("offline", "away", "supervisor", boss["id"], by_boss, tenant.org_id),
        ("away", "dnd", "supervisor", None, clock.now(), tenant.org_id),
    ]


def test_presence_requests_are_checked(tenant: Tenant) -> None:
    ana = make_user(tenant)
    key = user_key(tenant, ana["id"])
    for body, field in [
        ({"status": "sleeping"}, "status"),
        ({"status": None}, "status"),
        ({}, "status"),
        ({"status": "available", "online": True}, "online"),
    ]:
        response = as_key(tenant, key, "PUT", "/v1/users/me/presence", body)
        assert_error(response, 422, "invalid_request", field)
        assert_error(
            tenant.put(f"/v1/users/{ana['id']}/presence", body), 422, "invalid_request", field
        )
    assert_error(
        tenant.get("/v1/presence", params={"status": "sleeping"}), 422, "invalid_request", "status"
    )

    # Keys of the organisation belong to nobody; agents and senders oversee no one.
    for role in Role:
        assert_error(
            tenant.put("/v1/users/me/presence", {"status": "available"}, role), 404, "no_user"
        )
        assert_error(tenant.post("/v1/users/me/heartbeat", role=role), 404, "no_user")
    for role in (Role.AGENT, Role.SENDER):
        assert_error(tenant.get("/v1/presence", role), 403, "forbidden")
        assert_error(
            tenant.put(f"/v1/users/{ana['id']}/presence", {"status": "busy"}, role),
            403,
            "forbidden",
        )
    other = make_user(tenant, "bob@example.com")
    assert_error(
        as_key(tenant, key, "PUT", f"/v1/users/{other['id']}/presence", {"status": "busy"}),
        403,
        "forbidden",
    )
    assert presence_of(tenant, other["id"])["status"] == "offline"


@pytest.fixture
def short_timeout(settings: Settings, clock: FakeClock) -> Iterator[tuple[Container, TestClient]]:
    c = build_container(settings.model_copy(update={"presence_timeout_seconds": 20}), clock=clock)
    c.migrate()
    with TestClient(create_app(c, run_worker=False)) as client:
        yield c, client
    c.db.dispose()


def test_the_timeout_is_configurable(
    tenant: Tenant, short_timeout: tuple[Container, TestClient], clock: FakeClock
) -> None:
    container, client = short_timeout
    ana = make_user(tenant)
    key = user_key(tenant, ana["id"])
    auth = {"Authorization": f"Bearer {key}"}
    client.put("/v1/users/me/presence", json={"status": "available"}, headers=auth)
    # Under a 20 s timeout, "seen" is written every 5 s: a user making requests stays online.
    for _ in range(12):
        clock.advance(4)
        assert client.get("/v1/users/me/presence", headers=auth).json()["online"] is True
    with container.db.read() as session:
        seen = session.execute(sa.select(User.last_seen_at).where(User.id == ana["id"])).scalar()
    assert seen is not None and (clock.now() - seen).total_seconds() < 5
    clock.advance(21)
    supervisor = {"Authorization": f"Bearer {tenant.keys[Role.SUPERVISOR]}"}
    assert (
        client.get(f"/v1/users/{ana['id']}/presence", headers=supervisor).json()["online"] is False
    )
    # The same moment, under the default 60 s timeout, she is still online.
    assert presence_of(tenant, ana["id"])["online"] is True


def test_the_timeout_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().presence_timeout_seconds == 60
    monkeypatch.setenv("OUTBOUND_PRESENCE_TIMEOUT_SECONDS", "90")
    assert load_settings().presence_timeout_seconds == 90
    for bad in ("0", "4", "-1", "100000", "soon"):
        monkeypatch.setenv("OUTBOUND_PRESENCE_TIMEOUT_SECONDS", bad)
        with pytest.raises(SettingsError, match="OUTBOUND_PRESENCE_TIMEOUT_SECONDS"):
            load_settings()
