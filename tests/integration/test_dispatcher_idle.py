"""An idle worker makes one claim per poll interval, whatever its number of lanes, and still
sends what becomes due at once."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from outbound.adapters.db.models import Message
from outbound.app import Container
from outbound.services.dispatch import Dispatcher
from tests.helpers import Setup, Tenant, contact


def _claims(container: Container) -> int:
    return container.db.stages.snapshot()["claim"][1]


async def test_idle_lanes_leave_the_polling_to_one_and_wake_on_work(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    dispatcher = container.dispatcher()
    lanes = max(
        1,
        min(16, 2 * container.settings.worker_concurrency // container.settings.worker_batch_size),
    )
    assert lanes >= 4
    interval = container.settings.worker_poll_interval
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        await asyncio.sleep(interval / 2)  # every lane claims once as it starts
        before = _claims(container)
        await asyncio.sleep(10 * interval)
        idle = _claims(container) - before
        # One poller: about one claim per interval (a lane per interval, not every lane).
        assert idle <= 10 + 2, idle
        response = tenant.post(
            "/v1/outbound/send",
            {"configuration_id": setup.config_id, "contacts": [contact()]},
        )
        assert response.status_code == 202, response.text
        for _ in range(200):
            with container.db.read() as session:
                status = session.execute(sa.select(Message.status)).scalar_one()
            if status != "queued":
                break
            await asyncio.sleep(interval / 4)
        assert status in {"sending", "sent", "delivered"}
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def test_messages_accepted_in_the_process_wake_the_polling_lane(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    """Polling a minute apart, the dispatcher still claims at once what this process queues."""
    dispatcher = Dispatcher(
        container.db,
        container.providers,
        container.secrets,
        container.clock,
        poll_interval=60,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        await asyncio.sleep(0.3)  # every lane claims once as it starts, then waits
        response = tenant.post(
            "/v1/outbound/send",
            {"configuration_id": setup.config_id, "contacts": [contact()]},
        )
        assert response.status_code == 202, response.text
        async with asyncio.timeout(20):
            while True:
                with container.db.read() as session:
                    status = session.execute(sa.select(Message.status)).scalar_one()
                if status != "queued":
                    break
                await asyncio.sleep(0.05)
        assert status in {"sending", "sent", "delivered"}
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
