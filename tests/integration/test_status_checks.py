"""Status checks: sent messages whose reports were lost are asked of the provider (real
adapters against the fake providers, on SQLite and PostgreSQL).

The service's webhook is down throughout (``drop_callbacks``): every report is lost, while the
fakes keep each message's status as the real providers do.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from outbound.adapters.db.models import Message, MessageEvent, MessageRollup, WebhookEvent
from outbound.adapters.queue.status_checks import StatusCheckQueue
from outbound.app import Container, build_container, create_app
from outbound.config import Settings
from outbound.services.status_checks import GIVE_UP_AFTER, StatusChecker
from outbound.testing import FakeClock
from outbound.testing.fakes import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_API_KEY,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_CUSTOMER_ID,
    FakeTeleSign,
    FakeTwilio,
)
from tests.helpers import Tenant, contact, make_setup, make_tenant

CUSTOMER = "+33612345678"
AFTER = 600.0


@pytest.fixture
def down(settings: Settings, clock: FakeClock) -> Iterator[tuple[Container, Tenant]]:
    """The service, whose public webhook URL answers nothing (it is down)."""
    c = build_container(
        settings.model_copy(
            update={
                "public_base_url": "http://127.0.0.1:9",
                "status_check_rate": 50.0,
                "webhook_allowed_hosts": "127.0.0.1",
            }
        ),
        clock=clock,
    )
    c.migrate()
    with TestClient(create_app(c, run_worker=False)) as client:
        yield c, make_tenant(c, client)
    c.db.dispose()


@pytest.fixture
async def twilio(clock: FakeClock) -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(callback_delay=0.0, clock=clock) as fake:
        fake.drop_callbacks()
        yield fake


@pytest.fixture
async def telesign(clock: FakeClock) -> AsyncIterator[FakeTeleSign]:
    async with FakeTeleSign(callback_delay=0.0, clock=clock) as fake:
        fake.drop_callbacks()
        yield fake


def _configuration(tenant: Tenant, channel: dict[str, Any]) -> str:
    created = tenant.post("/v1/channels", channel)
    assert created.status_code == 201, created.text
    template = tenant.post(
        "/v1/templates",
        {
            "name": f"t-{channel['provider']}",
            "channel_type": "sms",
            "default_locale": "en-US",
            "default_text": "Hi {CustomerName}",
        },
    ).json()
    config = tenant.post(
        "/v1/outbound-configurations",
        {
            "name": f"c-{channel['provider']}",
            "channel_type": "sms",
            "channel_id": created.json()["id"],
            "template_id": template["id"],
        },
    )
    assert config.status_code == 201, config.text
    return str(config.json()["id"])


def _twilio(tenant: Tenant, fake: FakeTwilio) -> str:
    return _configuration(
        tenant,
        {
            "name": "twilio",
            "type": "sms",
            "provider": "twilio",
            "sender": "+15005550006",
            "base_url": fake.base_url,
            "credentials": {"account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN},
        },
    )


def _telesign(tenant: Tenant, fake: FakeTeleSign) -> str:
    return _configuration(
        tenant,
        {
            "name": "telesign",
            "type": "sms",
            "provider": "telesign",
            "sender": "+15005550006",
            "base_url": fake.base_url,
            "credentials": {"customer_id": DEFAULT_CUSTOMER_ID, "api_key": DEFAULT_API_KEY},
        },
    )


async def _send(c: Container, tenant: Tenant, config_id: str, *numbers: str) -> list[str]:
    response = tenant.post(
        "/v1/outbound/send",
        {"configuration_id": config_id, "contacts": [contact(n) for n in numbers]},
    )
    assert response.status_code == 202, response.text
    ids = [str(r["message_id"]) for r in response.json()["results"]]
    while await c.dispatcher().run_once():
        pass
    return ids


def _message(c: Container, message_id: str) -> Message:
    with c.db.read() as session:
        return session.get_one(Message, message_id)


def _history(c: Container, message_id: str) -> list[MessageEvent]:
    with c.db.read() as session:
        return list(
            session.execute(
                sa.select(MessageEvent)
                .where(MessageEvent.message_id == message_id)
                .order_by(MessageEvent.id)
            ).scalars()
        )


def _lookups(fake: FakeTwilio | FakeTeleSign) -> list[str]:
    return [r.path for r in fake.requests if r.method == "GET"]


def _checks(c: Container, provider: str, result: str) -> float:
    value = c.metrics.registry.get_sample_value(
        "outbound_status_checks_total", {"provider": provider, "result": result}
    )
    return value or 0.0


async def test_a_message_whose_reports_were_lost_is_delivered_by_a_check_after_the_set_time(
    down: tuple[Container, Tenant], twilio: FakeTwilio, clock: FakeClock
) -> None:
    c, tenant = down
    (message_id,) = await _send(c, tenant, _twilio(tenant, twilio), CUSTOMER)
    await twilio.drain()
    sid = _message(c, message_id).provider_message_id
    assert sid is not None
    assert twilio.messages[sid].status == "delivered"
    assert [r.error for r in twilio.callback_results] == ["dropped (fault)"] * 2
    assert _message(c, message_id).status == "sent"
    checker = c.status_checker()

    assert await checker.run_once() == 0
    clock.advance(AFTER - 1)
    assert await checker.run_once() == 0
    assert _lookups(twilio) == []

    clock.advance(1)
    assert await checker.run_once() == 1
    assert _lookups(twilio) == [f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages/{sid}.json"]
    message = _message(c, message_id)
    assert message.status == "delivered"
    assert message.status_check_at is None
    last = _history(c, message_id)[-1]
    assert (last.status, last.source) == ("delivered", "provider")
    assert _checks(c, "twilio", "delivered") == 1
    clock.advance(AFTER * 10)
    assert await checker.run_once() == 0
    assert len(_lookups(twilio)) == 1


async def test_a_status_found_counts_in_the_reports_and_is_an_event_for_the_integrator(
    down: tuple[Container, Tenant], twilio: FakeTwilio, clock: FakeClock
) -> None:
    c, tenant = down
    endpoint = tenant.post(
        "/v1/webhook-endpoints",
        {"url": "http://127.0.0.1:9/outbound", "events": ["message.status_changed"]},
    )
    assert endpoint.status_code == 201, endpoint.text
    (message_id,) = await _send(c, tenant, _twilio(tenant, twilio), CUSTOMER)
    await twilio.drain()
    clock.advance(AFTER)
    assert await c.status_checker().run_once() == 1
    with c.db.read() as session:
        delivered = session.execute(
            sa.select(sa.func.sum(MessageRollup.delivered)).where(MessageRollup.period == "day")
        ).scalar_one()
        events = [
            payload["data"]
            for payload in session.execute(sa.select(WebhookEvent.payload)).scalars()
        ]
    assert delivered == 1
    assert [(e["message_id"], e["status"]) for e in events][-1] == (message_id, "delivered")


async def test_the_worker_makes_the_checks_beside_its_dispatcher(
    down: tuple[Container, Tenant], twilio: FakeTwilio, clock: FakeClock
) -> None:
    c, tenant = down
    (message_id,) = await _send(c, tenant, _twilio(tenant, twilio), CUSTOMER)
    await twilio.drain()
    clock.advance(AFTER)
    stop = asyncio.Event()
    worker = asyncio.create_task(c.dispatcher().run(stop))
    try:
        for _ in range(200):
            if _message(c, message_id).status == "delivered":
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await worker
    assert _message(c, message_id).status == "delivered"


async def test_a_look_up_that_fails_unexpectedly_is_made_again_later(
    down: tuple[Container, Tenant], twilio: FakeTwilio, clock: FakeClock
) -> None:
    c, tenant = down
    (message_id,) = await _send(c, tenant, _twilio(tenant, twilio), CUSTOMER)
    await twilio.drain()
    clock.advance(AFTER)
    twilio.messages[next(iter(twilio.messages))].status = "delivered"
    checker = c.status_checker()
    lookup = c.providers["twilio"]
    real = lookup.fetch_status  # type: ignore[attr-defined]

    async def broken(*args: Any) -> None:
        raise RuntimeError("a bug")

    lookup.fetch_status = broken  # type: ignore[attr-defined]
    try:
        assert await checker.run_once() == 1
    finally:
        lookup.fetch_status = real  # type: ignore[attr-defined]
    assert _checks(c, "twilio", "error") == 1
    check_at = _message(c, message_id).status_check_at
    assert check_at is not None
    clock.set(check_at)
    assert await checker.run_once() == 1
    assert _message(c, message_id).status == "delivered"


async def test_undelivered_and_failed_carry_the_error_codes_the_webhooks_would(
    down: tuple[Container, Tenant],
    twilio: FakeTwilio,
    telesign: FakeTeleSign,
    clock: FakeClock,
) -> None:
    c, tenant = down
    twilio.failing_numbers = {"+33612345671": "30003", "+33612345672": "30001"}
    telesign.failing_numbers = {"33612345673": 210, "33612345674": 230}
    undelivered, failed = await _send(
        c, tenant, _twilio(tenant, twilio), "+33612345671", "+33612345672"
    )
    temporary, blocked = await _send(
        c, tenant, _telesign(tenant, telesign), "+33612345673", "+33612345674"
    )
    await twilio.drain()
    await telesign.drain()
    clock.advance(AFTER)
    while await c.status_checker().run_once():
        pass

    found = {
        mid: (m.status, m.error_code, m.error_message)
        for mid in (undelivered, failed, temporary, blocked)
        for m in [_message(c, mid)]
    }
    assert found == {
        undelivered: ("undelivered", "30003", "Unreachable destination handset"),
        failed: ("failed", "30001", "Queue overflow"),
        temporary: ("undelivered", "210", "Temporary phone error"),
        blocked: ("failed", "230", "Message blocked by TeleSign"),
    }
    assert _checks(c, "twilio", "undelivered") == 1
    assert _checks(c, "telesign", "failed") == 1


async def test_a_message_without_a_final_status_is_asked_again_with_backoff_and_given_up_at_72_h(
    down: tuple[Container, Tenant], telesign: FakeTeleSign, clock: FakeClock
) -> None:
    c, tenant = down
    telesign.callback_sequence = [203]  # delivered to the gateway, and nothing after
    sent_at = clock.now()
    (message_id,) = await _send(c, tenant, _telesign(tenant, telesign), CUSTOMER)
    await telesign.drain()
    checker = c.status_checker()
    due = []
    while True:
        check_at = _message(c, message_id).status_check_at
        if check_at is None:
            break
        clock.set(check_at)
        due.append(check_at - sent_at)
        assert await checker.run_once() == 1
    assert len(_lookups(telesign)) == len(due)
    # Each wait as long as the message's age, at most 6 h; the last one at 72 h.
    assert due[:4] == [timedelta(seconds=s) for s in (600, 1200, 2400, 4800)]
    assert max(b - a for a, b in itertools.pairwise(due)) == timedelta(hours=6)
    assert due[-1] == GIVE_UP_AFTER
    message = _message(c, message_id)
    assert message.status == "sent"
    assert message.error_code is None
    note = _history(c, message_id)[-1]
    assert (note.status, note.source, note.error_code) == ("sent", "status_check", "status_unknown")
    assert "72 h" in (note.error_message or "")
    assert _checks(c, "telesign", "gave_up") == 1
    assert _checks(c, "telesign", "pending") == len(due) - 1
    clock.advance(GIVE_UP_AFTER.total_seconds())
    assert await checker.run_once() == 0


async def test_a_message_the_provider_does_not_know_ends_its_checks(
    down: tuple[Container, Tenant], twilio: FakeTwilio, clock: FakeClock
) -> None:
    c, tenant = down
    (message_id,) = await _send(c, tenant, _twilio(tenant, twilio), CUSTOMER)
    await twilio.drain()
    twilio.messages.clear()
    clock.advance(AFTER)
    assert await c.status_checker().run_once() == 1
    message = _message(c, message_id)
    assert (message.status, message.status_check_at) == ("sent", None)
    note = _history(c, message_id)[-1]
    assert note.source == "status_check"
    assert "20404" in (note.error_message or "")
    assert _checks(c, "twilio", "unknown") == 1


async def test_a_provider_error_is_asked_again_later(
    down: tuple[Container, Tenant], twilio: FakeTwilio, clock: FakeClock
) -> None:
    c, tenant = down
    (message_id,) = await _send(c, tenant, _twilio(tenant, twilio), CUSTOMER)
    await twilio.drain()
    clock.advance(AFTER)
    twilio.fail_next(1, status=503)
    assert await c.status_checker().run_once() == 1
    assert _message(c, message_id).status == "sent"
    assert _checks(c, "twilio", "error") == 1
    check_at = _message(c, message_id).status_check_at
    assert check_at is not None
    clock.set(check_at)
    assert await c.status_checker().run_once() == 1
    assert _message(c, message_id).status == "delivered"


async def test_checks_keep_to_the_rate_of_each_channel_for_every_worker(
    down: tuple[Container, Tenant], twilio: FakeTwilio, clock: FakeClock
) -> None:
    c, tenant = down
    numbers = [f"+3361234560{i}" for i in range(5)]
    await _send(c, tenant, _twilio(tenant, twilio), *numbers)
    await twilio.drain()
    clock.advance(AFTER)
    now = clock.now()
    queue = StatusCheckQueue(c.db)
    claim = {
        "limit": 100,
        "providers": ["twilio"],
        "rate": 2.0,
        "horizon": timedelta(seconds=1),
        "lease": timedelta(minutes=2),
    }
    first, _ = queue.claim(now=now, **claim)  # type: ignore[arg-type]
    second, _ = queue.claim(now=now, **claim)  # type: ignore[arg-type]
    # 2 per second within the next second; another worker gets none before the next slot.
    assert [(check.slot - now).total_seconds() for check in first] == [0.0, 0.5]
    assert second == []
    later, _ = queue.claim(now=now + timedelta(seconds=1.5), **claim)  # type: ignore[arg-type]
    assert [(check.slot - now).total_seconds() for check in later] == [1.5, 2.0]
    assert {c.message_id for c in first}.isdisjoint({c.message_id for c in later})


async def test_the_checks_are_spaced_by_the_rate(
    down: tuple[Container, Tenant], twilio: FakeTwilio, clock: FakeClock
) -> None:
    c, tenant = down
    await _send(c, tenant, _twilio(tenant, twilio), *[f"+3361234560{i}" for i in range(4)])
    await twilio.drain()
    clock.advance(AFTER)
    checker = StatusChecker(c.db, c.secrets, clock, c.providers, c.statuses, rate=5.0)
    started = time.monotonic()
    assert await checker.run_once() == 4
    # Slots at 0, 0.2, 0.4 and 0.6 s: the clock stands still, the waits are real.
    assert time.monotonic() - started >= 0.55


async def test_two_workers_never_check_the_same_message(
    down: tuple[Container, Tenant], twilio: FakeTwilio, clock: FakeClock
) -> None:
    c, tenant = down
    numbers = [f"+336123456{i:02d}" for i in range(30)]
    await _send(c, tenant, _twilio(tenant, twilio), *numbers)
    await twilio.drain()
    clock.advance(AFTER)
    workers = [
        StatusChecker(c.db, c.secrets, clock, c.providers, c.statuses, rate=1000.0, batch_size=7)
        for _ in range(2)
    ]

    async def work(checker: StatusChecker) -> int:
        total = 0
        while claimed := await checker.run_once():
            total += claimed
        return total

    counts = await asyncio.gather(*(work(w) for w in workers))
    assert sum(counts) == 30
    lookups = _lookups(twilio)
    assert len(lookups) == len(set(lookups)) == 30
    with c.db.read() as session:
        statuses = session.execute(sa.select(Message.status)).scalars().all()
    assert set(statuses) == {"delivered"}


def test_messages_of_providers_without_a_look_up_are_never_asked(
    scripted_container: Container, clock: FakeClock
) -> None:
    c = scripted_container
    with TestClient(create_app(c, run_worker=False)) as client:
        tenant = make_tenant(c, client)
        setup = make_setup(tenant)
        response = tenant.post(
            "/v1/outbound/send",
            {"configuration_id": setup.config_id, "contacts": [contact(CUSTOMER)]},
        )
        assert response.status_code == 202
        message_id = response.json()["results"][0]["message_id"]
    checker = c.status_checker()
    assert "sandbox" not in checker.providers  # the scripted stand-in answers no look-up

    async def scenario() -> None:
        assert await c.dispatcher().run_once() == 1
        assert _message(c, message_id).status_check_at == clock.now() + timedelta(seconds=AFTER)
        clock.advance(AFTER)
        assert await checker.run_once() == 1  # taken, and its checks ended unasked
        assert await checker.run_once() == 0

    asyncio.run(scenario())
    message = _message(c, message_id)
    assert (message.status, message.status_check_at) == ("sent", None)
    assert _checks(c, "sandbox", "unsupported") == 1
