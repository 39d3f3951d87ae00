"""Status reports that arrive before their send is recorded, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from outbound.adapters.db.models import Message, MessageEvent, OrphanReport
from outbound.adapters.providers.base import StatusReport
from outbound.app import Container, create_app
from outbound.domain.statuses import MessageStatus
from outbound.services import housekeeping
from outbound.testing import FakeClock, ScriptedProvider
from tests.helpers import Tenant, contact, make_setup, make_tenant


@pytest.fixture
def stenant(scripted_container: Container) -> Iterator[Tenant]:
    with TestClient(create_app(scripted_container, run_worker=False)) as client:
        yield make_tenant(scripted_container, client)


def _queue(tenant: Tenant, number: str) -> tuple[str, str]:
    setup = make_setup(tenant)
    response = tenant.post(
        "/v1/outbound/send", {"configuration_id": setup.config_id, "contacts": [contact(number)]}
    )
    assert response.status_code == 202, response.text
    return response.json()["results"][0]["message_id"], setup.channel["id"]


def _state(container: Container, message_id: str) -> tuple[str, list[str], int]:
    with container.db.read() as session:
        status = session.get(Message, message_id).status  # type: ignore[union-attr]
        history = list(
            session.execute(
                sa.select(MessageEvent.status)
                .where(MessageEvent.message_id == message_id)
                .order_by(MessageEvent.id)
            ).scalars()
        )
        orphans = session.execute(sa.select(sa.func.count()).select_from(OrphanReport))
        return str(status), history, int(orphans.scalar_one())


def _keep_early(c: Container, clock: FakeClock, pid: str, channel_id: str) -> None:
    """Keep a delivery report as if it had arrived before its send was recorded."""
    with c.db.transaction() as session:
        session.execute(
            sa.insert(OrphanReport),
            {
                "provider": "sandbox",
                "provider_message_id": pid,
                "channel_id": channel_id,
                "status": "delivered",
                "occurred_at": clock.now(),
                "received_at": clock.now(),
            },
        )


def _delivered(pid: str) -> StatusReport:
    return StatusReport(provider="sandbox", provider_message_id=pid, status=MessageStatus.DELIVERED)


async def test_a_report_before_the_record_is_kept_then_applied_with_the_record(
    stenant: Tenant, scripted_container: Container, provider: ScriptedProvider
) -> None:
    c = scripted_container
    message_id, channel_id = _queue(stenant, "+33612345678")
    # The provider's id will be SCR00000001; its delivery report comes first.
    assert c.statuses.apply_many([_delivered("SCR00000001")], channel_id=channel_id) == [False]
    assert _state(c, message_id) == ("queued", ["queued"], 1)
    assert await c.dispatcher("w").run_once() == 1  # records the send, then replays
    assert _state(c, message_id) == ("delivered", ["queued", "sending", "sent", "delivered"], 0)


async def test_a_report_kept_after_the_replay_looked_is_swept(
    stenant: Tenant, scripted_container: Container, clock: FakeClock
) -> None:
    c = scripted_container
    message_id, channel_id = _queue(stenant, "+33612345678")
    assert await c.dispatcher("w").run_once() == 1
    assert _state(c, message_id)[0] == "sent"
    # Two transactions at once: the report's found no message and kept it as an orphan, the
    # record and its replay committed in between. Nothing else would ever apply it.
    _keep_early(c, clock, "SCR00000001", channel_id)
    _keep_early(c, clock, "SCR99999999", channel_id)  # one whose send is unknown: it waits on
    assert c.statuses.sweep_orphans() == 0  # too young: the replay's business
    clock.advance(3)
    assert c.statuses.sweep_orphans() == 1
    assert _state(c, message_id) == ("delivered", ["queued", "sending", "sent", "delivered"], 1)
    assert c.statuses.sweep_orphans() == 0


async def test_a_swept_report_of_another_channel_changes_nothing(
    stenant: Tenant, scripted_container: Container, clock: FakeClock
) -> None:
    c = scripted_container
    message_id, _channel_id = _queue(stenant, "+33612345678")
    assert await c.dispatcher("w").run_once() == 1
    _keep_early(c, clock, "SCR00000001", "another-tenants-channel")
    clock.advance(3)
    assert c.statuses.sweep_orphans() == 1  # looked at, and dropped
    assert _state(c, message_id) == ("sent", ["queued", "sending", "sent"], 0)


async def test_a_running_dispatcher_sweeps(
    stenant: Tenant,
    scripted_container: Container,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = scripted_container
    message_id, channel_id = _queue(stenant, "+33612345678")
    assert await c.dispatcher("w").run_once() == 1
    _keep_early(c, clock, "SCR00000001", channel_id)
    clock.advance(3)
    monkeypatch.setattr(housekeeping, "ORPHAN_SWEEP_SECONDS", 0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(c.dispatcher("w2").run(stop))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if _state(c, message_id)[0] == "delivered":
            break
    stop.set()
    await asyncio.wait_for(task, 5)
    assert _state(c, message_id) == ("delivered", ["queued", "sending", "sent", "delivered"], 0)
