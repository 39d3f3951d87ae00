"""The dashboard's figures on both databases: the last days per channel and the chart from
the report rollups, what waits now from the messages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from outbound.adapters.db.models import Channel, Message
from outbound.adapters.providers.base import StatusReport
from outbound.app import Container, create_app
from outbound.domain.statuses import MessageStatus
from outbound.errors import PermanentProviderError
from outbound.testing import FakeClock, ScriptedProvider
from tests.helpers import Setup, Tenant, make_setup, make_tenant, queue_messages


@pytest.fixture
def stenant(scripted_container: Container) -> Iterator[Tenant]:
    with TestClient(create_app(scripted_container, run_worker=False)) as client:
        yield make_tenant(scripted_container, client)


def _send(tenant: Tenant, setup: Setup, numbers: list[str]) -> list[str]:
    return queue_messages(tenant, setup.config_id, numbers)


async def test_totals_per_channel_chart_outbox_and_channels_that_wait(
    scripted_container: Container,
    provider: ScriptedProvider,
    clock: FakeClock,
    stenant: Tenant,
) -> None:
    c = scripted_container
    setup = make_setup(stenant)
    _send(stenant, setup, ["+33612345600", "+33612345601"])
    assert await c.dispatcher("w").run_once() == 2
    clock.advance(8 * 86400)  # older than the seven days
    provider.fail_next("+33612345615", PermanentProviderError("unknown number", code="21211"))
    numbers = [f"+336123456{10 + i:02d}" for i in range(6)]
    _send(stenant, setup, numbers)
    assert await c.dispatcher("w").run_once() == 6
    c.statuses.apply_many(
        [
            *(StatusReport("sandbox", f"SCR{n:08d}", MessageStatus.DELIVERED) for n in (3, 4, 5)),
            StatusReport("sandbox", "SCR00000006", MessageStatus.UNDELIVERED, error_code="30003"),
        ],
        channel_id=setup.channel["id"],
    )
    clock.advance(3600)
    [later] = _send(stenant, setup, ["+33612345620"])

    summary = c.dashboard.summary(stenant.org_id)
    [channel] = summary.channels
    # Seven accepted: three delivered, two failed (undelivered, failed), one sent and
    # waiting for its report, the latest queued.
    assert (channel.requested, channel.delivered, channel.failed, channel.pending) == (7, 3, 2, 2)
    assert not channel.warning  # 2 of 7 failed, but 2 failures are below the minimum
    assert round(channel.failed_rate, 3) == round(2 / 7, 3)
    hourly = summary.hourly
    assert len(hourly.hours) == 24
    assert hourly.hours[-1] == clock.now().replace(minute=0, second=0, microsecond=0)
    assert hourly.counts["requested"][-2:] == [6, 1]
    assert hourly.counts["delivered"][-2] == 3
    assert hourly.counts["failed"][-2] == 2
    assert summary.outbox_due == 1
    assert summary.oldest_due is not None and summary.oldest_due.tzinfo is not None
    assert summary.paused_channels == []

    # The dispatcher put the latest back: its provider kept failing (the circuit is open).
    retry_at = clock.now() + timedelta(seconds=30)
    with c.db.transaction() as session:
        session.execute(
            sa.update(Message)
            .where(Message.id == later)
            .values(error_code="circuit_open", scheduled_at=retry_at)
        )
        session.execute(
            sa.update(Channel)
            .where(Channel.id == setup.channel["id"])
            .values(healthy=False, health_detail="credentials refused")
        )
    summary = c.dashboard.summary(stenant.org_id)
    assert summary.outbox_due == 0
    [paused] = summary.paused_channels
    assert (paused.name, paused.waiting, paused.retry_at) == (setup.channel["name"], 1, retry_at)
    assert [s.name for s in summary.stopped_channels] == [setup.channel["name"]]
    assert summary.stopped_channels[0].detail == "credentials refused"
    assert summary.runs == []

    _send(stenant, setup, ["not a number"])  # rejected: a third failure
    assert c.dashboard.summary(stenant.org_id).channels[0].warning


def test_an_organisation_without_messages(container: Container, other_tenant: Tenant) -> None:
    empty = container.dashboard.summary(other_tenant.org_id)
    assert (empty.channels, empty.outbox_due, empty.stopped_channels) == ([], 0, [])
    assert empty.hourly.counts == {} and len(empty.hourly.hours) == 24
