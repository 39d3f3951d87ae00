"""The dashboard's figures, read from the messages on both databases."""

from __future__ import annotations

import sqlalchemy as sa

from outbound.adapters.db.models import Channel, Message
from outbound.app import Container
from outbound.testing import FakeClock
from tests.helpers import Setup, Tenant, contact


def _send(tenant: Tenant, setup: Setup, count: int, start: int = 0) -> list[str]:
    response = tenant.post(
        "/v1/outbound/send",
        {
            "configuration_id": setup.config_id,
            "contacts": [contact(f"+336123456{start + i:02d}") for i in range(count)],
        },
    )
    assert response.status_code == 202, response.text
    return [r["message_id"] for r in response.json()["results"]]


def _set_status(container: Container, ids: list[str], status: str) -> None:
    with container.db.transaction() as session:
        session.execute(sa.update(Message).where(Message.id.in_(ids)).values(status=status))


def test_totals_per_channel_chart_outbox_and_stopped_channels(
    container: Container, clock: FakeClock, tenant: Tenant, setup: Setup, other_tenant: Tenant
) -> None:
    old = _send(tenant, setup, 2)
    clock.advance(8 * 86400)  # older than the seven days
    ids = _send(tenant, setup, 6, start=10)
    _set_status(container, ids[:3], "delivered")
    _set_status(container, ids[3:4], "undelivered")
    _set_status(container, ids[4:5], "failed")
    clock.advance(3600)
    later = _send(tenant, setup, 1, start=20)
    with container.db.transaction() as session:
        session.execute(
            sa.update(Channel)
            .where(Channel.id == setup.channel["id"])
            .values(healthy=False, health_detail="credentials refused")
        )

    summary = container.dashboard.summary(tenant.org_id)
    assert old and later
    [channel] = summary.channels
    assert (channel.requested, channel.delivered, channel.failed, channel.pending) == (7, 3, 2, 2)
    assert not channel.warning  # 2 of 7 failed, but 2 failures are below the minimum
    assert round(channel.failed_rate, 3) == round(2 / 7, 3)
    hourly = summary.hourly
    assert len(hourly.hours) == 24
    assert hourly.counts["delivered"][-2] == 3
    assert hourly.counts["queued"][-2:] == [1, 1]
    assert "sent" not in hourly.counts
    assert summary.outbox_due == 4  # two old ones, one of the six, the latest
    assert summary.oldest_due is not None and summary.oldest_due.tzinfo is not None
    assert [s.name for s in summary.stopped_channels] == [setup.channel["name"]]
    assert summary.stopped_channels[0].detail == "credentials refused"
    assert summary.runs == []
    _set_status(container, ids[5:6], "rejected")
    assert container.dashboard.summary(tenant.org_id).channels[0].warning
    empty = container.dashboard.summary(other_tenant.org_id)
    assert (empty.channels, empty.outbox_due, empty.stopped_channels) == ([], 0, [])
