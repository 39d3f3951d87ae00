"""An assignment pass that loses the race for an agent (another process filled them between the
pass's read and its write) goes on with the other agents of the queue."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from outbound.adapters.db.models import User
from outbound.app import Container
from outbound.testing import FakeClock
from tests.acceptance.test_agents import conversation_of, customer_writes, make_agent, make_queue
from tests.helpers import Setup, Tenant


def test_a_pass_that_loses_an_agent_assigns_to_another_with_room(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    ana = make_agent(tenant, "Ana", capacity=2)
    bob = make_agent(tenant, "Bob", capacity=1)
    support = make_queue(tenant, "Support", [ana, bob])
    billing = make_queue(tenant, "Billing", [ana])
    rule = tenant.post(
        "/v1/routing-rules",
        {
            "name": "Billing",
            "queue_id": billing["id"],
            "conditions": [{"field": "text", "op": "contains", "value": "invoice"}],
        },
    )
    assert rule.status_code == 201, rule.text
    # Everyone offline while the customers write: all four conversations wait.
    for i, text in enumerate(["Hello?", "Anyone?", "My invoice", "Another invoice"]):
        clock.advance(1)
        customer_writes(tenant, setup, text, number=f"+3361234500{i}")
    # Both come online without the pass that going available starts.
    with container.db.transaction() as session:
        session.execute(
            sa.update(User)
            .where(User.id.in_([ana.id, bob.id]))
            .values(presence="available", last_seen_at=clock.now())
        )

    assignment = container.assignment
    assign = assignment._assign
    raced = False

    def racing_assign(*args: Any, **kwargs: Any) -> Any:
        # Another process fills Ana from the billing queue after this pass read her free.
        nonlocal raced
        if not raced:
            raced = True
            assert assignment.assign_queue(billing["id"]).assigned == 2
        return assign(*args, **kwargs)

    assignment._assign = racing_assign  # type: ignore[method-assign]
    assignment.assign_queue(support["id"])

    first, second = (conversation_of(tenant, f"+3361234500{i}") for i in range(2))
    assert first["assigned_to"] == bob.id  # the longest waiting, to the agent with room
    assert second["status"] == "open"  # nobody has room left
