"""The event stream on both databases: live updates in order, what a reconnecting client missed
(Last-Event-ID), a reset for a client away too long, and who sees what."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from outbound.app import Container
from outbound.domain.public_ids import IdKind, decode_public_id
from outbound.services.conversation_log import publish
from outbound.services.public_ids import org_id_key
from outbound.services.stream import StreamHub, Subscriber
from outbound.testing import FakeClock
from tests.acceptance.test_agents import conversation_of, customer_writes, make_agent, make_queue
from tests.helpers import Setup, Tenant


async def _events(
    stream: AsyncIterator[str], until: str, limit: float = 10.0
) -> list[dict[str, Any]]:
    """Parsed events up to and including the first of kind ``until``."""
    found: list[dict[str, Any]] = []
    while True:
        text = await asyncio.wait_for(anext(stream), timeout=limit)
        if text.startswith(":"):
            continue
        fields = dict(line.split(": ", 1) for line in text.strip().split("\n"))
        event: dict[str, Any] = {"id": fields.get("id"), "event": fields["event"]}
        event["data"] = json.loads(fields["data"])
        found.append(event)
        if event["event"] == until:
            return found


def _number(container: Container, org_id: str, public: str) -> int:
    number = decode_public_id(org_id_key(container.db, org_id), IdKind.UPDATE, public)
    assert number is not None, public
    return number


async def test_live_updates_then_what_a_reconnecting_client_missed(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    ana = make_agent(tenant, "Ana")
    make_queue(tenant, "Support", [ana])
    hub = container.stream
    watcher = Subscriber(org_id=tenant.org_id, user_id=None, sees_all=True)
    live = hub.events(watcher, None, heartbeat=0.2)
    assert await anext(live) == ": connected\n\n"
    ana.available()
    customer_writes(tenant, setup, "Bonjour")
    seen = await _events(live, "conversation.assigned")
    kinds = [e["event"] for e in seen]
    assert kinds[0] == "presence"
    assert kinds[-3:] == ["conversation.opened", "conversation.routed", "conversation.assigned"]
    numbers = [_number(container, tenant.org_id, e["id"]) for e in seen]
    assert numbers == sorted(numbers)
    assigned = seen[-1]["data"]
    assert assigned["assigned_to"] == ana.id
    assert assigned["conversation_id"] == conversation_of(tenant)["id"]
    await live.aclose()

    # Away since the presence change: the reconnection replays the rest, in order.
    back = hub.events(Subscriber(org_id=tenant.org_id, user_id=None, sees_all=True), numbers[0])
    replayed = await _events(back, "conversation.assigned")
    assert [e["id"] for e in replayed] == [e["id"] for e in seen[1:]]
    await back.aclose()


async def test_a_client_away_longer_than_the_retention_is_told_to_reload(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    ana = make_agent(tenant, "Ana")
    make_queue(tenant, "Support", [ana])
    ana.available()
    customer_writes(tenant, setup)
    clock.advance(2 * 3600)
    container.conversation_sweep.sweep()
    ana.available()
    stream = container.stream.events(
        Subscriber(org_id=tenant.org_id, user_id=None, sees_all=True), 1
    )
    assert (await anext(stream)).startswith("event: reset")
    await stream.aclose()


async def test_other_organisations_see_nothing(
    tenant: Tenant, other_tenant: Tenant, setup: Setup, container: Container
) -> None:
    ana = make_agent(tenant, "Ana")
    make_queue(tenant, "Support", [ana])
    outsider = container.stream.events(
        Subscriber(org_id=other_tenant.org_id, user_id=None, sees_all=True), 0, heartbeat=0.2
    )
    ana.available()
    customer_writes(tenant, setup)
    texts = []
    for _ in range(3):
        texts.append(await asyncio.wait_for(anext(outsider), timeout=5))
    assert all(text.startswith(":") for text in texts), texts
    await outsider.aclose()


def test_the_stream_endpoint_needs_a_key_and_a_valid_last_event_id(tenant: Tenant) -> None:
    assert tenant.client.get("/v1/stream").status_code == 401
    response = tenant.get("/v1/stream", headers={**tenant.headers(), "Last-Event-ID": "abc"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "Last-Event-ID"


async def test_stream_ids_are_the_organisations_own(
    tenant: Tenant, other_tenant: Tenant, setup: Setup, container: Container
) -> None:
    """An update's id is not its row number, and another organisation cannot resume from it."""
    ana = make_agent(tenant, "Ana")
    make_queue(tenant, "Support", [ana])
    live = container.stream.events(
        Subscriber(org_id=tenant.org_id, user_id=None, sees_all=True), None, heartbeat=0.2
    )
    assert await anext(live) == ": connected\n\n"
    ana.available()
    (event,) = await _events(live, "presence")
    await live.aclose()
    assert event["id"].startswith("upd_")
    assert str(_number(container, tenant.org_id, event["id"])) not in event["id"]
    theirs = {**other_tenant.headers(), "Last-Event-ID": event["id"]}
    response = other_tenant.get("/v1/stream", headers=theirs)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "Last-Event-ID"
    response = other_tenant.get(f"/v1/stream?after={event['id']}")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "after"


async def test_an_answers_delivery_is_told_on_the_stream(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    ana = make_agent(tenant, "Ana")
    make_queue(tenant, "Support", [ana])
    ana.available()
    customer_writes(tenant, setup)
    cid = conversation_of(tenant)["id"]
    hub = container.stream
    watcher = hub.events(Subscriber(org_id=tenant.org_id, user_id=None, sees_all=True), None)
    assert await anext(watcher) == ": connected\n\n"
    answer = ana.ok("POST", f"/v1/conversations/{cid}/messages", {"body": "Hello"}, status=202)
    await container.dispatcher().run_once()
    await container.providers["sandbox"].drain()  # type: ignore[attr-defined]
    seen = await _events(watcher, "message.status")
    status = seen[-1]["data"]
    assert (status["message_id"], status["conversation_id"]) == (answer["message_id"], cid)
    assert status["status"] in {"delivered", "sent"}
    await watcher.aclose()


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_on_postgresql_notify_wakes_the_reader_before_its_next_poll(
    tenant: Tenant, container: Container
) -> None:
    hub = StreamHub(container.db, poll_interval=30)
    stream = hub.events(Subscriber(org_id=tenant.org_id, user_id=None, sees_all=True), None)
    assert await anext(stream) == ": connected\n\n"
    await asyncio.sleep(0.5)  # the listener's connection is up
    with container.db.transaction() as session:
        publish(session, tenant.org_id, "presence", {"user_id": "u"}, container.clock.now())
    text = await asyncio.wait_for(anext(stream), timeout=5)
    assert text.startswith("id: ") and "event: presence" in text
    await stream.aclose()
    await hub.aclose()
