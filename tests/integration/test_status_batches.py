"""Delivery reports arriving together are applied together: one transaction for all of their
channels, one statement for their moves, on SQLite and PostgreSQL."""

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
from tests.helpers import Setup, Tenant, contact, make_setup, make_tenant


@pytest.fixture
def stenant(scripted_container: Container) -> Iterator[Tenant]:
    with TestClient(create_app(scripted_container, run_worker=False)) as client:
        yield make_tenant(scripted_container, client)


async def _sent(c: Container, tenant: Tenant, setup: Setup, count: int) -> dict[str, str]:
    """Messages sent through ``setup``'s channel: their ids by provider id."""
    response = tenant.post(
        "/v1/outbound/send",
        {
            "configuration_id": setup.config_id,
            "contacts": [contact(f"+3361234{i:04d}") for i in range(count)],
        },
    )
    assert response.status_code == 202, response.text
    ids = [r["message_id"] for r in response.json()["results"]]
    assert await c.dispatcher("w").run_once() == count
    with c.db.read() as session:
        return {
            str(row.provider_message_id): row.id
            for row in session.execute(
                sa.select(Message.id, Message.provider_message_id).where(Message.id.in_(ids))
            )
        }


def _second_channel(tenant: Tenant, setup: Setup) -> Setup:
    """Another channel of the tenant, with a configuration of ``setup``'s template."""
    channel = tenant.post(
        "/v1/channels",
        {"name": "SMS 2", "type": "sms", "provider": "sandbox", "sender": "+15005550007"},
    )
    assert channel.status_code == 201, channel.text
    config = tenant.post(
        "/v1/outbound-configurations",
        {
            "name": "Other updates",
            "channel_type": "sms",
            "channel_id": channel.json()["id"],
            "template_id": setup.template["id"],
            "default_locale": "en-US",
        },
    )
    assert config.status_code == 201, config.text
    return Setup(channel.json(), setup.template, config.json())


def _report(pid: str, status: MessageStatus, code: str | None = None) -> StatusReport:
    return StatusReport(
        provider="sandbox",
        provider_message_id=pid,
        status=status,
        error_code=code,
        error_message="carrier said no" if code else None,
    )


async def test_reports_of_several_channels_arriving_together_share_one_transaction(
    stenant: Tenant, scripted_container: Container
) -> None:
    c = scripted_container
    first = make_setup(stenant)
    second = _second_channel(stenant, first)
    ones = await _sent(c, stenant, first, 2)
    (pid_c, other), *_ = (await _sent(c, stenant, second, 1)).items()
    (pid_a, a), (pid_b, b) = ones.items()
    arrivals = [
        (_report(pid_a, MessageStatus.DELIVERED), first.channel["id"]),
        (_report(pid_b, MessageStatus.UNDELIVERED, "30003"), first.channel["id"]),
        (_report("SCR-unknown", MessageStatus.DELIVERED), first.channel["id"]),
        (_report(pid_c, MessageStatus.DELIVERED), second.channel["id"]),
        # Through the wrong channel: matches nothing, kept for that channel.
        (_report(pid_a, MessageStatus.UNDELIVERED, "1"), second.channel["id"]),
    ]
    before = c.db.stages.snapshot()["report"][1]
    matched = await asyncio.gather(
        *(c.statuses.report(report, channel_id=channel) for report, channel in arrivals)
    )
    assert matched == [True, True, False, True, False]
    assert c.db.stages.snapshot()["report"][1] - before == 1

    with c.db.read() as session:
        rows = {
            m.id: m
            for m in session.execute(
                sa.select(Message).where(Message.id.in_([a, b, other]))
            ).scalars()
        }
        moves = session.execute(
            sa.select(MessageEvent.message_id, MessageEvent.status, MessageEvent.error_code)
            .where(MessageEvent.source == "provider")
            .order_by(MessageEvent.id)
        ).all()
        orphans = session.execute(
            sa.select(OrphanReport.provider_message_id, OrphanReport.channel_id)
        ).all()
    assert (rows[a].status, rows[a].error_code, rows[a].status_check_at) == (
        "delivered",
        None,
        None,
    )
    assert (rows[b].status, rows[b].error_code) == ("undelivered", "30003")
    assert rows[b].error_message == "carrier said no"
    assert rows[other].status == "delivered"
    assert sorted(tuple(m) for m in moves) == sorted(
        [(a, "delivered", None), (b, "undelivered", "30003"), (other, "delivered", None)]
    )
    assert sorted(tuple(o) for o in orphans) == sorted(
        [("SCR-unknown", first.channel["id"]), (pid_a, second.channel["id"])]
    )


async def test_the_statements_of_a_batch_of_reports_do_not_grow_with_it(
    stenant: Tenant, scripted_container: Container
) -> None:
    c = scripted_container
    setup = make_setup(stenant)

    async def apply(count: int) -> int:
        sent = await _sent(c, stenant, setup, count)
        before = c.db.stages.snapshot()["report"][0]
        reports = [_report(pid, MessageStatus.DELIVERED) for pid in sent]
        assert c.statuses.apply_many(reports, channel_id=setup.channel["id"]) == [True] * count
        return c.db.stages.snapshot()["report"][0] - before

    assert await apply(2) == await apply(6)
