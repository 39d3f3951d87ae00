"""Retention of bodies and payloads, and erasure of a contact or a number, on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from outbound.adapters.db.models import (
    Contact,
    Conversation,
    ConversationNote,
    Event,
    FlowRunRow,
    InboundMessage,
    Message,
    MessageEvent,
    StreamEvent,
)
from outbound.app import Container, create_app
from outbound.domain.roles import Role
from outbound.services.retention import Retention
from outbound.testing import FakeClock
from tests.acceptance.test_flows import INSTANT, apply
from tests.acceptance.test_reports import _history
from tests.helpers import Setup, Tenant, contact, make_tenant


@pytest.fixture
def stenant(scripted_container: Container) -> Iterator[Tenant]:
    with TestClient(create_app(scripted_container, run_worker=False)) as client:
        yield make_tenant(scripted_container, client)


def _messages(c: Container, org_id: str) -> list[Message]:
    with c.db.read() as session:
        return list(session.execute(sa.select(Message).where(Message.org_id == org_id)).scalars())


async def test_bodies_older_than_the_retention_go_in_batches_and_the_rest_stays(
    stenant: Tenant, scripted_container: Container, clock: FakeClock
) -> None:
    c = scripted_container
    await _history(c, stenant, clock)
    before = stenant.get("/v1/reports/messages", params={"since": "2026-01-15"}).json()
    retention = Retention(c.db, clock, body_retention_days=7, batch=1)
    clock.advance(6 * 86_400)
    assert retention.purge_bodies() == (0, 0)  # not old enough yet
    clock.advance(2 * 86_400)
    cleared, _ = retention.purge_bodies()
    assert cleared >= 2
    messages = _messages(c, stenant.org_id)
    assert all(m.body is None and m.context is None for m in messages)
    assert sorted(m.status for m in messages) == ["delivered", "rejected", "skipped", "undelivered"]
    with c.db.read() as session:
        history = session.execute(sa.select(sa.func.count()).select_from(MessageEvent))
        assert history.scalar_one() > 4
    after = stenant.get("/v1/reports/messages", params={"since": "2026-01-15"}).json()
    assert after["totals"] == before["totals"]
    assert retention.purge_bodies() == (0, 0)
    assert Retention(c.db, clock).purge_bodies() == (0, 0)  # no retention set: nothing


async def test_erasing_a_contact_removes_its_number_bodies_and_replies_everywhere(
    stenant: Tenant, scripted_container: Container, clock: FakeClock
) -> None:
    c = scripted_container
    setup = await _history(c, stenant, clock)
    contact = stenant.post("/v1/contacts", {"name": "Ana", "mobile_phone": "+33612345678"}).json()
    webhook = setup.channel["webhook_url"].replace("http://testserver", "")
    reply = stenant.client.post(
        webhook, json={"id": "in-1", "from": "+33612345678", "to": "+15005550006", "body": "Hi"}
    )
    assert reply.status_code == 200, reply.text
    assert (
        stenant.delete(f"/v1/contacts/{contact['id']}?erase=true", Role.SENDER).status_code == 403
    )
    answer = stenant.delete(f"/v1/contacts/{contact['id']}?erase=true")
    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert "+33612345678" not in str(done)
    assert done["erased"]["messages"] == 1
    assert done["erased"]["inbound_messages"] == 1
    with c.db.read() as session:
        assert session.get(Contact, contact["id"]) is None
        texts = list(session.execute(sa.select(InboundMessage.from_number, InboundMessage.body)))
        assert texts == [("erased", "")]
        kinds = list(session.execute(sa.select(Event.type).order_by(Event.id)).scalars())
        assert kinds[-1] == "contact.erased"
    numbers = [m.to_number for m in _messages(c, stenant.org_id)]
    assert "+33612345678" not in numbers
    assert "+33612345678" not in stenant.get("/v1/messages/export").text


async def test_erasing_a_number(
    stenant: Tenant, scripted_container: Container, clock: FakeClock
) -> None:
    await _history(scripted_container, stenant, clock)
    answer = stenant.post("/v1/erasures", {"phone_number": "+33 6 12 34 56 79"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["erased"]["messages"] == 1
    assert "+33612345679" not in stenant.get("/v1/messages/export").text
    bad = stenant.post("/v1/erasures", {"phone_number": "nope"})
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "phone_number")
    assert (
        stenant.post("/v1/erasures", {"phone_number": "+33612345679"}, Role.SENDER).status_code
        == 403
    )


def test_erasing_a_number_reaches_notes_live_updates_and_flow_run_lists(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    flow = INSTANT.replace("records: contacts", "records: csv").replace(
        "conditions:\n  - field: contact.custom.city\n    op: eq\n    value: Lyon\n", ""
    )
    assert (
        apply(tenant, flow.replace("{contact.custom.order}", "{record.order}")).status_code == 201
    )
    body = (
        "name,mobile_phone,consent_sms,order\r\n"
        "Ana,+33612345678,yes,O-1\r\n"
        "Bo,+33612345679,yes,O-2\r\n"
    )
    started = tenant.post(
        "/v1/flows/weather-delay/runs", content=body.encode(), headers={"Content-Type": "text/csv"}
    )
    assert started.status_code == 202, started.text
    now = clock.now()
    with container.db.transaction() as session:
        conversation = Conversation(
            org_id=tenant.org_id,
            channel_id=setup.channel["id"],
            customer_number="+33612345678",
            created_at=now,
            updated_at=now,
            last_message_at=now,
        )
        session.add(conversation)
        session.flush()
        for text in ("Called +33612345678 back", "Nothing to say"):
            session.add(
                ConversationNote(
                    org_id=tenant.org_id, conversation_id=conversation.id, body=text, created_at=now
                )
            )
        session.add(
            StreamEvent(
                org_id=tenant.org_id,
                kind="message",
                payload={"from": "+33612345678", "body": "Hello", "id": "x"},
                created_at=now,
            )
        )
    request = {"configuration_id": setup.config_id, "contacts": [contact("+33612345678")]}
    keyed = {**tenant.headers(), "Idempotency-Key": "erase-1"}
    sent = tenant.client.post("/v1/outbound/send", json=request, headers=keyed)
    assert sent.status_code == 202, sent.text
    assert sent.json()["results"][0]["to"] == "+33612345678"
    answer = tenant.post("/v1/erasures", {"phone_number": "+33612345678"})
    assert answer.status_code == 200, answer.text
    erased = answer.json()["erased"]
    assert (
        erased["conversation_notes"],
        erased["stream_events"],
        erased["flow_run_rows"],
        erased["send_responses"],
    ) == (1, 1, 1, 1)
    # A replay of the request answers what is kept: without the number.
    replayed = tenant.client.post("/v1/outbound/send", json=request, headers=keyed)
    assert replayed.status_code == 202, replayed.text
    assert replayed.json()["results"][0]["to"] == "erased"
    with container.db.read() as session:
        notes = sorted(session.execute(sa.select(ConversationNote.body)).scalars())
        stream = list(session.execute(sa.select(StreamEvent.payload)).scalars())
        rows = [r.data for r in session.execute(sa.select(FlowRunRow)).scalars()]
    assert notes == ["Called erased back", "Nothing to say"]
    assert "+33612345678" not in str(stream)
    assert {"from": "erased", "body": "", "id": "x"} in stream
    assert "+33612345678" not in str(rows)
    assert "+33612345679" in str(rows)  # the other recipient's row is kept as it was
