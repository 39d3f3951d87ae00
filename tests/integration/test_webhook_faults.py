"""Every event of a message run reaches a real receiver, once per event id, in order per
message, through faults: 500s, timeouts, the receiver down for a while, and the deliverer
stopped mid-delivery and started again (two deliverers after that). Both databases.

``OUTBOUND_TEST_WEBHOOK_MESSAGES`` sets the size of the run (200 by default; 1,000 for the
figures in bench/results.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from outbound.adapters.db.models import Message, MessageEvent, WebhookDelivery
from outbound.adapters.webhook_client import WebhookClient
from outbound.app import Container
from outbound.clock import SystemClock
from outbound.config import Settings
from outbound.domain.webhooks import AllowedHosts
from outbound.services.webhook_delivery import WebhookDeliverer
from tests.helpers import SECRET, Setup, Tenant, contact
from tests.helpers.webhook_receiver import ERROR, HANG, OK, Receiver

MESSAGES = int(os.environ.get("OUTBOUND_TEST_WEBHOOK_MESSAGES", "200"))
SCHEDULE = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
TIMEOUT = 0.4


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        secret_key=SECRET,
        default_region="FR",
        sandbox_delivery_delay=0.0,
        lease_seconds=30.0,
        webhook_allowed_hosts="127.0.0.1",
    )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver(hang_seconds=TIMEOUT * 2.5)
    await server.start()
    yield server
    await server.stop()


def _fault(webhook_id: str, seen: int) -> str:
    """Per event, decided by its id: a tenth fail once with 500, a twentieth hang past the
    sender's timeout (processed, so the retry is a duplicate), one in fifty fail twice."""
    roll = int(hashlib.sha256(webhook_id.encode()).hexdigest()[:4], 16) % 100
    if seen == 0 and roll < 10:
        return ERROR
    if seen == 0 and roll < 15:
        return HANG
    if seen == 1 and roll < 2:
        return ERROR
    return OK


def _deliverer(container: Container, name: str, lease: float, grace: float) -> WebhookDeliverer:
    return WebhookDeliverer(
        container.db,
        container.secrets,
        SystemClock(),
        WebhookClient(AllowedHosts.parse("127.0.0.1"), timeout=TIMEOUT),
        worker_id=name,
        concurrency=40,
        poll_interval=0.05,
        lease_seconds=lease,
        retry_schedule=SCHEDULE,
        shutdown_grace_seconds=grace,
    )


async def _dispatch_all(container: Container, count: int) -> None:
    """Send every message and apply its delivery report (the sandbox, no delay)."""
    dispatcher = container.dispatcher()
    while True:
        await dispatcher.run_once()
        await container.providers["sandbox"].drain()  # type: ignore[attr-defined]
        with container.db.read() as session:
            delivered = session.execute(
                sa.select(sa.func.count()).where(Message.status == "delivered")
            ).scalar_one()
        if delivered == count:
            return
        await asyncio.sleep(0.01)


