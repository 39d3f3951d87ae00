"""The routing sweep on both databases: expired offers, unanswered conversations offered again,
wrap-ups ended, wait-time overflow, idle conversations closed, live updates purged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from outbound.adapters.db.models import Message, StreamEvent
from outbound.app import Container
from outbound.testing import FakeClock
from tests.acceptance.test_agents import (
    CUSTOMER,
    conversation_of,
    customer_writes,
    make_agent,
    make_queue,
)
from tests.helpers import Setup, Tenant


def _kinds(conversation: dict[str, Any]) -> list[str]:
    return [h["kind"] for h in conversation["history"]]


def test_an_offer_not_accepted_in_time_goes_to_the_next_agent(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    ana = make_agent(tenant, "Ana")
    bob = make_agent(tenant, "Bob")
    make_queue(tenant, "Support", [ana, bob], offer_timeout_seconds=30)
    ana.available()
    clock.advance(1)
    bob.available()
    customer_writes(tenant, setup)
    first = conversation_of(tenant)["offered_to"]
    assert first in {ana.id, bob.id}
    clock.advance(31)
    for agent in (ana, bob):
        agent.ok("POST", "/v1/users/me/heartbeat")
    result = container.conversation_sweep.sweep()
    assert result.counts.get("offers_expired") == 1
    after = conversation_of(tenant)
    assert after["offered_to"] not in {None, first}
    assert "offer_expired" in _kinds(after)


def test_an_unanswered_conversation_is_offered_again(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    ana = make_agent(tenant, "Ana")
    bob = make_agent(tenant, "Bob")
    make_queue(tenant, "Support", [ana], reassign_after_seconds=60)
    ana.available()
    customer_writes(tenant, setup)
    assert conversation_of(tenant)["assigned_to"] == ana.id
    # Bob joins; Ana does not answer within a minute.
    queue_id = conversation_of(tenant)["queue_id"]
    tenant.client.put(
        f"/v1/queues/{queue_id}/members/{bob.id}", headers=tenant.headers()
    ).raise_for_status()
    bob.available()
    clock.advance(61)
    for agent in (ana, bob):
        agent.ok("POST", "/v1/users/me/heartbeat")
    container.conversation_sweep.sweep()
    after = conversation_of(tenant)
    assert "reassigned" in _kinds(after)
    assert after["assigned_to"] == bob.id


def test_wrap_up_holds_capacity_then_closes(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    ana = make_agent(tenant, "Ana", capacity=1)
    make_queue(tenant, "Support", [ana], wrap_up_seconds=120)
    ana.available()
    customer_writes(tenant, setup, number=CUSTOMER)
    clock.advance(1)
    customer_writes(tenant, setup, number="+33600000001")
    cid = conversation_of(tenant)["id"]
    assert ana.ok("POST", f"/v1/conversations/{cid}/close", {})["status"] == "wrap_up"
    container.conversation_sweep.sweep()
    assert conversation_of(tenant, "+33600000001")["status"] == "open"
    clock.advance(121)
    ana.ok("POST", "/v1/users/me/heartbeat")
    result = container.conversation_sweep.sweep()
    assert result.counts.get("wrap_ups_closed") == 1
    assert conversation_of(tenant)["status"] == "closed"
    assert conversation_of(tenant, "+33600000001")["assigned_to"] == ana.id


def test_waiting_too_long_overflows_once_to_another_queue(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    ana = make_agent(tenant, "Ana")
    backup = make_queue(tenant, "Backup", [ana])
    tenant.patch("/v1/organization", {"fallback_queue_id": backup["id"]})
    front = make_queue(
        tenant,
        "Front",
        [],
        overflow={
            "max_wait_seconds": 300,
            "outside_hours": False,
            "action": "transfer",
            "queue_id": backup["id"],
        },
    )
    tenant.patch("/v1/organization", {"fallback_queue_id": front["id"]})
    ana.available()
    customer_writes(tenant, setup)
    assert conversation_of(tenant)["queue_id"] == front["id"]
    clock.advance(301)
    ana.ok("POST", "/v1/users/me/heartbeat")
    result = container.conversation_sweep.sweep()
    assert result.counts.get("overflowed") == 1
    after = conversation_of(tenant)
    assert (after["queue_id"], after["assigned_to"]) == (backup["id"], ana.id)


def test_an_automatic_reply_out_of_hours(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    template = tenant.post(
        "/v1/templates",
        {
            "name": "closed",
            "channel_type": "sms",
            "default_locale": "en-US",
            "default_text": "We are closed; we answer from 9:00.",
        },
    ).json()
    # FakeClock starts on a Thursday at 09:00 UTC; these hours are Sunday only.
    make_queue(
        tenant,
        "Support",
        [],
        hours={"sun": ["09:00-10:00"]},
        time_zone="UTC",
        overflow={"action": "auto_reply", "template_id": template["id"]},
    )
    customer_writes(tenant, setup)
    with container.db.read() as session:
        bodies = list(
            session.execute(sa.select(Message.body).where(Message.reason == "auto_reply")).scalars()
        )
    assert bodies == ["We are closed; we answer from 9:00."]
    assert "overflowed" in _kinds(conversation_of(tenant))


def test_idle_conversations_close_and_old_live_updates_go(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    make_queue(tenant, "Support", [])
    customer_writes(tenant, setup)
    clock.advance(timedelta(days=31).total_seconds())
    result = container.conversation_sweep.sweep()
    assert result.counts.get("auto_closed") == 1
    assert conversation_of(tenant)["status"] == "closed"
    assert result.counts.get("stream_purged", 0) >= 1
    with container.db.read() as session:
        left = session.execute(sa.select(sa.func.count()).select_from(StreamEvent)).scalar_one()
    assert left >= 1  # the auto-close itself is new
