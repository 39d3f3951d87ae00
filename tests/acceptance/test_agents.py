"""Agents through the HTTP API: a reply is routed to a queue, assigned to an available agent
within capacity, and answered; lifecycle actions, rules, explanations, notes, canned responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from outbound.adapters.db.models import Conversation, Message
from outbound.app import Container
from outbound.testing import FakeClock
from tests.helpers import Setup, Tenant, contact, make_setup

CUSTOMER = "+33612345678"


def assert_error(
    response: Any, status: int, *, code: str | None = None, field: str | None = None
) -> None:
    """The one JSON error shape, with the status, and the code and field when given."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error
    if field is not None:
        assert error["field"] == field, error


OTHER_CUSTOMER = "+33698765432"


@dataclass
class Agent:
    id: str
    key: str
    tenant: Tenant

    def call(self, method: str, path: str, json: Any = None, **kw: Any) -> Any:
        return self.tenant.client.request(
            method, path, json=json, headers={"Authorization": f"Bearer {self.key}"}, **kw
        )

    def ok(self, method: str, path: str, json: Any = None, status: int = 200) -> Any:
        response = self.call(method, path, json)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def available(self) -> None:
        self.ok("PUT", "/v1/users/me/presence", {"status": "available"})


def make_agent(tenant: Tenant, name: str, role: str = "agent", **fields: Any) -> Agent:
    response = tenant.post(
        "/v1/users",
        {"email": f"{name.lower()}@example.com", "name": name, "role": role, **fields},
    )
    assert response.status_code == 201, response.text
    user_id = response.json()["id"]
    key = tenant.post("/v1/api-keys", {"role": role, "user_id": user_id})
    assert key.status_code == 201, key.text
    return Agent(user_id, key.json()["key"], tenant)


def make_queue(tenant: Tenant, name: str, members: list[Agent], **fields: Any) -> dict[str, Any]:
    response = tenant.post(
        "/v1/queues", {"name": name, "members": [m.id for m in members], **fields}
    )
    assert response.status_code == 201, response.text
    queue: dict[str, Any] = response.json()
    return queue


def customer_writes(
    tenant: Tenant, setup: Setup, text: str = "Hello?", number: str = CUSTOMER, msg_id: str = ""
) -> None:
    payload = {"from": number, "body": text}
    if msg_id:
        payload["id"] = msg_id
    response = tenant.client.post(setup.channel["webhook_url"], json=payload)
    assert response.status_code == 200, response.text


def conversation_of(tenant: Tenant, number: str = CUSTOMER) -> dict[str, Any]:
    page = tenant.get("/v1/conversations", params={"customer_number": number}).json()["data"]
    assert page, f"no conversation for {number}"
    conversation_id = page[0]["id"]
    body: dict[str, Any] = tenant.get(f"/v1/conversations/{conversation_id}").json()
    return body


def test_a_reply_is_routed_to_the_fallback_queue_and_assigned_to_the_available_agent(
    tenant: Tenant, setup: Setup
) -> None:
    ana = make_agent(tenant, "Ana")
    queue = make_queue(tenant, "Support", [ana])
    assert queue["fallback"] is True
    ana.available()
    customer_writes(tenant, setup, "Merci !")
    conversation = conversation_of(tenant)
    assert conversation["status"] == "active"
    assert conversation["queue_id"] == queue["id"]
    assert conversation["assigned_to"] == ana.id
    kinds = [h["kind"] for h in conversation["history"]]
    assert kinds[:3] == ["opened", "routed", "assigned"]
    mine = ana.ok("GET", "/v1/conversations?assigned_to=me")["data"]
    assert [c["id"] for c in mine] == [conversation["id"]]


