"""Random sequences of customer messages, presence changes, accepts, declines, transfers,
answers, closes and the passing of time, driven through the real API and database; after every
step the guarantees hold: never assigned twice, never over capacity, never to someone offline
or outside the queue."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outbound.adapters.db.models import Conversation, ConversationEvent
from outbound.app import Container
from outbound.testing import FakeClock
from tests.acceptance.test_agents import Agent, make_agent, make_queue
from tests.helpers import Tenant, make_setup, make_tenant

AGENTS = 3
CUSTOMERS = 6

step = st.one_of(
    st.tuples(st.just("write"), st.integers(0, CUSTOMERS - 1)),
    st.tuples(
        st.just("presence"),
        st.integers(0, AGENTS - 1),
        st.sampled_from(["available", "away", "offline"]),
    ),
    st.tuples(st.just("accept"), st.integers(0, AGENTS - 1), st.integers(0, CUSTOMERS - 1)),
    st.tuples(st.just("decline"), st.integers(0, AGENTS - 1), st.integers(0, CUSTOMERS - 1)),
    st.tuples(st.just("answer"), st.integers(0, AGENTS - 1), st.integers(0, CUSTOMERS - 1)),
    st.tuples(st.just("close"), st.integers(0, AGENTS - 1), st.integers(0, CUSTOMERS - 1)),
    st.tuples(
        st.just("transfer"),
        st.integers(0, AGENTS - 1),
        st.integers(0, CUSTOMERS - 1),
        st.integers(0, AGENTS - 1),
    ),
    st.tuples(st.just("wait"), st.sampled_from([5, 40, 130, 700])),
)


def _number(index: int) -> str:
    return f"+3361000000{index}"


def _check(
    container: Container, org_id: str, agents: list[Agent], online: dict[str, bool], seen: int
) -> int:
    """Assert the guarantees; returns the last conversation event looked at."""
    capacity = {a.id: 2 for a in agents}
    with container.db.read() as session:
        rows = list(
            session.execute(sa.select(Conversation).where(Conversation.org_id == org_id)).scalars()
        )
        events = list(
            session.execute(
                sa.select(ConversationEvent)
                .where(ConversationEvent.org_id == org_id, ConversationEvent.id > seen)
                .order_by(ConversationEvent.id)
            ).scalars()
        )
    used: dict[str, int] = defaultdict(int)
    live_per_customer: dict[str, int] = defaultdict(int)
    for c in rows:
        if c.status != "closed":
            live_per_customer[c.customer_number] += 1
        if c.status == "open":
            assert c.assigned_to is None, f"open conversation {c.id} has an assignee"
            if c.offered_to:
                used[c.offered_to] += 1
        if c.status == "active":
            assert c.assigned_to in capacity, f"active conversation {c.id}: {c.assigned_to}"
            used[c.assigned_to] += 1
    for agent_id, count in used.items():
        assert count <= capacity[agent_id], f"agent {agent_id} holds {count}"
    # One live conversation per customer: never two threads for one person.
    assert all(n == 1 for n in live_per_customer.values()), live_per_customer
    # What the system handed out in this step went to agents online now (presence only
    # changes by the steps themselves, and a step going offline triggers no assignment).
    for event in events:
        if event.kind in {"assigned", "offered"} and event.actor_user_id is None:
            assert event.to_user_id is not None
            assert online[event.to_user_id], f"{event.kind} to offline {event.to_user_id}"
    return events[-1].id if events else seen


def _conversation(tenant: Tenant, index: int) -> dict[str, Any] | None:
    page = tenant.get(
        "/v1/conversations",
        params={"customer_number": _number(index), "status": "open,active,waiting,wrap_up"},
    ).json()["data"]
    return page[0] if page else None


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=5, max_size=30), offers=st.booleans())
def test_random_sequences_keep_the_guarantees(
    container: Container, client: TestClient, clock: FakeClock, steps: list[Any], offers: bool
) -> None:
    tenant = make_tenant(container, client, f"org-{uuid.uuid4().hex[:8]}")
    setup = make_setup(tenant)
    agents = [
        make_agent(tenant, f"Agent{i}{uuid.uuid4().hex[:4]}", capacity=2) for i in range(AGENTS)
    ]
    fields: dict[str, Any] = {"offer_timeout_seconds": 30} if offers else {}
    make_queue(tenant, "Support", agents, reassign_after_seconds=600, **fields)
    online = {a.id: False for a in agents}
    seen = 0
    for op in steps:
        kind = op[0]
        if kind == "write":
            response = client.post(
                setup.channel["webhook_url"], json={"from": _number(op[1]), "body": "hello"}
            )
            assert response.status_code == 200, response.text
        elif kind == "presence":
            agent = agents[op[1]]
            agent.ok("PUT", "/v1/users/me/presence", {"status": op[2]})
            online[agent.id] = op[2] == "available"
        elif kind == "wait":
            clock.advance(op[1])
            for agent in agents:
                if online[agent.id]:
                    agent.ok("POST", "/v1/users/me/heartbeat")
            container.conversation_sweep.sweep()
        else:
            agent = agents[op[1]]
            conversation = _conversation(tenant, op[2])
            if conversation is None:
                continue
            path = f"/v1/conversations/{conversation['id']}"
            if kind == "accept":
                response = agent.call("POST", f"{path}/accept")
            elif kind == "decline":
                response = agent.call("POST", f"{path}/decline", {})
            elif kind == "answer":
                response = agent.call("POST", f"{path}/messages", {"body": "ok"})
            elif kind == "close":
                response = agent.call("POST", f"{path}/close", {})
            else:
                response = agent.call("POST", f"{path}/transfer", {"user_id": agents[op[3]].id})
            # Refusals are fine (not yours, wrong state, no room); errors are not.
            assert response.status_code < 500, response.text
            assert response.status_code in {200, 202, 403, 409, 422}, response.text
        seen = _check(container, tenant.org_id, agents, online, seen)
