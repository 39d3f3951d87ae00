"""Claiming: messages whose lease ran out first, then the queued ones that are due, each in
order of their schedule, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from outbound.adapters.db.models import Message
from outbound.adapters.queue.outbox import Outbox
from outbound.app import Container
from outbound.testing import FakeClock
from tests.helpers import Setup, Tenant, queue_messages

LEASE = timedelta(seconds=30)


def _schedule(container: Container, ids: list[str], clock: FakeClock, ago: float) -> None:
    """Each message due one second after the one before, the first ``ago`` seconds ago."""
    with container.db.transaction() as session:
        for offset, message_id in enumerate(ids):
            session.execute(
                sa.update(Message)
                .where(Message.id == message_id)
                .values(scheduled_at=clock.now() - timedelta(seconds=ago - offset))
            )


async def test_expired_leases_are_claimed_before_queued_messages_each_in_schedule_order(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    outbox = Outbox(container.db)
    early = queue_messages(tenant, setup.config_id, ["+33612340001", "+33612340002"])
    _schedule(container, early, clock, ago=60)
    dead = outbox.claim("dead", 2, clock.now(), LEASE)
    assert {m.id for m in dead} == set(early)
    clock.advance(LEASE.total_seconds() + 1)
    # Queued ones due even earlier (a retry's backoff may leave them so): still after.
    queued = queue_messages(
        tenant, setup.config_id, ["+33612340003", "+33612340004", "+33612340005"]
    )
    _schedule(container, queued, clock, ago=600)
    # A message not yet due is not claimed.
    later = queue_messages(tenant, setup.config_id, ["+33612340006"])
    with container.db.transaction() as session:
        session.execute(
            sa.update(Message)
            .where(Message.id == later[0])
            .values(scheduled_at=clock.now() + timedelta(minutes=5))
        )

    first = outbox.claim("w2", 1, clock.now(), LEASE)
    second = outbox.claim("w2", 2, clock.now(), LEASE)
    rest = outbox.claim("w2", 10, clock.now(), LEASE)

    # The order within one claim is not kept (the rows come back from an UPDATE): what each
    # claim takes is what shows the order.
    assert [(m.id, m.reclaimed, m.attempts) for m in first] == [(early[0], True, 2)]
    assert {m.id: (m.reclaimed, m.attempts) for m in second} == {
        early[1]: (True, 2),
        queued[0]: (False, 1),
    }
    assert {m.id for m in rest} == set(queued[1:])
    assert outbox.claim("w3", 10, clock.now(), LEASE) == []


async def test_after_finding_no_lease_run_out_claims_look_again_only_seconds_later(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    """Looking for run-out leases reads every message being sent: a claim that found none
    spares the claims of the next EXPIRED_LOOK_SECONDS that look."""
    from outbound.adapters.queue.outbox import EXPIRED_LOOK_SECONDS

    outbox = Outbox(container.db)
    stalled = queue_messages(tenant, setup.config_id, ["+33612340001"])
    assert [m.id for m in Outbox(container.db).claim("dead", 1, clock.now(), LEASE)] == stalled
    clock.advance(LEASE.total_seconds())
    assert outbox.claim("w2", 10, clock.now(), LEASE) == []  # the lease ends now: none
    clock.advance(1)
    assert outbox.claim("w2", 10, clock.now(), LEASE) == []  # ran out, not looked at yet
    # Queued messages are claimed meanwhile.
    queued = queue_messages(tenant, setup.config_id, ["+33612340002"])
    assert [m.id for m in outbox.claim("w2", 10, clock.now(), LEASE)] == queued
    clock.advance(EXPIRED_LOOK_SECONDS)
    taken = outbox.claim("w2", 10, clock.now(), LEASE)
    assert [(m.id, m.reclaimed) for m in taken] == [(stalled[0], True)]
    # Another process's claims look for themselves.
    assert Outbox(container.db).claim("w3", 10, clock.now(), LEASE) == []
