"""The reports API: message counts by group and day in a time zone, CSV, funnel, agents."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from outbound.adapters.providers.base import StatusReport
from outbound.app import Container, create_app
from outbound.domain.reports import parse_prices
from outbound.domain.roles import Role
from outbound.domain.statuses import MessageStatus
from outbound.schemas.reports import (
    AgentReport,
    FunnelGroup,
    FunnelReport,
    MessageReport,
    MessageReportGroup,
    MessageTotals,
)
from outbound.services.reports import ReportQuery, ReportService
from outbound.testing import FakeClock
from tests.helpers import Setup, Tenant, contact, make_setup, make_tenant


@pytest.fixture
def stenant(scripted_container: Container) -> Iterator[Tenant]:
    with TestClient(create_app(scripted_container, run_worker=False)) as client:
        yield make_tenant(scripted_container, client)


async def _history(c: Container, tenant: Tenant, clock: FakeClock) -> Setup:
    """Four contacts: two sent (one delivered, one undelivered), one skipped, one rejected."""
    setup = make_setup(tenant)
    response = tenant.post(
        "/v1/outbound/send",
        {
            "configuration_id": setup.config_id,
            "contacts": [
                contact("+33612345678"),
                contact("+33612345679"),
                contact("+33612345670", optin=False),
                contact("not a number"),
            ],
        },
    )
    assert response.status_code == 202, response.text
    clock.advance(3)
    assert await c.dispatcher("w").run_once() == 2
    clock.advance(60)
    c.statuses.apply_many(
        [
            StatusReport("sandbox", "SCR00000001", MessageStatus.DELIVERED),
            StatusReport("sandbox", "SCR00000002", MessageStatus.UNDELIVERED, error_code="30003"),
            # A duplicate and a late "sent": they change nothing.
            StatusReport("sandbox", "SCR00000001", MessageStatus.DELIVERED),
            StatusReport("sandbox", "SCR00000001", MessageStatus.SENT),
        ],
        channel_id=setup.channel["id"],
    )
    return setup


async def test_a_report_by_configuration_and_day_in_a_time_zone(
    stenant: Tenant, scripted_container: Container, clock: FakeClock
) -> None:
    setup = await _history(scripted_container, stenant, clock)
    answer = stenant.get(
        "/v1/reports/messages",
        params={
            "since": "2026-01-15",
            "until": "2026-01-16",
            "group_by": "configuration,day",
            "time_zone": "Europe/Paris",
        },
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["since"] == "2026-01-14T23:00:00+00:00"
    [group] = report["groups"]
    assert group["configuration_id"] == setup.config_id
    assert group["day"] == "2026-01-15"
    assert (group["requested"], group["skipped"], group["rejected"]) == (4, 1, 1)
    assert group["skipped_by_reason"] == {"opted_out": 1}
    assert group["rejected_by_reason"] == {"invalid_number": 1}
    assert (group["sent"], group["delivered"], group["undelivered"]) == (2, 1, 1)
    assert group["delivery_rate"] == 0.5
    assert group["accept_to_sent"] == {"p50": 5.0, "p95": 5.0}
    assert group["accept_to_delivered"]["p50"] == 120.0
    assert report["totals"]["requested"] == 4
    assert report["totals"]["conversations_opened"] == 0


async def test_failed_messages_by_code_with_their_meaning(
    stenant: Tenant, scripted_container: Container, clock: FakeClock
) -> None:
    setup = await _history(scripted_container, stenant, clock)
    response = stenant.post(
        "/v1/outbound/send",
        {"configuration_id": setup.config_id, "contacts": [contact("+33612345677")]},
    )
    assert response.status_code == 202
    assert await scripted_container.dispatcher("w").run_once() == 1
    scripted_container.statuses.apply_many(
        [StatusReport("sandbox", "SCR00000003", MessageStatus.FAILED, error_code="30007")],
        channel_id=setup.channel["id"],
    )
    totals = stenant.get("/v1/reports/messages", params={"since": "2026-01-15"}).json()["totals"]
    assert totals["failed"] == 1
    assert totals["failed_by_code"] == [
        {"provider": "sandbox", "code": "30007", "count": 1, "meaning": None}
    ]


async def test_estimated_cost_from_the_price_per_segment(
    stenant: Tenant, scripted_container: Container, clock: FakeClock
) -> None:
    await _history(scripted_container, stenant, clock)
    service = ReportService(scripted_container.db, prices=parse_prices("sms:FR=0.07,sms=0.05"))
    since = clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    report = service.messages(stenant.org_id, ReportQuery(since, since.replace(hour=23)))
    assert report["totals"]["segments"] == 2
    assert report["totals"]["estimated_cost"] == pytest.approx(0.14)
    assert report["totals"]["unpriced_segments"] == 0


async def test_the_report_as_csv(
    stenant: Tenant, scripted_container: Container, clock: FakeClock
) -> None:
    await _history(scripted_container, stenant, clock)
    for kwargs in (
        {"params": {"since": "2026-01-15", "group_by": "country", "format": "csv"}},
        {
            "params": {"since": "2026-01-15", "group_by": "country"},
            "headers": {"Accept": "text/csv"},
        },
    ):
        answer = stenant.get("/v1/reports/messages", **kwargs)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert [(r["country"], r["requested"], r["delivered"]) for r in rows] == [
            ("", "1", "0"),
            ("FR", "3", "1"),
            ("total", "4", "1"),
        ]
        assert rows[1]["skipped:opted_out"] == "1"


async def test_funnel_and_agents(
    stenant: Tenant, scripted_container: Container, clock: FakeClock
) -> None:
    setup = await _history(scripted_container, stenant, clock)
    funnel = stenant.get("/v1/reports/funnel", params={"since": "2026-01-15"}).json()
    assert funnel["groups"] == [
        {
            "configuration_id": setup.config_id,
            "sent": 2,
            "delivered": 1,
            "replied": 0,
            "answered": 0,
            "closed": 0,
        }
    ]
    agents = stenant.get("/v1/reports/agents", params={"since": "2026-01-15"})
    assert agents.status_code == 200
    assert agents.json()["agents"] == []
    assert stenant.get("/v1/reports/agents", Role.SENDER).status_code == 403


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"group_by": "weather"}, "group_by"),
        ({"group_by": "day,hour"}, "group_by"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-01-15", "until": "2026-01-14"}, "until"),
        ({"format": "xml"}, "format"),
    ],
)
def test_bad_parameters_name_their_field(tenant: Tenant, params: dict, field: str) -> None:
    answer = tenant.get("/v1/reports/messages", params=params)
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == field


async def test_the_description_declares_every_member_of_the_reports(
    stenant: Tenant, scripted_container: Container, clock: FakeClock
) -> None:
    await _history(scripted_container, stenant, clock)
    spec = stenant.get("/openapi.json").json()
    for path, model in (
        ("/v1/reports/messages", MessageReport),
        ("/v1/reports/funnel", FunnelReport),
        ("/v1/reports/agents", AgentReport),
    ):
        content = spec["paths"][path]["get"]["responses"]["200"]["content"]
        assert content["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{model.__name__}"
        }
        assert "text/csv" in content
    for group_by in ("", "configuration,day", "provider,hour", "country,channel_type,locale"):
        params = {"since": "2026-01-15", "group_by": group_by, "time_zone": "Asia/Kolkata"}
        report = stenant.get("/v1/reports/messages", params=params).json()
        MessageReport.model_validate(report)
        assert report["groups"]
        for group in report["groups"]:
            assert set(group) <= set(MessageReportGroup.model_fields)
        assert set(report["totals"]) == set(MessageTotals.model_fields)
    for by in ("configuration", "flow_run"):
        funnel = stenant.get("/v1/reports/funnel", params={"since": "2026-01-15", "by": by})
        FunnelReport.model_validate(funnel.json())
        assert {k for g in funnel.json()["groups"] for k in g} <= set(FunnelGroup.model_fields)
    agents = stenant.get("/v1/reports/agents", params={"since": "2026-01-15"}).json()
    assert set(agents) == set(AgentReport.model_fields)