async def _wait(condition: object, timeout: float = 120.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def test_every_event_arrives_once_per_id_in_order_through_faults(
    tenant: Tenant, setup: Setup, container: Container, receiver: Receiver
) -> None:
    endpoint = tenant.post(
        "/v1/webhook-endpoints", {"url": receiver.url, "events": ["message.status_changed"]}
    )
    assert endpoint.status_code == 201, endpoint.text
    receiver.secret = endpoint.json()["secret"]
    receiver.fault = _fault
    numbers = [f"+3361234{i:04d}" for i in range(MESSAGES)]
    for start in range(0, MESSAGES, 100):
        response = tenant.post(
            "/v1/outbound/send",
            {
                "configuration_id": setup.config_id,
                "contacts": [contact(n) for n in numbers[start : start + 100]],
            },
        )
        assert response.status_code == 202, response.text
    expected_events = MESSAGES * 4  # queued, sending, sent, delivered

    # Deliverer A runs while the messages are sent and delivered.
    stop_a = asyncio.Event()
    first = _deliverer(container, "deliverer-a", lease=1.0, grace=0.0)
    task_a = asyncio.create_task(first.run(stop_a))
    dispatching = asyncio.create_task(_dispatch_all(container, MESSAGES))

    # The receiver goes down for a second once a quarter of the events arrived.
    await _wait(lambda: len(receiver.accepted) >= expected_events // 4)
    await receiver.stop()
    await asyncio.sleep(1.0)
    await receiver.start()

    # Half-way, A is stopped with calls in flight and no grace: those deliveries stay
    # `delivering` under A's lease until another deliverer takes them over.
    await _wait(lambda: len(receiver.accepted) >= expected_events // 2)
    stop_a.set()
    task_a.cancel()
    await asyncio.gather(task_a, return_exceptions=True)
    await first._client.aclose()
    with container.db.read() as session:
        stranded = session.execute(
            sa.select(sa.func.count()).where(
                WebhookDelivery.status == "delivering", WebhookDelivery.worker_id == "deliverer-a"
            )
        ).scalar_one()

    # Two deliverers take over.
    stop = asyncio.Event()
    others = [_deliverer(container, f"deliverer-{n}", lease=5.0, grace=5.0) for n in "bc"]
    tasks = [asyncio.create_task(d.run(stop)) for d in others]
    try:
        await dispatching
        with container.db.read() as session:
            history = session.execute(
                sa.select(MessageEvent.message_id, MessageEvent.status).order_by(MessageEvent.id)
            ).all()
        assert len(history) == expected_events
        await _wait(lambda: len(receiver.accepted) >= expected_events)
        await _wait(
            lambda: _pending(container) == 0,
        )
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for deliverer in others:
            await deliverer._client.aclose()

    # Every call verified with the standardwebhooks library.
    assert all(call.verified for call in receiver.calls)
    # Every event exactly once per event id: as many distinct ids as history rows.
    assert len(receiver.accepted) == expected_events
    # In order per message: the statuses as first received equal the history's.
    expected: dict[str, list[str]] = {}
    for message_id, status in history:
        expected.setdefault(message_id, []).append(status)
    received: dict[str, list[str]] = {}
    for payload in receiver.accepted.values():
        received.setdefault(payload["data"]["message_id"], []).append(payload["data"]["status"])
    assert received == expected
    # The faults happened, and what they cost in copies.
    answers = [call.answer for call in receiver.calls]
    duplicates = sum(receiver.copies(i) - 1 for i in receiver.accepted if receiver.copies(i) > 1)
    assert answers.count(ERROR) > 0 and answers.count(HANG) > 0
    with container.db.read() as session:
        statuses = set(session.execute(sa.select(WebhookDelivery.status)).scalars())
    assert statuses == {"succeeded"}
    print(  # noqa: T201 - the run's figures, shown with -s
        f"{MESSAGES} messages, {expected_events} events, {len(receiver.calls)} calls, "
        f"{answers.count(ERROR)} answered 500, {answers.count(HANG)} hung, "
        f"{stranded} stranded by the stop, {duplicates} duplicate copies"
    )


def _pending(container: Container) -> int:
    with container.db.read() as session:
        return int(
            session.execute(
                sa.select(sa.func.count()).where(
                    WebhookDelivery.status.in_(("pending", "delivering"))
                )
            ).scalar_one()
        )


KILLED_RUN = 100


async def test_a_worker_killed_mid_delivery_loses_no_event(
    tenant: Tenant, setup: Setup, container: Container, settings: Settings, tmp_path: Path
) -> None:
    """``outbound worker`` killed with SIGKILL while webhook calls are in flight; a second
    worker delivers the rest, and what the first had in flight again (same ids)."""
    receiver = Receiver(delay_seconds=0.2)
    await receiver.start()
    processes: list[subprocess.Popen[bytes]] = []

    def start_worker() -> subprocess.Popen[bytes]:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")},
            "OUTBOUND_DATABASE_URL": settings.resolved_database_url,
            "OUTBOUND_SECRET_KEY": SECRET,
            "OUTBOUND_DATA_DIR": str(tmp_path),
            "OUTBOUND_LEASE_SECONDS": "2",
            "OUTBOUND_WEBHOOK_TIMEOUT": "1",
            "OUTBOUND_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
            "OUTBOUND_SANDBOX_DELIVERY_DELAY": "0",
            "OUTBOUND_LOG_LEVEL": "WARNING",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "outbound", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(process)
        return process

    try:
        endpoint = tenant.post(
            "/v1/webhook-endpoints", {"url": receiver.url, "events": ["message.status_changed"]}
        )
        assert endpoint.status_code == 201, endpoint.text
        receiver.secret = endpoint.json()["secret"]
        response = tenant.post(
            "/v1/outbound/send",
            {
                "configuration_id": setup.config_id,
                "contacts": [contact(f"+3361234{i:04d}") for i in range(KILLED_RUN)],
            },
        )
        assert response.status_code == 202, response.text
        expected_events = KILLED_RUN * 4
        first = start_worker()
        await _wait(lambda: len(receiver.accepted) >= expected_events // 3, timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        with container.db.read() as session:
            stranded = session.execute(
                sa.select(sa.func.count()).where(WebhookDelivery.status == "delivering")
            ).scalar_one()
        start_worker()
        await _wait(lambda: _delivered(container) == KILLED_RUN, timeout=90)
        await _wait(lambda: len(receiver.accepted) >= expected_events, timeout=90)
        await _wait(lambda: _pending(container) == 0, timeout=30)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)
        await receiver.stop()

    with container.db.read() as session:
        history = session.execute(
            sa.select(MessageEvent.message_id, MessageEvent.status).order_by(MessageEvent.id)
        ).all()
    expected: dict[str, list[str]] = {}
    for message_id, status in history:
        expected.setdefault(message_id, []).append(status)
    received: dict[str, list[str]] = {}
    for payload in receiver.accepted.values():
        received.setdefault(payload["data"]["message_id"], []).append(payload["data"]["status"])
    assert all(call.verified for call in receiver.calls)
    assert len(receiver.accepted) == len(history)
    assert received == expected
    duplicates = len([c for c in receiver.calls if c.answer == OK]) - len(receiver.accepted)
    print(  # noqa: T201 - the run's figures, shown with -s
        f"{KILLED_RUN} messages, {len(history)} events, {stranded} in flight at the kill, "
        f"{duplicates} duplicate copies"
    )


def _delivered(container: Container) -> int:
    with container.db.read() as session:
        return int(
            session.execute(
                sa.select(sa.func.count()).where(Message.status == "delivered")
            ).scalar_one()
        )
