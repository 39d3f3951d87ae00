"""Reading a number's consent and recording an admin's change (``/v1/consent``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from outbound.app import Container, create_app
from outbound.domain.roles import Role
from outbound.testing import FakeClock, ScriptedProvider
from tests.helpers import Setup, Tenant, contact, make_setup, make_tenant

CUSTOMER = "+33612345678"


def _channels(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["channel_id"]: c for c in body["channels"]}


def test_nothing_recorded_reads_as_given_on_every_channel(tenant: Tenant, setup: Setup) -> None:
    response = tenant.get("/v1/consent", params={"number": "06 12 34 56 78"}, role=Role.AGENT)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["number"] == CUSTOMER
    (channel,) = body["channels"]
    assert channel["channel_id"] == setup.channel["id"]
    assert (channel["channel_type"], channel["state"], channel["history"]) == ("sms", "given", [])
    assert channel["changed_at"] is None


def test_a_stop_then_an_admin_record_are_read_with_their_history(
    tenant: Tenant, setup: Setup, clock: FakeClock
) -> None:
    second = tenant.post(
        "/v1/channels",
        {"name": "SMS 2", "type": "sms", "provider": "sandbox", "sender": "+15005550007"},
    ).json()
    tenant.client.post(
        setup.channel["webhook_url"], json={"id": "in-1", "from": CUSTOMER, "body": "Stop!"}
    )
    clock.advance(60)
    recorded = tenant.put(
        "/v1/consent",
        {"number": CUSTOMER, "state": "withdrawn", "note": "asked on the phone"},
    )
    assert recorded.status_code == 200, recorded.text
    channels = _channels(recorded.json())
    first = channels[setup.channel["id"]]
    assert first["state"] == "withdrawn"
    # Already withdrawn there: the admin's record changes nothing and adds no entry.
    assert [(h["state"], h["source"], h["detail"]) for h in first["history"]] == [
        ("withdrawn", "keyword", "Stop!")
    ]
    other = channels[second["id"]]
    assert other["state"] == "withdrawn"
    (change,) = other["history"]
    assert (change["source"], change["detail"]) == ("admin", "asked on the phone")
    assert change["actor"].startswith("key:")

    restored = tenant.put(
        "/v1/consent", {"number": CUSTOMER, "state": "given", "channel_id": setup.channel["id"]}
    )
    channels = _channels(restored.json())
    assert channels[setup.channel["id"]]["state"] == "given"
    assert channels[second["id"]]["state"] == "withdrawn"
    assert [h["state"] for h in channels[setup.channel["id"]]["history"]] == [
        "withdrawn",
        "given",
    ]
    assert tenant.get("/v1/consent", params={"number": CUSTOMER}).json() == restored.json()


def test_an_admins_withdrawal_skips_later_sends(tenant: Tenant, setup: Setup) -> None:
    tenant.put("/v1/consent", {"number": CUSTOMER, "state": "withdrawn"})
    response = tenant.post(
        "/v1/outbound/send", {"configuration_id": setup.config_id, "contacts": [contact()]}
    )
    result = response.json()["results"][0]
    assert (result["status"], result["reason"]) == ("skipped", "consent_withdrawn")


@pytest.fixture
def stenant(scripted_container: Container) -> Iterator[Tenant]:
    with TestClient(create_app(scripted_container, run_worker=False)) as client:
        yield make_tenant(scripted_container, client)


async def test_an_admins_withdrawal_skips_messages_already_queued(
    stenant: Tenant, scripted_container: Container, provider: ScriptedProvider
) -> None:
    setup = make_setup(stenant)
    response = stenant.post(
        "/v1/outbound/send", {"configuration_id": setup.config_id, "contacts": [contact()]}
    )
    message_id = response.json()["results"][0]["message_id"]
    stenant.put("/v1/consent", {"number": CUSTOMER, "state": "withdrawn"})
    await scripted_container.dispatcher().run_once()
    assert provider.sent == []
    detail = stenant.get(f"/v1/messages/{message_id}").json()
    assert (detail["status"], detail["reason"]) == ("skipped", "consent_withdrawn")


def test_roles_fields_and_organisations(tenant: Tenant, setup: Setup, other_tenant: Tenant) -> None:
    body = {"number": CUSTOMER, "state": "withdrawn"}
    for role in (Role.SENDER, Role.SUPERVISOR, Role.AGENT):
        assert tenant.put("/v1/consent", body, role=role).status_code == 403
    missing = tenant.put("/v1/consent", {**body, "channel_id": "nope"})
    assert (missing.status_code, missing.json()["error"]["field"]) == (404, "channel_id")
    bad = tenant.get("/v1/consent", params={"number": "call me"})
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "number")
    assert tenant.get("/v1/consent").status_code == 422
    wrong_state = tenant.put("/v1/consent", {**body, "state": "maybe"})
    assert wrong_state.status_code == 422

    # Another organisation's channel is not found, and its reading shows none of ours.
    foreign = other_tenant.put("/v1/consent", {**body, "channel_id": setup.channel["id"]})
    assert foreign.status_code == 404
    assert tenant.put("/v1/consent", body).status_code == 200
    assert other_tenant.get("/v1/consent", params={"number": CUSTOMER}).json()["channels"] == []