def test_an_offline_agent_gets_nothing_until_available(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    ana = make_agent(tenant, "Ana")
    make_queue(tenant, "Support", [ana])
    customer_writes(tenant, setup)
    assert conversation_of(tenant)["status"] == "open"
    ana.available()
    assert conversation_of(tenant)["assigned_to"] == ana.id


def test_capacity_is_never_exceeded(tenant: Tenant, setup: Setup, clock: FakeClock) -> None:
    ana = make_agent(tenant, "Ana", capacity=2)
    make_queue(tenant, "Support", [ana])
    ana.available()
    numbers = [f"+3361234560{i}" for i in range(4)]
    for number in numbers:
        clock.advance(1)
        customer_writes(tenant, setup, number=number)
    statuses = [conversation_of(tenant, n)["status"] for n in numbers]
    assert statuses.count("active") == 2
    assert statuses.count("open") == 2
    # Answering frees a unit: the longest-waiting conversation comes next.
    first = conversation_of(tenant, numbers[0])
    ana.ok("POST", f"/v1/conversations/{first['id']}/messages", {"body": "On it"}, status=202)
    assert conversation_of(tenant, numbers[0])["status"] == "waiting"
    ana.ok("POST", f"/v1/conversations/{first['id']}/close", {})
    assert conversation_of(tenant, numbers[2])["assigned_to"] == ana.id
    assert conversation_of(tenant, numbers[3])["status"] == "open"


def test_highest_capacity_spreads_and_round_robin_alternates(tenant: Tenant, setup: Setup) -> None:
    ana = make_agent(tenant, "Ana", capacity=5)
    bob = make_agent(tenant, "Bob", capacity=5)
    make_queue(tenant, "Support", [ana, bob], assignment_method="round_robin")
    ana.available()
    bob.available()
    for i in range(6):
        customer_writes(tenant, setup, number=f"+3361234561{i}")
    owners = [conversation_of(tenant, f"+3361234561{i}")["assigned_to"] for i in range(6)]
    assert owners.count(ana.id) == 3
    assert owners.count(bob.id) == 3


def test_routing_rules_pick_the_queue_and_explain_it(tenant: Tenant, setup: Setup) -> None:
    ana = make_agent(tenant, "Ana", skills=["billing"])
    bob = make_agent(tenant, "Bob")
    support = make_queue(tenant, "Support", [bob])
    billing = make_queue(tenant, "Billing", [ana])
    rule = tenant.post(
        "/v1/routing-rules",
        {
            "name": "Invoices",
            "queue_id": billing["id"],
            "conditions": [{"field": "text", "op": "contains", "value": "facture"}],
            "required_skills": ["billing"],
        },
    )
    assert rule.status_code == 201, rule.text
    ana.available()
    bob.available()
    customer_writes(tenant, setup, "Ma FACTURE est fausse", number=CUSTOMER)
    customer_writes(tenant, setup, "Where is my parcel?", number=OTHER_CUSTOMER)
    billed = conversation_of(tenant, CUSTOMER)
    other = conversation_of(tenant, OTHER_CUSTOMER)
    assert (billed["queue_id"], billed["assigned_to"]) == (billing["id"], ana.id)
    assert (other["queue_id"], other["assigned_to"]) == (support["id"], bob.id)
    why = tenant.get(f"/v1/conversations/{billed['id']}/routing").json()
    assert why["routing"]["rule"]["id"] == rule.json()["id"]
    assert {a["user_id"]: a["chosen"] for a in why["agents"]} == {ana.id: True}
    simulated = tenant.post(
        "/v1/routing/simulate",
        {"channel_id": setup.channel["id"], "from": OTHER_CUSTOMER, "text": "une facture"},
    )
    assert simulated.status_code == 200, simulated.text
    assert simulated.json()["routing"]["queue_id"] == billing["id"]


def test_bad_rules_are_422_naming_the_condition(tenant: Tenant, setup: Setup) -> None:
    queue = make_queue(tenant, "Support", [])
    response = tenant.post(
        "/v1/routing-rules",
        {
            "name": "Bad",
            "queue_id": queue["id"],
            "conditions": [{"field": "text", "op": "contains", "value": "x"}, {"field": "nope"}],
        },
    )
    assert_error(response, 422, field="conditions[1].field")
    missing = tenant.post("/v1/routing-rules", {"name": "No queue", "queue_id": "nope"})
    assert_error(missing, 422, field="queue_id")


def test_offers_must_be_accepted_and_three_declines_skip_an_agent(
    tenant: Tenant, setup: Setup
) -> None:
    ana = make_agent(tenant, "Ana")
    make_queue(tenant, "Support", [ana], offer_timeout_seconds=60)
    ana.available()
    customer_writes(tenant, setup)
    conversation = conversation_of(tenant)
    assert (conversation["status"], conversation["offered_to"]) == ("open", ana.id)
    for _ in range(2):
        ana.ok("POST", f"/v1/conversations/{conversation['id']}/decline", {"reason": "busy"})
        assert conversation_of(tenant)["offered_to"] == ana.id
    ana.ok("POST", f"/v1/conversations/{conversation['id']}/decline", {})
    after = conversation_of(tenant)
    assert (after["status"], after["offered_to"]) == ("open", None)


def test_accept_transfer_snooze_close_reopen(
    tenant: Tenant, setup: Setup, clock: FakeClock, container: Container
) -> None:
    ana = make_agent(tenant, "Ana")
    bob = make_agent(tenant, "Bob")
    make_queue(tenant, "Support", [ana], offer_timeout_seconds=60)
    ana.available()
    bob.available()
    customer_writes(tenant, setup)
    cid = conversation_of(tenant)["id"]
    assert ana.ok("POST", f"/v1/conversations/{cid}/accept")["status"] == "active"
    # Bob may not act on Ana's conversation; a supervisor may.
    assert bob.call("POST", f"/v1/conversations/{cid}/close", {}).status_code == 403
    moved = ana.ok("POST", f"/v1/conversations/{cid}/transfer", {"user_id": bob.id})
    assert moved["assigned_to"] == bob.id
    until = (clock.now().replace(microsecond=0)).isoformat().replace("+00:00", "Z")
    assert_error(bob.call("POST", f"/v1/conversations/{cid}/snooze", {"until": until}), 422)
    clock.advance(1)
    later = clock.now().replace(microsecond=0)
    from datetime import timedelta

    snooze_until = (later + timedelta(hours=1)).isoformat()
    snoozed = bob.ok("POST", f"/v1/conversations/{cid}/snooze", {"until": snooze_until})
    assert snoozed["status"] == "waiting"
    clock.advance(3601)
    container.conversation_sweep.sweep()
    assert conversation_of(tenant)["status"] == "active"
    closed = bob.ok("POST", f"/v1/conversations/{cid}/close", {})
    assert closed["status"] == "closed"
    assert_error(bob.call("POST", f"/v1/conversations/{cid}/close", {}), 409)
    reopened = bob.ok("POST", f"/v1/conversations/{cid}/reopen")
    assert reopened["status"] in {"open", "active"}
    kinds = [h["kind"] for h in conversation_of(tenant)["history"]]
    for kind in ("accepted", "transferred", "snoozed", "woke", "closed", "reopened"):
        assert kind in kinds


def test_the_agent_answer_goes_through_the_outbox_and_is_delivered(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    ana = make_agent(tenant, "Ana")
    make_queue(tenant, "Support", [ana])
    ana.available()
    customer_writes(tenant, setup, "Bonjour")
    cid = conversation_of(tenant)["id"]
    answer = ana.ok(
        "POST", f"/v1/conversations/{cid}/messages", {"body": "Bonjour, j'arrive"}, status=202
    )
    assert answer["encoding"] == "GSM-7"
    assert answer["segments"] == 1
    with container.db.read() as session:
        message = session.get(Message, answer["message_id"])
        assert message is not None
        assert (message.to_number, message.conversation_id) == (CUSTOMER, cid)
        assert message.sent_by_user_id == ana.id
        assert message.from_number == setup.channel["sender"]
    thread = conversation_of(tenant)
    assert thread["status"] == "waiting"
    assert thread["first_response_at"] is not None
    assert [m["direction"] for m in thread["messages"]] == ["inbound", "outbound"]
    # The customer writes again: the same agent has it back.
    customer_writes(tenant, setup, "Merci")
    back = conversation_of(tenant)
    assert (back["status"], back["assigned_to"]) == ("active", ana.id)


def test_only_the_assignee_or_a_supervisor_answers(tenant: Tenant, setup: Setup) -> None:
    ana = make_agent(tenant, "Ana")
    bob = make_agent(tenant, "Bob")
    boss = make_agent(tenant, "Boss", role="supervisor")
    make_queue(tenant, "Support", [ana])
    ana.available()
    customer_writes(tenant, setup)
    cid = conversation_of(tenant)["id"]
    assert_error(bob.call("POST", f"/v1/conversations/{cid}/messages", {"body": "hi"}), 403)
    boss.ok("POST", f"/v1/conversations/{cid}/messages", {"body": "hi"}, status=202)
    assert_error(ana.call("POST", f"/v1/conversations/{cid}/messages", {}), 422, field="body")


def test_a_withdrawn_number_is_refused_with_the_reason(tenant: Tenant, setup: Setup) -> None:
    ana = make_agent(tenant, "Ana")
    make_queue(tenant, "Support", [ana])
    ana.available()
    customer_writes(tenant, setup, "Bonjour")
    cid = conversation_of(tenant)["id"]
    customer_writes(tenant, setup, "STOP")
    response = ana.call("POST", f"/v1/conversations/{cid}/messages", {"body": "hello?"})
    assert_error(response, 409, code="consent_withdrawn")


async def test_notes_are_never_sent_and_canned_responses_are_filled(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    ana = make_agent(tenant, "Ana")
    make_queue(tenant, "Support", [ana])
    ana.available()
    sent = tenant.post(
        "/v1/outbound/send",
        {"configuration_id": setup.config_id, "contacts": [contact(CUSTOMER)]},
    )
    assert sent.status_code == 202, sent.text
    await container.dispatcher().run_once()
    customer_writes(tenant, setup, "Merci")
    cid = conversation_of(tenant)["id"]
    ana.ok("POST", f"/v1/conversations/{cid}/notes", {"body": "VIP customer"}, status=201)
    canned = tenant.post(
        "/v1/canned-responses",
        {"shortcode": "thanks", "body": "Merci {CustomerName}, {AgentName} vous répond."},
    )
    assert canned.status_code == 201, canned.text
    assert_error(tenant.post("/v1/canned-responses", {"shortcode": "thanks", "body": "x"}), 409)
    rendered = ana.ok("GET", f"/v1/conversations/{cid}/canned-responses/thanks")
    assert rendered["text"] == "Merci Ana, Ana vous répond."
    thread = conversation_of(tenant)
    assert [n["body"] for n in thread["notes"]] == ["VIP customer"]
    assert thread["answered"] is not None
    with container.db.read() as session:
        bodies = list(session.execute(sa.select(Message.body)).scalars())
    assert "VIP customer" not in bodies


def test_queues_in_use_cannot_be_deleted(tenant: Tenant, setup: Setup) -> None:
    support = make_queue(tenant, "Support", [])
    other = make_queue(tenant, "Other", [])
    assert_error(tenant.delete(f"/v1/queues/{support['id']}"), 409)
    assert tenant.patch("/v1/organization", {"fallback_queue_id": other["id"]}).status_code == 200
    assert tenant.delete(f"/v1/queues/{support['id']}").status_code == 204


def test_other_organisations_conversations_and_queues_are_out_of_reach(
    tenant: Tenant, other_tenant: Tenant, setup: Setup
) -> None:
    ana = make_agent(tenant, "Ana")
    queue = make_queue(tenant, "Support", [ana])
    ana.available()
    customer_writes(tenant, setup)
    cid = conversation_of(tenant)["id"]
    intruder = make_agent(other_tenant, "Eve", role="supervisor")
    assert intruder.call("GET", f"/v1/conversations/{cid}").status_code == 404
    assert intruder.call("POST", f"/v1/conversations/{cid}/close", {}).status_code == 404
    assert intruder.call("GET", f"/v1/queues/{queue['id']}").status_code == 404
    added = other_tenant.post("/v1/queues", {"name": "Mine", "members": [ana.id]})
    assert_error(added, 422, field="members[0]")


@pytest.mark.parametrize("reopen", [False, True])
def test_a_message_after_closing_opens_a_new_conversation_or_reopens(
    tenant: Tenant, setup: Setup, reopen: bool
) -> None:
    ana = make_agent(tenant, "Ana")
    make_queue(tenant, "Support", [ana])
    ana.available()
    tenant.patch("/v1/organization", {"reopen_closed": reopen})
    customer_writes(tenant, setup, "one")
    first = conversation_of(tenant)["id"]
    ana.ok("POST", f"/v1/conversations/{first}/close", {})
    customer_writes(tenant, setup, "two")
    page = tenant.get("/v1/conversations", params={"customer_number": CUSTOMER}).json()["data"]
    assert len(page) == (1 if reopen else 2)
    latest = conversation_of(tenant)
    # Affinity: the agent who had the customer gets them back.
    assert latest["assigned_to"] == ana.id


def test_conversation_rows_carry_a_version_for_compare_and_set(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    ana = make_agent(tenant, "Ana")
    make_queue(tenant, "Support", [ana])
    customer_writes(tenant, setup)
    ana.available()
    with container.db.read() as session:
        versions = list(session.execute(sa.select(Conversation.version)).scalars())
    assert versions and versions[0] > 1


async def test_a_conversation_opened_on_send_is_routed_when_the_customer_answers(
    tenant: Tenant, container: Container
) -> None:
    setup = make_setup(tenant)
    tenant.patch(
        f"/v1/outbound-configurations/{setup.config_id}", {"conversation_mode": "on_send"}
    ).raise_for_status()
    ana = make_agent(tenant, "Ana")
    make_queue(tenant, "Support", [ana])
    ana.available()
    sent = tenant.post(
        "/v1/outbound/send",
        {"configuration_id": setup.config_id, "contacts": [contact(CUSTOMER)]},
    )
    assert sent.status_code == 202, sent.text
    await container.dispatcher().run_once()
    before = conversation_of(tenant)
    assert before["assigned_to"] is None
    customer_writes(tenant, setup, "Merci")
    after = conversation_of(tenant)
    assert after["id"] == before["id"]
    assert (after["status"], after["assigned_to"]) == ("active", ana.id)


def test_whatsapp_free_text_only_within_24_hours_then_an_approved_template(
    tenant: Tenant, clock: FakeClock, container: Container
) -> None:
    channel = tenant.post(
        "/v1/channels",
        {"name": "WA", "type": "whatsapp", "provider": "sandbox", "sender": "+15005550006"},
    ).json()
    approved = tenant.post(
        "/v1/templates",
        {
            "name": "Follow-up",
            "channel_type": "whatsapp",
            "default_locale": "fr-FR",
            "default_text": "Bonjour, {AgentName} revient vers vous.",
            "content_sid": "HX0123456789abcdef0123456789abcdef",
        },
    )
    assert approved.status_code == 201, approved.text
    ana = make_agent(tenant, "Ana")
    make_queue(tenant, "Support", [ana])
    ana.available()
    response = tenant.client.post(
        channel["webhook_url"], json={"from": f"whatsapp:{CUSTOMER}", "body": "Allô ?"}
    )
    assert response.status_code == 200, response.text
    cid = conversation_of(tenant)["id"]
    ana.ok("POST", f"/v1/conversations/{cid}/messages", {"body": "Oui ?"}, status=202)
    clock.advance(25 * 3600)
    ana.ok("POST", "/v1/users/me/heartbeat")
    late = ana.call("POST", f"/v1/conversations/{cid}/messages", {"body": "Toujours là ?"})
    assert_error(late, 409, code="outside_whatsapp_window")
    assert late.json()["error"]["templates"] == [{"id": approved.json()["id"], "name": "Follow-up"}]
    sent = ana.ok(
        "POST",
        f"/v1/conversations/{cid}/messages",
        {"template_id": approved.json()["id"]},
        status=202,
    )
    assert sent["body"] == "Bonjour, Ana revient vers vous."
    with container.db.read() as session:
        message = session.get(Message, sent["message_id"])
        assert message is not None
        assert message.send_as_template is True
