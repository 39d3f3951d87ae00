"""Sends of unknown outcome (their worker died while they were sending): looked up at the
provider before being sent again, and on SQLite reclaimed as soon as a dispatcher restarts."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from outbound.adapters.db.models import Message, MessageEvent
from outbound.adapters.queue.outbox import Outbox
from outbound.app import Container, create_app
from outbound.services.dispatch import Dispatcher, _Batch
from outbound.testing import FakeClock, ScriptedProvider
from outbound.testing.fakes import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    FakeACS,
    FakeTwilio,
)
from tests.helpers import Tenant, contact, make_setup, make_tenant

NUMBERS = ["+33612345678", "+33612345679"]


def _configuration(tenant: Tenant, channel: dict[str, Any]) -> str:
    template = tenant.post(
        "/v1/templates",
        {
            "name": f"t-{channel['id']}",
            "channel_type": "sms",
            "default_locale": "en-US",
            "default_text": "Hi {CustomerName}, case {CaseName}",
        },
    ).json()
    response = tenant.post(
        "/v1/outbound-configurations",
        {
            "name": f"c-{channel['id']}",
            "channel_type": "sms",
            "channel_id": channel["id"],
            "template_id": template["id"],
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _send(tenant: Tenant, config_id: str, *numbers: str) -> list[str]:
    response = tenant.post(
        "/v1/outbound/send",
        {"configuration_id": config_id, "contacts": [contact(n) for n in numbers]},
    )
    assert response.status_code == 202, response.text
    return [r["message_id"] for r in response.json()["results"]]


def _lookups(container: Container, result: str) -> float | None:
    return container.metrics.registry.get_sample_value(
        "outbound_provider_lookups_total", {"provider": "twilio", "result": result}
    )


def _row(container: Container, message_id: str) -> Message:
    with container.db.read() as session:
        row = session.get(Message, message_id)
    assert row is not None
    return row


def _sources(container: Container, message_id: str) -> list[tuple[str, str]]:
    with container.db.read() as session:
        rows = session.execute(
            sa.select(MessageEvent.status, MessageEvent.source)
            .where(MessageEvent.message_id == message_id)
            .order_by(MessageEvent.id)
        ).all()
    return [(r.status, r.source) for r in rows]


async def _die_after_sending(container: Container, sent: set[str]) -> _Batch:
    """A worker claims what is due, has the provider accept the messages of ``sent``, and
    dies before recording anything."""
    dead = container.dispatcher("dead")
    batch = await dead._claim()
    assert batch is not None
    for message in batch.claimed:
        if message.id in sent:
            await dead._send(message, batch.context)
    return batch


def _twilio_channel(tenant: Tenant, twilio: FakeTwilio) -> dict[str, Any]:
    response = tenant.post(
        "/v1/channels",
        {
            "name": "twilio",
            "type": "sms",
            "provider": "twilio",
            "sender": "+15005550006",
            "base_url": twilio.base_url,
            "credentials": {"account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN},
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
async def twilio(clock: FakeClock) -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(callback_delay=0.01, clock=clock) as fake:
        yield fake


async def test_a_twilio_send_of_unknown_outcome_is_found_not_sent_again(
    tenant: Tenant, container: Container, twilio: FakeTwilio, clock: FakeClock
) -> None:
    channel = _twilio_channel(tenant, twilio)
    config_id = _configuration(tenant, channel)
    # An earlier message, same text to the same number, recorded: not this one's send.
    (earlier,) = _send(tenant, config_id, NUMBERS[1])
    assert await container.dispatcher("w0").run_once() == 1
    accepted, lost = _send(tenant, config_id, *NUMBERS)
    await _die_after_sending(container, {accepted})
    await twilio.drain()  # Twilio has sent it: it has a date_sent
    assert Counter(m.to for m in twilio.messages.values()) == {NUMBERS[0]: 1, NUMBERS[1]: 1}
    clock.advance(container.settings.lease_seconds + 1)

    assert await container.dispatcher("survivor").run_once() == 2
    creates = Counter(m.to for m in twilio.messages.values())
    assert creates == {NUMBERS[0]: 1, NUMBERS[1]: 2}  # the lost one only was sent again
    found = _row(container, accepted)
    assert found.status == "sent"
    assert twilio.messages[str(found.provider_message_id)].to == NUMBERS[0]
    assert _sources(container, accepted)[-1] == ("sent", "lookup")
    resent = _row(container, lost)
    assert resent.status == "sent"
    assert resent.provider_message_id not in {
        found.provider_message_id,
        _row(container, earlier).provider_message_id,
    }
    lookups = [r for r in twilio.requests if r.method == "GET"]
    assert len(lookups) == 2
    assert lookups[0].query["To"] in NUMBERS
    assert lookups[0].query["From"] == "+15005550006"
    assert lookups[0].query["DateSent>"] == clock.now().date().isoformat()
    assert _lookups(container, "found") == 1
    assert _lookups(container, "not_found") == 1


async def test_a_send_taken_over_twice_is_still_found(
    tenant: Tenant, container: Container, twilio: FakeTwilio, clock: FakeClock
) -> None:
    """The worker that took the message over died too, before its look-up: the next one
    looks from the first attempt on, not from the take-over."""
    (message_id,) = _send(
        tenant, _configuration(tenant, _twilio_channel(tenant, twilio)), NUMBERS[0]
    )
    await _die_after_sending(container, {message_id})
    await twilio.drain()
    clock.advance(container.settings.lease_seconds + 1)
    await _die_after_sending(container, set())  # took it over, then died
    clock.advance(container.settings.lease_seconds + 1)

    assert await container.dispatcher("survivor").run_once() == 1
    assert len(twilio.messages) == 1  # not sent a second time
    row = _row(container, message_id)
    assert (row.status, row.provider_message_id) == ("sent", next(iter(twilio.messages)))
    assert _sources(container, message_id)[-1] == ("sent", "lookup")


async def test_a_taken_over_send_given_back_before_its_look_up_is_looked_up_later(
    tenant: Tenant, container: Container, twilio: FakeTwilio, clock: FakeClock
) -> None:
    """A batch that waited too long for its turn goes back to the queue unsent; its messages
    of unknown outcome keep a code that has them looked up when claimed again."""
    (message_id,) = _send(
        tenant, _configuration(tenant, _twilio_channel(tenant, twilio)), NUMBERS[0]
    )
    await _die_after_sending(container, {message_id})
    await twilio.drain()
    clock.advance(container.settings.lease_seconds + 1)
    late = container.dispatcher("late")
    batch = await late._claim()
    assert batch is not None
    await late._release(batch)
    row = _row(container, message_id)
    assert (row.status, row.error_code) == ("queued", "interrupted")
    assert row.attempts == 1  # the give-back used no attempt

    assert await container.dispatcher("survivor").run_once() == 1
    assert len(twilio.messages) == 1
    row = _row(container, message_id)
    assert (row.status, row.error_code) == ("sent", None)
    assert _sources(container, message_id)[-1] == ("sent", "lookup")
    assert _lookups(container, "found") == 1


async def test_a_send_whose_answer_was_lost_is_looked_up_before_its_retry(
    tenant: Tenant, container: Container, twilio: FakeTwilio, clock: FakeClock
) -> None:
    """The connection closed after Twilio created the message: the retry finds it."""
    config_id = _configuration(tenant, _twilio_channel(tenant, twilio))
    (message_id,) = _send(tenant, config_id, NUMBERS[0])
    twilio.drop_after_next(1)
    assert await container.dispatcher("w").run_once() == 1
    row = _row(container, message_id)
    assert (row.status, row.error_code) == ("queued", "connection_lost")
    await twilio.drain()
    clock.advance(3600)
    assert await container.dispatcher("w").run_once() == 1
    assert len(twilio.messages) == 1  # not sent a second time
    row = _row(container, message_id)
    assert (row.status, row.provider_message_id) == ("sent", next(iter(twilio.messages)))
    assert _sources(container, message_id)[-1] == ("sent", "lookup")
    assert _lookups(container, "found") == 1


async def test_a_send_lost_before_the_provider_had_it_is_sent_again_after_the_look_up(
    tenant: Tenant, container: Container, twilio: FakeTwilio, clock: FakeClock
) -> None:
    config_id = _configuration(tenant, _twilio_channel(tenant, twilio))
    (message_id,) = _send(tenant, config_id, NUMBERS[0])
    twilio.drop_next(1)  # closed before Twilio created anything
    assert await container.dispatcher("w").run_once() == 1
    assert _row(container, message_id).error_code == "connection_lost"
    clock.advance(3600)
    assert await container.dispatcher("w").run_once() == 1
    assert len(twilio.messages) == 1
    assert _row(container, message_id).status == "sent"
    assert _lookups(container, "not_found") == 1


async def test_a_failed_look_up_sends_again(
    tenant: Tenant, container: Container, twilio: FakeTwilio, clock: FakeClock
) -> None:
    channel = _twilio_channel(tenant, twilio)
    (message_id,) = _send(tenant, _configuration(tenant, channel), NUMBERS[0])
    await _die_after_sending(container, set())
    clock.advance(container.settings.lease_seconds + 1)
    twilio.fail_next(1, 503)  # the look-up
    assert await container.dispatcher("survivor").run_once() == 1
    assert _row(container, message_id).status == "sent"
    assert len(twilio.messages) == 1
    assert _lookups(container, "error") == 1


async def test_an_acs_send_of_unknown_outcome_is_not_a_second_sms(
    tenant: Tenant, container: Container, clock: FakeClock
) -> None:
    """ACS needs no look-up: the same repeatability id gets the first result back."""
    async with FakeACS(callback_delay=0.01, clock=clock) as acs:
        channel = tenant.post(
            "/v1/channels",
            {
                "name": "acs",
                "type": "sms",
                "provider": "acs",
                "sender": "+18005550100",
                "base_url": acs.base_url,
                "credentials": {"access_key": DEFAULT_ACCESS_KEY},
            },
        ).json()
        (message_id,) = _send(tenant, _configuration(tenant, channel), NUMBERS[0])
        await _die_after_sending(container, {message_id})
        clock.advance(container.settings.lease_seconds + 1)
        assert await container.dispatcher("survivor").run_once() == 1
        assert acs.sends == 1
        row = _row(container, message_id)
        assert (row.status, row.provider_message_id) == ("sent", next(iter(acs.messages)))


async def test_an_acs_retry_past_its_repeatability_window_is_sent_not_refused(
    tenant: Tenant, container: Container, clock: FakeClock
) -> None:
    """ACS refuses a first-sent time older than 5 minutes (412): a message retried later than
    that after its first attempt is still sent, once."""
    async with FakeACS(callback_delay=0.01, clock=clock) as acs:
        channel = tenant.post(
            "/v1/channels",
            {
                "name": "acs",
                "type": "sms",
                "provider": "acs",
                "sender": "+18005550100",
                "base_url": acs.base_url,
                "credentials": {"access_key": DEFAULT_ACCESS_KEY},
            },
        ).json()
        (message_id,) = _send(tenant, _configuration(tenant, channel), NUMBERS[0])
        acs.fail_next(1, 503)
        assert await container.dispatcher("w").run_once() == 1
        assert _row(container, message_id).status == "queued"
        clock.advance(6 * 60)
        assert await container.dispatcher("w").run_once() == 1
        row = _row(container, message_id)
        assert (row.status, row.error_code) == ("sent", None), row.error_message
        assert acs.sends == 1
        ids = {r.json()["smsRecipients"][0]["repeatabilityRequestId"] for r in acs.requests}
        assert len(ids) == 1  # the same request, first sent again


async def _sent_within(container: Container, message_id: str, seconds: float) -> bool:
    for _ in range(int(seconds / 0.02)):
        if _row(container, message_id).status == "sent":
            return True
        await asyncio.sleep(0.02)
    return False


async def _run_briefly(dispatcher: Dispatcher, container: Container, message_id: str) -> bool:
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        return await _sent_within(container, message_id, 1.5)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_restarted_dispatcher_alone_on_sqlite_reclaims_dead_leases_at_once(
    backend: str, scripted_container: Container, provider: ScriptedProvider, clock: FakeClock
) -> None:
    c = scripted_container
    (message_id,) = _scripted_setup(c)(NUMBERS[:1])
    # Claimed long enough ago that its send cannot still be on its way (a quarter of the
    # lease to begin, the HTTP timeout to arrive); its lease runs for another 29 s.
    claimed = Outbox(c.db).claim("dead", 10, clock.now(), timedelta(seconds=60))
    assert [m.id for m in claimed] == [message_id]
    clock.advance(c.settings.lease_seconds / 4 + c.settings.http_timeout + 1)
    sent = await _run_briefly(c.dispatcher("restarted"), c, message_id)
    # SQLite sees that no other dispatcher is alive; PostgreSQL (several machines) cannot.
    assert sent is (backend == "sqlite")
    if sent:
        assert provider.sends_per_message() == {message_id: 1}
        assert ("sending", "reclaimed") in _sources(c, message_id)


async def test_a_dead_workers_send_that_may_still_be_on_its_way_waits_for_it(
    backend: str, scripted_container: Container, provider: ScriptedProvider, clock: FakeClock
) -> None:
    """Reclaimed at once, a send the dead process had just made could reach the provider
    after the look-up: it is taken over once it cannot be on its way any more (SQLite; on
    PostgreSQL the lease runs its course)."""
    c = scripted_container
    (message_id,) = _scripted_setup(c)(NUMBERS[:1])
    Outbox(c.db).claim("dead", 10, clock.now(), timedelta(seconds=60))
    assert not await _run_briefly(c.dispatcher("restarted"), c, message_id)
    clock.advance(c.settings.lease_seconds / 4 + c.settings.http_timeout + 1)
    sent = await _run_briefly(c.dispatcher("restarted"), c, message_id)
    assert sent is (backend == "sqlite")
    if sent:
        assert provider.sends_per_message() == {message_id: 1}


async def test_a_retry_after_a_timeout_waits_until_the_request_cannot_be_on_its_way(
    tenant: Tenant, container: Container, twilio: FakeTwilio, clock: FakeClock
) -> None:
    config_id = _configuration(tenant, _twilio_channel(tenant, twilio))
    (message_id,) = _send(tenant, config_id, NUMBERS[0])
    twilio.drop_after_next(1)
    before = clock.now()
    assert await container.dispatcher("w").run_once() == 1
    row = _row(container, message_id)
    assert row.error_code == "connection_lost"
    waited = (row.scheduled_at - before).total_seconds()
    assert waited >= container.settings.http_timeout


async def test_leases_are_kept_while_another_dispatcher_is_alive(
    scripted_container: Container, clock: FakeClock
) -> None:
    c = scripted_container
    (message_id,) = _scripted_setup(c)(NUMBERS[:1])
    Outbox(c.db).claim("busy", 10, clock.now(), timedelta(seconds=60))
    other = c.db.presence("dispatchers")
    other.join(lambda: None)  # another dispatcher, alive
    try:
        assert not await _run_briefly(c.dispatcher("second"), c, message_id)
    finally:
        other.leave()
    assert _row(c, message_id).worker_id == "busy"


def _scripted_setup(container: Container) -> Callable[[list[str]], list[str]]:
    """Sends through a new tenant's sandbox configuration (the scripted provider)."""

    def send(numbers: list[str]) -> list[str]:
        with TestClient(create_app(container, run_worker=False)) as client:
            tenant = make_tenant(container, client)
            setup = make_setup(tenant)
            response = tenant.post(
                "/v1/outbound/send",
                {"configuration_id": setup.config_id, "contacts": [contact(n) for n in numbers]},
            )
            assert response.status_code == 202, response.text
            return [r["message_id"] for r in response.json()["results"]]

    return send
