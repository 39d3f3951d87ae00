"""The report rollups equal a full scan of the messages and their history, on random runs with
retries, leases taken over, failovers, duplicate and out-of-order delivery reports and early
reports kept as orphans; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outbound.adapters.db.models import (
    ROLLUP_DIMENSIONS,
    Channel,
    Message,
    MessageEvent,
    MessageRollup,
    MessageRollupReason,
    new_id,
)
from outbound.adapters.providers.base import StatusReport
from outbound.adapters.queue.outbox import ClaimedMessage, Outbox, Outcome
from outbound.app import Container
from outbound.domain.reports import (
    COUNTERS,
    LATENCY_BUCKETS,
    hour_of,
    latency_bucket,
    local_day,
    parse_prices,
    percentile,
    price_of,
    reason_code,
)
from outbound.domain.statuses import MessageStatus
from outbound.services.auth import create_organization
from outbound.services.reports import GROUPS, ReportQuery, ReportService
from outbound.testing import FakeClock
from tests.helpers import Setup, Tenant

_REACHED = ("sent", "delivered", "undelivered")
_REASONS = {
    "skipped": ["opted_out", "consent_withdrawn", "frequency_cap: 1 per day to this contact"],
    "rejected": ["invalid_number: missing country code", "empty_body"],
    "queued": [None],
}
_LATENCY = [f"{k}_latency_{i}" for k in ("sent", "delivered") for i in range(LATENCY_BUCKETS)]


def _row(org_id: str, setup: Setup, data: st.DataObject, index: int, now: datetime) -> dict:
    status = data.draw(st.sampled_from(["queued", "queued", "queued", "skipped", "rejected"]))
    created = now - timedelta(minutes=data.draw(st.integers(0, 240)))
    return {
        "id": new_id(),
        "org_id": org_id,
        "request_id": None,
        "contact_index": index,
        "configuration_id": data.draw(st.sampled_from(["cfg-a", "cfg-b", None])),
        "channel_id": setup.channel["id"],
        "template_id": setup.template["id"],
        "channel_type": "sms",
        "provider": "sandbox",
        "to_raw": "+33612345678",
        "to_number": "+33612345678",
        "from_number": None,
        "locale": data.draw(st.sampled_from(["fr-FR", "en-US", None])),
        "body": "Hello",
        "encoding": "GSM-7",
        "segments": data.draw(st.sampled_from([1, 2, None])),
        "send_as_template": False,
        "template_parameters": None,
        "context": None,
        "regarding_object_id": None,
        "entity_relationship_name": None,
        "show_in_timeline": False,
        "status": status,
        "reason": data.draw(st.sampled_from(_REASONS[status])),
        "provider_message_id": None,
        "error_code": None,
        "error_message": None,
        "attempts": 0,
        "max_attempts": 5,
        "scheduled_at": created,
        "time_zone": None,
        "country": data.draw(st.sampled_from(["FR", "US", None])),
        "flow_run_id": data.draw(st.sampled_from(["run-1", None])),
        "lease_until": None,
        "worker_id": None,
        "created_at": created,
        "updated_at": created,
    }


_KINDS = ["sent", "sent", "failover", "retry", "failed"]
_STATUSES = [
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
    MessageStatus.FAILED,
]
_STEP = st.one_of(
    st.tuples(st.just("claim"), st.sampled_from(["w1", "w2"])),
    st.tuples(st.just("record"), st.sampled_from(["w1", "w2"])),
    st.tuples(st.just("wait"), st.sampled_from([1.0, 5.0, 31.0])),
    st.tuples(
        st.just("report"),
        st.lists(
            st.tuples(
                st.integers(0, 50),
                st.sampled_from(_STATUSES),
                st.integers(-120, 7_200),
                st.sampled_from(["30003", None]),
            ),
            min_size=1,
            max_size=4,
        ),
    ),
    st.tuples(st.just("sweep"), st.none()),
)


def _outcome(kind: str, code: str | None, message: ClaimedMessage, pids: list[str]) -> Outcome:
    if kind in ("sent", "failover"):
        pid = f"P{len(pids)}"
        pids.append(pid)
        return Outcome(
            message.id,
            MessageStatus.SENT,
            provider_message_id=pid,
            sent_via_channel_id="fallback-channel" if kind == "failover" else None,
            provider="sandbox",
        )
    if kind == "retry":
        return Outcome(
            message.id, MessageStatus.QUEUED, error_code="503", retry_at=message.first_attempt_at
        )
    return Outcome(message.id, MessageStatus.FAILED, error_code=code, error_message="refused")


def _run(c: Container, clock: FakeClock, setup: Setup, org_id: str, data: st.DataObject) -> None:
    """Draws everything first: what the database answers must not change what is drawn."""
    outbox = Outbox(c.db)
    now = clock.now()
    rows = [_row(org_id, setup, data, i, now) for i in range(data.draw(st.integers(1, 6)))]
    steps = data.draw(st.lists(_STEP, max_size=20))
    kinds = data.draw(st.lists(st.sampled_from(_KINDS), min_size=1, max_size=8))
    codes = data.draw(st.lists(st.sampled_from(["21211", "30007", None]), min_size=1))
    with c.db.transaction() as session:
        outbox.enqueue(session, rows, source="api")
    claimed: dict[str, list[ClaimedMessage]] = {"w1": [], "w2": []}
    pids: list[str] = []
    outcomes = 0
    channel_id = setup.channel["id"]
    for step, arg in steps:
        if step == "claim":
            claimed[arg] += outbox.claim(arg, 3, clock.now(), timedelta(seconds=30))
        elif step == "record":
            batch, claimed[arg] = claimed[arg], []
            results = []
            for m in batch:
                kind, code = kinds[outcomes % len(kinds)], codes[outcomes % len(codes)]
                outcomes += 1
                results.append(_outcome(kind, code, m, pids))
            outbox.record(arg, results, clock.now())
        elif step == "wait":
            clock.advance(arg)
        elif step == "report" and pids:
            reports = [
                StatusReport(
                    provider="sandbox",
                    provider_message_id=pids[index % len(pids)],
                    status=status,
                    occurred_at=clock.now() + timedelta(seconds=offset),
                    error_code=code,
                )
                for index, status, offset, code in arg
            ]
            c.statuses.apply_many(reports, channel_id=channel_id)
        elif step == "sweep":
            clock.advance(3.0)
            c.statuses.sweep_orphans()


def _scan(c: Container, org_id: str) -> tuple[dict, Counter]:
    """Every rollup value, counted from the messages and their history alone."""
    with c.db.read() as session:
        messages = list(
            session.execute(sa.select(Message).where(Message.org_id == org_id)).scalars()
        )
        history: dict[str, list[MessageEvent]] = {}
        for event in session.execute(
            sa.select(MessageEvent).where(MessageEvent.org_id == org_id).order_by(MessageEvent.id)
        ).scalars():
            history.setdefault(event.message_id, []).append(event)
    values: dict[tuple, Counter] = {}
    reasons: Counter = Counter()
    for m in messages:
        v: Counter = Counter()
        why: Counter = Counter()
        events = history[m.id]
        v["requested"] += 1
        for e in events:
            if e.status in ("skipped", "rejected"):
                v[e.status] += 1
                why[(e.status, reason_code(e.error_message))] += 1
            elif e.status in ("failed", "canceled"):
                v[e.status] += 1
                if e.status == "failed":
                    why[("failed", e.error_code or "")] += 1
        first = next((e for e in events if e.status in _REACHED), None)
        if first is not None:
            v["sent"] += 1
            v["segments"] += m.segments or 1
            v["failovers"] += first.source == "failover"
            latency = (first.occurred_at - m.created_at).total_seconds()
            v[f"sent_latency_{latency_bucket(latency)}"] += 1
        if m.status in ("delivered", "undelivered"):
            v[m.status] += 1
        if m.status == "delivered":
            delivered = next(e for e in events if e.status == "delivered")
            latency = (delivered.occurred_at - m.created_at).total_seconds()
            v[f"delivered_latency_{latency_bucket(latency)}"] += 1
        hour = hour_of(m.created_at)
        dimensions = tuple((getattr(m, name) or "") for name in ROLLUP_DIMENSIONS)
        for key in (("hour", hour, *dimensions), ("day", hour.replace(hour=0), *dimensions)):
            values.setdefault(key, Counter()).update(v)
            for (kind, code), n in why.items():
                reasons[(key, kind, code)] += n
    return {k: +v for k, v in values.items() if +v}, +reasons


def _rollups(c: Container, org_id: str) -> tuple[dict, Counter]:
    rollups = MessageRollup.__table__
    reason_table = MessageRollupReason.__table__
    with c.db.read() as session:
        values = {}
        for row in session.execute(sa.select(rollups).where(rollups.c.org_id == org_id)).mappings():
            key = (row["period"], row["starts_at"], *(row[name] for name in ROLLUP_DIMENSIONS))
            counted = +Counter({n: row[n] for n in (*COUNTERS, *_LATENCY)})
            if counted:
                values[key] = counted
            # No value may ever go below zero, even for a moment that rolled back.
            assert all(row[n] >= 0 for n in (*COUNTERS, *_LATENCY))
        reasons: Counter = Counter()
        for row in session.execute(
            sa.select(reason_table).where(reason_table.c.org_id == org_id)
        ).mappings():
            key = (row["period"], row["starts_at"], *(row[name] for name in ROLLUP_DIMENSIONS))
            reasons[(key, row["kind"], row["code"])] += row["count"]
    return values, +reasons


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_rollup_equals_a_full_scan(
    container: Container, clock: FakeClock, setup: Setup, tenant: Tenant, data: st.DataObject
) -> None:
    _run(container, clock, setup, tenant.org_id, data)
    assert _rollups(container, tenant.org_id) == _scan(container, tenant.org_id)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    zone=st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]),
)
def test_a_report_by_local_day_counts_each_message_on_its_day(
    container: Container, setup: Setup, tenant: Tenant, data: st.DataObject, zone: str
) -> None:
    """Day rows, edge hours and the hours a zone moves to another day add up exactly."""
    org_id = create_organization(container.db, container.clock, "Each example's own").id
    start = datetime(2026, 3, 27, tzinfo=UTC)  # across Europe's change to summer time
    minutes = data.draw(st.lists(st.integers(0, 5 * 24 * 60 - 1), min_size=1, max_size=12))
    rows = []
    for i, minute in enumerate(minutes):
        row = _row(org_id, setup, data, i, start)
        row["created_at"] = row["scheduled_at"] = start + timedelta(minutes=minute)
        rows.append(row)
    with container.db.transaction() as session:
        Outbox(container.db).enqueue(session, rows, source="api")
    since = start + timedelta(hours=data.draw(st.integers(0, 30)))
    until = start + timedelta(days=5) - timedelta(hours=data.draw(st.integers(0, 30)))
    query = ReportQuery(since, until, ["day"], ZoneInfo(zone))
    report = container.reports.messages(org_id, query)
    expected = Counter(
        local_day(hour_of(r["created_at"]), ZoneInfo(zone)).isoformat()
        for r in rows
        if since <= r["created_at"] < until
    )
    assert {g["day"]: g["requested"] for g in report["groups"]} == expected
    totals = container.reports.messages(org_id, ReportQuery(since, until))["totals"]
    assert totals["requested"] == sum(expected.values())


_GROUPINGS = [
    [],
    ["day"],
    ["hour"],
    ["configuration", "day"],
    ["provider"],
    ["country", "hour"],
    ["locale"],
    ["flow_run", "day"],
    ["channel_type", "template"],
]


def _expected(
    c: Container, org_id: str, query: ReportQuery, prices: dict
) -> dict[tuple, dict[str, object]]:
    """The report's groups computed from the full scan alone: each hour of the scan given to
    its group by its dimensions and its local day or hour."""
    with c.db.read() as session:
        channels = {
            row.id: (row.provider, row.type)
            for row in session.execute(
                sa.select(Channel.id, Channel.provider, Channel.type).where(
                    Channel.org_id == org_id
                )
            )
        }
    values, reasons = _scan(c, org_id)
    groups: dict[tuple, dict] = {}

    def group_of(key: tuple) -> dict | None:
        period, hour, *dimensions = key
        if period != "hour" or not query.since <= hour < query.until:
            return None
        row = dict(zip(ROLLUP_DIMENSIONS, dimensions, strict=True))
        provider, channel_type = channels.get(row["channel_id"], (None, None))
        labels = []
        for name in query.group_by:
            if name == "day":
                labels.append(local_day(hour, query.zone).isoformat())
            elif name == "hour":
                labels.append(hour.astimezone(query.zone).isoformat())
            elif name == "provider":
                labels.append(provider)
            elif name == "channel_type":
                labels.append(channel_type)
            else:
                labels.append(row[GROUPS[name]] or None)
        group = groups.setdefault(
            tuple(labels), {"values": Counter(), "why": Counter(), "cost": 0.0, "unpriced": 0}
        )
        group["provider"] = provider or ""
        group["price"] = price_of(prices, channel_type or "", row["country"])
        return group

    for key, counted in values.items():
        group = group_of(key)
        if group is not None:
            group["values"].update(counted)
            if group["price"] is None:
                group["unpriced"] += counted["segments"]
            else:
                group["cost"] += counted["segments"] * group["price"]
    for (key, kind, code), n in reasons.items():
        group = group_of(key)
        if group is not None:
            group["why"][(kind, group["provider"] if kind == "failed" else "", code)] += n
    return {
        labels: {
            **{name: group["values"][name] for name in COUNTERS},
            "skipped_by_reason": {
                code: n for (kind, _, code), n in sorted(group["why"].items()) if kind == "skipped"
            },
            "failed_by_code": {
                (provider or None, code or None): n
                for (kind, provider, code), n in group["why"].items()
                if kind == "failed"
            },
            "estimated_cost": round(group["cost"], 6),
            "unpriced_segments": group["unpriced"],
            "accept_to_sent": {
                "p50": percentile([group["values"][f"sent_latency_{i}"] for i in range(14)], 0.5),
                "p95": percentile([group["values"][f"sent_latency_{i}"] for i in range(14)], 0.95),
            },
        }
        for labels, group in groups.items()
        if +group["values"]
    }


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    group_by=st.sampled_from(_GROUPINGS),
    zone=st.sampled_from(["UTC", "Europe/Paris", "Asia/Kolkata", "America/New_York"]),
    prices=st.sampled_from(["", "sms=0.05", "sms:FR=0.07,sms=0.05", "sms:US=0.1"]),
)
def test_a_report_equals_the_report_of_a_full_scan(
    container: Container,
    clock: FakeClock,
    setup: Setup,
    data: st.DataObject,
    group_by: list[str],
    zone: str,
    prices: str,
) -> None:
    """Any grouping, zone and prices: the groups summed by the database (day rows, edge hours,
    hours moved between local days) are those of the messages and their history."""
    org_id = create_organization(container.db, container.clock, "Each example's own").id
    with container.db.transaction() as session:
        channel = Channel(
            org_id=org_id,
            name="SMS",
            type="sms",
            provider="sandbox",
            sender="+15005550006",
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        session.add(channel)
        session.flush()
        own = Setup({"id": channel.id}, setup.template, setup.configuration)
    _run(container, clock, own, org_id, data)
    now = hour_of(clock.now())
    since = now - timedelta(hours=data.draw(st.integers(0, 60)))
    until = now + timedelta(hours=data.draw(st.integers(1, 40)))
    query = ReportQuery(since, until, group_by, ZoneInfo(zone))
    service = ReportService(container.db, prices=parse_prices(prices))
    report = service.messages(org_id, query)
    keys = [GROUPS[name] or name for name in group_by]
    got = {
        tuple(group[k] for k in keys): {
            **{name: group[name] for name in COUNTERS if name != "segments"},
            "segments": group["segments"],
            "skipped_by_reason": group["skipped_by_reason"],
            "failed_by_code": {
                (entry["provider"], entry["code"]): entry["count"]
                for entry in group["failed_by_code"]
            },
            "estimated_cost": pytest.approx(group["estimated_cost"]),
            "unpriced_segments": group["unpriced_segments"],
            "accept_to_sent": group["accept_to_sent"],
        }
        for group in report["groups"]
    }
    expected = _expected(container, org_id, query, parse_prices(prices))
    assert got.keys() == expected.keys()
    for key, values in expected.items():
        differing = {
            name: (got[key][name], value)
            for name, value in values.items()
            if got[key][name] != value
        }
        assert not differing, (key, differing)
    assert report["totals"]["requested"] == sum(g["requested"] for g in expected.values())
