"""Consent is checked again when a worker is about to send (SQLite and PostgreSQL).

A message accepted before its number withdrew consent (STOP, the provider's unsubscribed error,
an admin) ends ``skipped`` with the reason ``consent_withdrawn``: no provider call, no attempt.
A message whose contact was deleted meanwhile ends ``skipped`` with ``contact_deleted``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from outbound.adapters.db.models import Message, MessageEvent
from outbound.app import Container, create_app
from outbound.services.consent import record_consent
from outbound.testing import FakeClock, ScriptedProvider
from tests.helpers import Setup, Tenant, contact, make_setup, make_tenant

CUSTOMER = "+33612345678"
OTHER = "+33612345679"


@pytest.fixture
def stenant(scripted_container: Container) -> Iterator[Tenant]:
    with TestClient(create_app(scripted_container, run_worker=False)) as client:
        yield make_tenant(scripted_container, client)


@pytest.fixture
def ssetup(stenant: Tenant) -> Setup:
    return make_setup(stenant)


def _send(tenant: Tenant, setup: Setup, numbers: list[str]) -> list[str]:
    response = tenant.post(
        "/v1/outbound/send",
        {"configuration_id": setup.config_id, "contacts": [contact(n) for n in numbers]},
    )
    assert response.status_code == 202, response.text
    assert all(r["status"] == "queued" for r in response.json()["results"])
    return [r["message_id"] for r in response.json()["results"]]


def _message(tenant: Tenant, message_id: str) -> dict[str, Any]:
    response = tenant.get(f"/v1/messages/{message_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _history(container: Container, message_id: str) -> list[tuple[str, str]]:
    with container.db.read() as session:
        rows = session.execute(
            sa.select(MessageEvent.status, MessageEvent.source)
            .where(MessageEvent.message_id == message_id)
            .order_by(MessageEvent.id)
        ).all()
    return [(r.status, r.source) for r in rows]


async def test_stop_after_accepting_skips_the_queued_message(
    stenant: Tenant, ssetup: Setup, scripted_container: Container, provider: ScriptedProvider
) -> None:
    withdrawn, kept = _send(stenant, ssetup, [CUSTOMER, OTHER])
    stop = stenant.client.post(
        ssetup.channel["webhook_url"], json={"id": "in-1", "from": CUSTOMER, "body": "STOP"}
    )
    assert stop.status_code == 200, stop.text

    assert await scripted_container.dispatcher().run_once() == 2

    assert [m.to for m in provider.sent] == [OTHER]
    skipped = _message(stenant, withdrawn)
    assert (skipped["status"], skipped["reason"]) == ("skipped", "consent_withdrawn")
    assert skipped["attempts"] == 0
    assert [s for s, _ in _history(scripted_container, withdrawn)] == [
        "queued",
        "sending",
        "skipped",
    ]
    assert _message(stenant, kept)["status"] == "sent"
    # Nothing is left to claim: the skipped message is final.
    assert await scripted_container.dispatcher().run_once() == 0


@pytest.mark.parametrize("source", ["provider_error", "admin"])
async def test_consent_withdrawn_by_any_source_skips_at_send_time(
    stenant: Tenant,
    ssetup: Setup,
    scripted_container: Container,
    provider: ScriptedProvider,
    clock: FakeClock,
    source: str,
) -> None:
    (message_id,) = _send(stenant, ssetup, [CUSTOMER])
    with scripted_container.db.transaction() as session:
        record_consent(
            session,
            org_id=stenant.org_id,
            channel_id=ssetup.channel["id"],
            number=CUSTOMER,
            opted_out=True,
            source=source,
            detail=None,
            now=clock.now(),
        )
    await scripted_container.dispatcher().run_once()
    assert provider.sent == []
    detail = _message(stenant, message_id)
    assert (detail["status"], detail["reason"], detail["attempts"]) == (
        "skipped",
        "consent_withdrawn",
        0,
    )


async def test_consent_withdrawn_on_another_channel_does_not_skip(
    stenant: Tenant, ssetup: Setup, scripted_container: Container, provider: ScriptedProvider
) -> None:
    other = stenant.post(
        "/v1/channels",
        {"name": "SMS 2", "type": "sms", "provider": "sandbox", "sender": "+15005550007"},
    ).json()
    (message_id,) = _send(stenant, ssetup, [CUSTOMER])
    stenant.client.post(other["webhook_url"], json={"id": "in-1", "from": CUSTOMER, "body": "STOP"})
    await scripted_container.dispatcher().run_once()
    assert [m.to for m in provider.sent] == [CUSTOMER]
    assert _message(stenant, message_id)["status"] == "sent"


async def test_deleting_a_contact_skips_its_queued_messages(
    stenant: Tenant, ssetup: Setup, scripted_container: Container, provider: ScriptedProvider
) -> None:
    created = stenant.post(
        "/v1/contacts", {"name": "Ana", "mobile_phone": CUSTOMER, "consent": {"sms": True}}
    )
    assert created.status_code == 201, created.text
    shared = stenant.post("/v1/contacts", {"name": "Bo", "mobile_phone": OTHER})
    stenant.post("/v1/contacts", {"name": "Bo's partner", "mobile_phone": OTHER})
    deleted_for, kept = _send(stenant, ssetup, [CUSTOMER, OTHER])

    assert stenant.delete(f"/v1/contacts/{created.json()['id']}").status_code == 204
    # Another contact still has this number: its messages stay.
    assert stenant.delete(f"/v1/contacts/{shared.json()['id']}").status_code == 204

    detail = _message(stenant, deleted_for)
    assert (detail["status"], detail["reason"]) == ("skipped", "contact_deleted")
    assert _history(scripted_container, deleted_for)[-1] == ("skipped", "contact_deleted")
    await scripted_container.dispatcher().run_once()
    assert [m.to for m in provider.sent] == [OTHER]
    assert _message(stenant, kept)["status"] == "sent"
    with scripted_container.db.read() as session:
        attempts = session.execute(
            sa.select(Message.attempts).where(Message.id == deleted_for)
        ).scalar_one()
    assert attempts == 0
