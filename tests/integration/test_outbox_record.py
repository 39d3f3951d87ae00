"""Recording a batch's outcomes: each message its own values, in one statement, and only the
messages still under the worker's lease, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from outbound.adapters.db.models import Message, MessageEvent, MessageRollup
from outbound.adapters.queue.outbox import Outbox, Outcome
from outbound.app import Container
from outbound.domain.statuses import MessageStatus
from outbound.testing import FakeClock
from tests.helpers import Setup, Tenant, contact

LEASE = timedelta(seconds=30)


def _queue(tenant: Tenant, setup: Setup, count: int) -> list[str]:
    response = tenant.post(
        "/v1/outbound/send",
        {
            "configuration_id": setup.config_id,
            "contacts": [contact(f"+3361234{i:04d}") for i in range(count)],
        },
    )
    assert response.status_code == 202, response.text
    return [r["message_id"] for r in response.json()["results"]]


def _rows(container: Container, ids: list[str]) -> dict[str, Message]:
    with container.db.read() as session:
        return {
            m.id: m
            for m in session.execute(sa.select(Message).where(Message.id.in_(ids))).scalars()
        }


def _moves(container: Container, ids: list[str], at: datetime) -> list[tuple[str, str, str | None]]:
    """The history rows the record at ``at`` wrote."""
    with container.db.read() as session:
        return [
            (row.message_id, row.status, row.error_code)
            for row in session.execute(
                sa.select(MessageEvent.message_id, MessageEvent.status, MessageEvent.error_code)
                .where(MessageEvent.message_id.in_(ids), MessageEvent.occurred_at == at)
                .order_by(MessageEvent.id)
            )
        ]


async def test_a_batch_of_mixed_outcomes_writes_each_its_own_values_in_one_statement(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    ids = _queue(tenant, setup, 6)
    outbox = Outbox(container.db, status_check_after=timedelta(minutes=5))
    claimed = outbox.claim("w1", 10, clock.now(), LEASE)
    assert {m.id for m in claimed} == set(ids)
    before = {m.id: m for m in _rows(container, ids).values()}
    sent, failover, failed, retry, deferred, skipped = ids
    now = clock.now() + timedelta(seconds=1)
    retry_at = now + timedelta(seconds=7)
    outcomes = [
        Outcome(sent, MessageStatus.SENT, provider_message_id="SM1"),
        Outcome(
            failover,
            MessageStatus.SENT,
            provider_message_id="SM2",
            sent_via_channel_id="ch-2",
            provider="other",
            from_number="+15550001",
        ),
        Outcome(failed, MessageStatus.FAILED, error_code="21211", error_message="bad number"),
        Outcome(
            retry, MessageStatus.QUEUED, error_code="503", error_message="busy", retry_at=retry_at
        ),
        # NULLs in every optional column but the retry time.
        Outcome(deferred, MessageStatus.QUEUED, retry_at=now, refund_attempt=True),
        Outcome(skipped, MessageStatus.SKIPPED, reason="consent_withdrawn"),
    ]
    assert outbox.record("w1", outcomes, now) == 6

    rows = _rows(container, ids)
    for row in rows.values():
        assert row.worker_id is None and row.lease_until is None
        assert row.updated_at == now
    assert (rows[sent].status, rows[sent].provider_message_id) == ("sent", "SM1")
    assert rows[sent].status_check_at == now + timedelta(minutes=5)
    assert rows[sent].sent_via_channel_id is None
    assert rows[sent].provider == before[sent].provider  # kept: coalesced with NULL
    assert rows[sent].from_number == before[sent].from_number
    assert rows[sent].scheduled_at == before[sent].scheduled_at
    assert rows[sent].attempts == 1
    assert (rows[failover].sent_via_channel_id, rows[failover].provider) == ("ch-2", "other")
    assert rows[failover].from_number == "+15550001"
    assert (rows[failed].status, rows[failed].error_code) == ("failed", "21211")
    assert rows[failed].error_message == "bad number"
    assert rows[failed].status_check_at is None
    assert rows[failed].provider_message_id is None
    assert (rows[retry].status, rows[retry].scheduled_at) == ("queued", retry_at)
    assert (rows[retry].error_code, rows[retry].attempts) == ("503", 1)
    assert (rows[deferred].status, rows[deferred].scheduled_at) == ("queued", now)
    assert (rows[deferred].attempts, rows[deferred].error_code) == (0, None)
    assert (rows[skipped].status, rows[skipped].reason) == ("skipped", "consent_withdrawn")

    # The history and the rollups count each move once.
    assert sorted(_moves(container, ids, now)) == sorted(
        [
            (sent, "sent", None),
            (failover, "sent", None),
            (failed, "failed", "21211"),
            (retry, "queued", "503"),
            (deferred, "queued", None),
            (skipped, "skipped", None),
        ]
    )
    with container.db.read() as session:
        counted = session.execute(
            sa.select(sa.func.sum(MessageRollup.sent), sa.func.sum(MessageRollup.failed)).where(
                MessageRollup.period == "day"
            )
        ).one()
    assert tuple(counted) == (2, 1)
    # Due again: the retry when its time comes, the deferred one at once.
    assert {m.id for m in outbox.claim("w2", 10, now, LEASE)} == {deferred}


async def test_a_record_writes_only_the_messages_still_under_the_workers_lease(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    mine, taken, stranger = _queue(tenant, setup, 3)
    outbox = Outbox(container.db)
    outbox.claim("w1", 2, clock.now(), LEASE)
    later = clock.now() + LEASE + timedelta(seconds=1)
    with container.db.transaction() as session:
        session.execute(
            sa.update(Message).where(Message.id == taken).values(worker_id="w2"),
        )
        session.execute(
            sa.update(Message)
            .where(Message.id == stranger)
            .values(status="sending", worker_id="w3", lease_until=later)
        )
    outcomes = [Outcome(m, MessageStatus.SENT, provider_message_id=m) for m in (mine, taken)]
    outcomes.append(Outcome(stranger, MessageStatus.FAILED, error_code="x"))
    now = clock.now() + timedelta(seconds=1)
    assert outbox.record("w1", outcomes, now) == 1
    rows = _rows(container, [mine, taken, stranger])
    assert rows[mine].status == "sent"
    assert (rows[taken].status, rows[taken].worker_id) == ("sending", "w2")
    assert (rows[stranger].status, rows[stranger].error_code) == ("sending", None)
    assert _moves(container, [mine, taken, stranger], now) == [(mine, "sent", None)]


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_record_waiting_for_a_claim_that_takes_a_row_over_writes_nothing_for_it(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    """The other worker's claim holds the row when the record comes, then commits: the record
    waits for it, sees the row is no longer its own, and writes neither the row nor a move."""
    first, second = _queue(tenant, setup, 2)
    outbox = Outbox(container.db)
    outbox.claim("w1", 2, clock.now(), LEASE)
    with container.db.engine.connect() as other:
        other.execute(
            sa.update(Message)
            .where(Message.id == second)
            .values(worker_id="w2", attempts=Message.attempts + 1)
        )
        outcomes = [Outcome(m, MessageStatus.SENT, provider_message_id=m) for m in (first, second)]
        now = clock.now() + timedelta(seconds=1)
        recording = asyncio.create_task(asyncio.to_thread(outbox.record, "w1", outcomes, now))
        deadline = time.monotonic() + 10
        while not _waits_for_a_lock(container) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert not recording.done()
        other.commit()
    assert await recording == 1
    rows = _rows(container, [first, second])
    assert rows[first].status == "sent"
    assert (rows[second].status, rows[second].worker_id) == ("sending", "w2")
    assert _moves(container, [first, second], now) == [(first, "sent", None)]


def _waits_for_a_lock(container: Container) -> bool:
    with container.db.engine.connect() as conn:
        return bool(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ).scalar()
        )


async def test_the_statements_of_a_record_do_not_grow_with_its_batch(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    outbox = Outbox(container.db)

    def record(count: int) -> int:
        ids = _queue(tenant, setup, count)
        assert len(outbox.claim("w1", count, clock.now(), LEASE)) == count
        before = container.db.stages.snapshot()["record"][0]
        outcomes = [Outcome(m, MessageStatus.SENT, provider_message_id=m) for m in ids]
        assert outbox.record("w1", outcomes, clock.now()) == count
        return container.db.stages.snapshot()["record"][0] - before

    assert record(2) == record(8)


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_the_rollup_rows_of_a_record_are_written_in_one_statement(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    outbox = Outbox(container.db)

    def record(locales: list[str]) -> int:
        response = tenant.post(
            "/v1/outbound/send",
            {
                "configuration_id": setup.config_id,
                "contacts": [
                    contact(f"+3361234{i:04d}", locale=locale) for i, locale in enumerate(locales)
                ],
            },
        )
        assert response.status_code == 202, response.text
        ids = [r["message_id"] for r in response.json()["results"]]
        assert len(outbox.claim("w1", len(ids), clock.now(), LEASE)) == len(ids)
        before = container.db.stages.snapshot()["record"][0]
        outcomes = [Outcome(m, MessageStatus.FAILED, error_code=m[:8]) for m in ids]
        assert outbox.record("w1", outcomes, clock.now()) == len(ids)
        return container.db.stages.snapshot()["record"][0] - before

    # Each locale its rollup rows (hour and day), and each error code its reason rows. (SQLite
    # binds them one by one: no round trip there, and reading JSON back costs it more.)
    assert record(["en-US", "en-US"]) == record(["en-US", "fr-FR"])
