"""The outbox and the dispatcher, end to end through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from outbound.adapters.db.models import Message, MessageEvent
from outbound.adapters.queue.outbox import Outbox
from outbound.app import Container, create_app
from outbound.config import DEFAULT_WORKER_POLL_INTERVAL
from outbound.errors import PermanentProviderError, TransientProviderError
from outbound.services.dispatch import Dispatcher
from outbound.testing import FakeClock, ScriptedProvider
from tests.helpers import Tenant, contact, make_setup, make_tenant


@pytest.fixture
def stenant(scripted_container: Container) -> Iterator[Tenant]:
    """A tenant of the service whose provider is scripted."""
    with TestClient(create_app(scripted_container, run_worker=False)) as client:
        yield make_tenant(scripted_container, client)


def _send(tenant: Tenant, numbers: list[str]) -> list[str]:
    setup = make_setup(tenant)
    response = tenant.post(
        "/v1/outbound/send",
        {"configuration_id": setup.config_id, "contacts": [contact(n) for n in numbers]},
    )
    assert response.status_code == 202, response.text
    return [r["message_id"] for r in response.json()["results"]]


def _status(container: Container, message_id: str) -> str:
    with container.db.read() as session:
        return str(session.get(Message, message_id).status)  # type: ignore[union-attr]


def _history(container: Container, message_id: str) -> list[tuple[str, str]]:
    with container.db.read() as session:
        rows = session.execute(
            sa.select(MessageEvent.status, MessageEvent.source)
            .where(MessageEvent.message_id == message_id)
            .order_by(MessageEvent.id)
        ).all()
    return [(r.status, r.source) for r in rows]


NUMBERS = ["+33612345678", "+33612345679", "+33612345670"]


async def test_sandbox_sends_and_reports_delivery(tenant: Tenant, container: Container) -> None:
    ids = _send(tenant, NUMBERS)
    dispatcher = container.dispatcher("w1")
    assert await dispatcher.run_once() == 3
    await container.providers["sandbox"].drain()  # type: ignore[attr-defined]
    for message_id in ids:
        assert _status(container, message_id) == "delivered"
        assert [s for s, _ in _history(container, message_id)] == [
            "queued",
            "sending",
            "sent",
            "delivered",
        ]
        detail = tenant.get(f"/v1/messages/{message_id}").json()
        assert detail["provider_message_id"].startswith("SBX")
        assert detail["attempts"] == 1
    assert await dispatcher.run_once() == 0


async def test_sandbox_failure_rate_reports_undelivered(
    tenant: Tenant, container: Container
) -> None:
    setup = make_setup(tenant)
    tenant.patch(f"/v1/channels/{setup.channel['id']}", {"options": {"failure_rate": 1.0}})
    response = tenant.post(
        "/v1/outbound/send", {"configuration_id": setup.config_id, "contacts": [contact()]}
    )
    message_id = response.json()["results"][0]["message_id"]
    await container.dispatcher().run_once()
    await container.providers["sandbox"].drain()  # type: ignore[attr-defined]
    detail = tenant.get(f"/v1/messages/{message_id}").json()
    assert detail["status"] == "undelivered"
    assert detail["error_code"] == "30003"


async def test_transient_error_retries_with_backoff_then_succeeds(
    stenant: Tenant,
    scripted_container: Container,
    provider: ScriptedProvider,
    clock: FakeClock,
) -> None:
    provider.fail_next("+33612345678", TransientProviderError("busy", code="503"))
    (message_id,) = _send(stenant, ["+33612345678"])
    dispatcher = scripted_container.dispatcher("w1")
    assert await dispatcher.run_once() == 1
    assert _status(scripted_container, message_id) == "queued"
    with scripted_container.db.read() as session:
        row = session.get(Message, message_id)
        assert row is not None
        assert row.error_code == "503"
        delay = (row.scheduled_at - clock.now()).total_seconds()
    # base 1 s, first retry: equal jitter between 0.5 and 1 s
    assert 0.5 <= delay <= 1.0
    assert await dispatcher.run_once() == 0  # not due yet
    clock.advance(1.01)
    assert await dispatcher.run_once() == 1
    assert _status(scripted_container, message_id) == "sent"
    assert [s for s, _ in _history(scripted_container, message_id)] == [
        "queued",
        "sending",
        "queued",
        "sending",
        "sent",
    ]
    assert provider.sends_per_message()[message_id] == 2


async def test_retry_after_is_honoured(
    stenant: Tenant,
    scripted_container: Container,
    provider: ScriptedProvider,
    clock: FakeClock,
) -> None:
    provider.fail_next("+33612345678", TransientProviderError("slow down", retry_after=120))
    (message_id,) = _send(stenant, ["+33612345678"])
    dispatcher = scripted_container.dispatcher()
    await dispatcher.run_once()
    with scripted_container.db.read() as session:
        row = session.get(Message, message_id)
        assert row is not None
        assert row.scheduled_at == clock.now() + timedelta(seconds=120)
    clock.advance(119)
    assert await dispatcher.run_once() == 0
    clock.advance(1)
    assert await dispatcher.run_once() == 1


async def test_permanent_error_fails_at_once_with_the_provider_code(
    stenant: Tenant, scripted_container: Container, provider: ScriptedProvider
) -> None:
    provider.fail_next("+33612345678", PermanentProviderError("invalid To", code="21211"))
    (message_id,) = _send(stenant, ["+33612345678"])
    await scripted_container.dispatcher().run_once()
    detail = stenant.get(f"/v1/messages/{message_id}").json()
    assert detail["status"] == "failed"
    assert detail["error_code"] == "21211"
    assert detail["error_message"] == "invalid To"
    assert provider.sends_per_message()[message_id] == 1


async def test_transient_errors_stop_at_max_attempts(
    stenant: Tenant,
    scripted_container: Container,
    provider: ScriptedProvider,
    clock: FakeClock,
) -> None:
    # max_attempts is 3 in the test settings
    provider.fail_next(
        "+33612345678", *[TransientProviderError("down", code="500") for _ in range(5)]
    )
    (message_id,) = _send(stenant, ["+33612345678"])
    dispatcher = scripted_container.dispatcher()
    for _ in range(5):
        await dispatcher.run_once()
        clock.advance(3600)
    assert _status(scripted_container, message_id) == "failed"
    assert provider.sends_per_message()[message_id] == 3


async def test_worker_killed_mid_batch_loses_nothing(
    stenant: Tenant,
    scripted_container: Container,
    provider: ScriptedProvider,
    clock: FakeClock,
) -> None:
    ids = _send(stenant, NUMBERS)
    # A worker claims the batch and dies before sending anything.
    outbox = Outbox(scripted_container.db)
    claimed = outbox.claim("dead-worker", 10, clock.now(), timedelta(seconds=30))
    assert {m.id for m in claimed} == set(ids)
    survivor = scripted_container.dispatcher("survivor")
    assert await survivor.run_once() == 0  # still leased
    clock.advance(31)
    assert await survivor.run_once() == 3
    for message_id in ids:
        assert _status(scripted_container, message_id) == "sent"
        assert ("sending", "reclaimed") in _history(scripted_container, message_id)
    # The dead worker's late record must not overwrite the survivor's.
    from outbound.adapters.queue.outbox import Outcome
    from outbound.domain.statuses import MessageStatus

    assert outbox.record("dead-worker", [Outcome(ids[0], MessageStatus.FAILED)], clock.now()) == 0
    assert _status(scripted_container, ids[0]) == "sent"


async def test_lease_expiry_past_max_attempts_fails_the_message(
    stenant: Tenant, scripted_container: Container, clock: FakeClock
) -> None:
    (message_id,) = _send(stenant, ["+33612345678"])
    outbox = Outbox(scripted_container.db)
    for _ in range(3):  # three workers die holding it
        assert len(outbox.claim("dead", 10, clock.now(), timedelta(seconds=30))) == 1
        clock.advance(31)
    await scripted_container.dispatcher().run_once()
    with scripted_container.db.read() as session:
        row = session.get(Message, message_id)
        assert row is not None
        assert (row.status, row.error_code) == ("failed", "max_attempts_exceeded")


async def test_skipped_and_rejected_are_never_claimed(
    stenant: Tenant, scripted_container: Container, provider: ScriptedProvider
) -> None:
    setup = make_setup(stenant)
    stenant.post(
        "/v1/outbound/send",
        {
            "configuration_id": setup.config_id,
            "contacts": [contact(optin=False), contact("not a number")],
        },
    )
    assert await scripted_container.dispatcher().run_once() == 0
    assert provider.sent == []


async def test_status_reports_are_idempotent_and_never_go_backwards(
    tenant: Tenant, container: Container
) -> None:
    from outbound.adapters.providers.base import StatusReport
    from outbound.domain.statuses import MessageStatus

    (message_id,) = _send(tenant, ["+33612345678"])
    await container.dispatcher().run_once()
    await container.providers["sandbox"].drain()  # type: ignore[attr-defined]
    pid = tenant.get(f"/v1/messages/{message_id}").json()["provider_message_id"]
    before = _history(container, message_id)
    late_sent = StatusReport("sandbox", pid, MessageStatus.SENT)
    duplicate = StatusReport("sandbox", pid, MessageStatus.DELIVERED)
    assert await container.statuses.report(late_sent) is True
    assert await container.statuses.report(duplicate) is True
    assert _status(container, message_id) == "delivered"
    assert _history(container, message_id) == before
    unknown = StatusReport("sandbox", "unknown", MessageStatus.SENT)
    assert await container.statuses.report(unknown) is False


async def test_many_workers_send_each_message_exactly_once(
    stenant: Tenant, scripted_container: Container, provider: ScriptedProvider
) -> None:
    setup = make_setup(stenant)
    expected: set[str] = set()
    for batch in range(4):
        contacts = [contact(f"+336{batch:02d}{i:06d}") for i in range(100)]
        response = stenant.post(
            "/v1/outbound/send", {"configuration_id": setup.config_id, "contacts": contacts}
        )
        expected |= {r["message_id"] for r in response.json()["results"]}
    provider.latency = 0.001
    workers = [scripted_container.dispatcher(f"w{i}") for i in range(4)]

    async def drain(worker):  # type: ignore[no-untyped-def]
        total = 0
        while (claimed := await worker.run_once(limit=25)) > 0:
            total += claimed
        return total

    counts = await asyncio.gather(*(drain(w) for w in workers))
    assert sum(counts) == 400
    per_message = provider.sends_per_message()
    assert set(per_message) == expected
    assert max(per_message.values()) == 1
    with scripted_container.db.read() as session:
        statuses = session.execute(
            sa.select(Message.status, sa.func.count()).group_by(Message.status)
        ).all()
    assert dict(statuses) == {"sent": 400}


async def test_run_stops_gracefully_and_finishes_in_flight_sends(
    stenant: Tenant, scripted_container: Container, provider: ScriptedProvider
) -> None:
    ids = _send(stenant, NUMBERS)
    provider.latency = 0.2
    stop = asyncio.Event()
    task = asyncio.create_task(scripted_container.dispatcher("w").run(stop))
    while not provider.sent:
        await asyncio.sleep(0.01)
    stop.set()  # while the sends are in flight
    await asyncio.wait_for(task, 5)
    assert {_status(scripted_container, i) for i in ids} == {"sent"}


async def test_a_batch_claimed_ahead_is_given_back_on_stop(
    stenant: Tenant, scripted_container: Container, provider: ScriptedProvider
) -> None:
    # One lane (2 x concurrency / batch size) of two messages, sent one at a time: while the
    # first batch is being sent, the third message is claimed ahead.
    c = scripted_container
    dispatcher = _one_lane(c)
    ids = _send(stenant, NUMBERS)
    provider.latency = 0.3
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    assert await _until_sending(c, 3) == 3  # two being sent, one claimed ahead
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(provider.sent) == 2
    with scripted_container.db.read() as session:
        rows = {
            m.id: (m.status, m.attempts, m.worker_id)
            for m in session.execute(sa.select(Message).where(Message.id.in_(ids))).scalars()
        }
    assert sorted(status for status, _, _ in rows.values()) == ["queued", "sent", "sent"]
    for status, attempts, worker in rows.values():
        if status == "queued":
            # Given back as it was: no attempt used, no lease, due again at once.
            assert attempts == 0
            assert worker is None
    assert await scripted_container.dispatcher("w2").run_once() == 1  # due at once


def _one_lane(c: Container, poll_interval: float = DEFAULT_WORKER_POLL_INTERVAL) -> Dispatcher:
    return Dispatcher(
        c.db,
        c.providers,
        c.secrets,
        c.clock,
        worker_id="w",
        batch_size=2,
        concurrency=1,
        poll_interval=poll_interval,
        lease_seconds=c.settings.lease_seconds,
        statuses=c.statuses,
    )


async def _until_sending(c: Container, count: int) -> int:
    """Wait (at most 5 s) until ``count`` messages are ``sending``; returns the last count."""
    sending = 0
    for _ in range(500):
        with c.db.read() as session:
            sending = session.execute(
                sa.select(sa.func.count()).where(Message.status == "sending")
            ).scalar_one()
        if sending == count:
            break
        await asyncio.sleep(0.01)
    return sending


async def _until_sent(c: Container, ids: list[str]) -> None:
    """Wait (at most 4 s) until every message of ``ids`` is ``sent``."""
    for _ in range(200):
        if {_status(c, i) for i in ids} == {"sent"}:
            return
        await asyncio.sleep(0.02)


async def _run_until_sent(c: Container, dispatcher: Dispatcher, ids: list[str]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    await _until_sent(c, ids)
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_a_claim_ahead_that_fails_does_not_stop_the_lane(
    stenant: Tenant, scripted_container: Container, provider: ScriptedProvider
) -> None:
    c = scripted_container
    dispatcher = _one_lane(c, poll_interval=0.01)
    ids = _send(stenant, NUMBERS)
    provider.latency = 0.1
    calls = 0
    claim = dispatcher._claim

    async def flaky_claim(limit: int | None = None):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 2:  # the claim made ahead while the first batch is sent
            raise sa.exc.OperationalError("claim", None, Exception("connection lost"))
        return await claim(limit)

    dispatcher._claim = flaky_claim  # type: ignore[method-assign]
    await _run_until_sent(c, dispatcher, ids)
    assert {_status(c, i) for i in ids} == {"sent"}
    assert calls >= 3


async def test_a_batch_claimed_ahead_too_long_ago_goes_back_unsent(
    stenant: Tenant, scripted_container: Container, provider: ScriptedProvider, clock: FakeClock
) -> None:
    c = scripted_container
    dispatcher = _one_lane(c)
    ids = _send(stenant, NUMBERS)
    provider.latency = 0.3
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    assert await _until_sending(c, 3) == 3  # two being sent, one claimed ahead
    clock.advance(c.settings.lease_seconds * 0.3)  # the one ahead has used too much lease
    await _until_sent(c, ids)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert provider.sends_per_message() == {i: 1 for i in ids}
    histories = sorted([s for s, _ in _history(c, i)] for i in ids)
    assert histories == [
        ["queued", "sending", "queued", "sending", "sent"],  # given back, claimed again
        ["queued", "sending", "sent"],
        ["queued", "sending", "sent"],
    ]


async def test_outcomes_are_recorded_as_the_calls_return(
    stenant: Tenant, scripted_container: Container, provider: ScriptedProvider
) -> None:
    """One slow call does not hold back the record of the batch's other messages: a worker
    killed while it waits leaves only that one message of unknown outcome."""
    c = scripted_container
    ids = _send(stenant, NUMBERS)
    provider.slow[NUMBERS[0]] = 1.5
    dispatcher = c.dispatcher("w")
    task = asyncio.create_task(dispatcher.run_once())
    await _until_sent(c, ids[1:])
    statuses = [_status(c, i) for i in ids]
    assert not task.done()  # the slow call is still in flight
    assert statuses == ["sending", "sent", "sent"]
    assert await asyncio.wait_for(task, 5) == 3
    assert {_status(c, i) for i in ids} == {"sent"}
    assert provider.sends_per_message() == {i: 1 for i in ids}
