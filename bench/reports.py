"""Reports benchmark: ``python -m bench.reports [--messages N] [--postgres URL] [--runs R]``.

How long does a 30-day message report take over a large history? The rollup rows that N
messages (default 10,000,000) accepted over 30 days leave are written **directly**, per hour
and per day as the service keeps them (creating and dispatching 10 million messages would
take hours on this machine; the rollups are what a
report reads, and ``tests/integration/test_report_rollups.py`` shows that the status path
writes exactly these rows): one organisation with 20 configurations (half of them sending
through a flow run a day), 2 locales and 3 countries, each hour of 30 days, with counters in
realistic proportions, reasons for skips, rejections and failures, and latency histograms; plus
4 other organisations with a quarter of its volume each, so that the report has to find its
own rows among others'.

Then each report runs R times through ``ReportService`` (the code behind
``GET /v1/reports/…``, without HTTP): totals only; by day (UTC, Europe/Paris, Asia/Kolkata: a
half-hour offset) and by hour; by each dimension alone (configuration, template, channel,
provider, flow run, locale, country); by two dimensions; by a dimension and day or hour; the
funnel by configuration. Printed: rollup rows, load time, and per report the groups returned
and the median and p95 time. SQLite and, with ``--postgres``, PostgreSQL (``--no-sqlite``:
PostgreSQL only; ``--only TEXT``: the reports whose names hold TEXT). Record results with the
machine in bench/results.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet
from rich.table import Table

from bench.__main__ import _fresh, _pct, console
from outbound.adapters.db.models import (
    Channel,
    MessageRollup,
    MessageRollupReason,
    Organization,
)
from outbound.app import build_container
from outbound.config import Settings
from outbound.domain.reports import LATENCY_BUCKETS
from outbound.services.reports import ReportQuery, ReportService, parse_zone

DAYS = 30
CONFIGURATIONS = 20
LOCALES = ("fr-FR", "en-GB")
COUNTRIES = ("FR", "GB", "BE")
OTHER_ORGS = 4
CHUNK = 10_000
END = datetime(2026, 12, 1, tzinfo=UTC)
TARGET_ORG = "00000000-0000-0000-0000-000000000001"


def _counters(rng: random.Random, n: int) -> dict[str, int]:
    skipped = int(n * 0.02)
    rejected = int(n * 0.01)
    failed = int(n * 0.01)
    sent = n - skipped - rejected - failed
    delivered = int(sent * 0.95)
    undelivered = int(sent * 0.03)
    values = {
        "requested": n,
        "skipped": skipped,
        "rejected": rejected,
        "canceled": 0,
        "sent": sent,
        "delivered": delivered,
        "undelivered": undelivered,
        "failed": failed,
        "failovers": int(sent * 0.005),
        "segments": int(sent * 1.3),
        "replied": int(delivered * 0.05),
    }
    for kind, buckets in (("sent", (0, 1, 2)), ("delivered", (2, 3, 4, 5))):
        for i in range(LATENCY_BUCKETS):
            values[f"{kind}_latency_{i}"] = 0
        total = sent if kind == "sent" else delivered
        for index, bucket in enumerate(buckets):
            share = total // len(buckets) if index < len(buckets) - 1 else total
            values[f"{kind}_latency_{bucket}"] = share
            total -= share
    return values


def _load(url: str, messages: int, seed: int = 7) -> tuple[int, int, float]:
    """Write the rollups of ``messages`` messages (and the other organisations'); returns rows
    of each table and seconds taken."""
    rng = random.Random(seed)
    engine = sa.create_engine(url)
    began = time.perf_counter()
    rollups: list[dict[str, Any]] = []
    reasons: list[dict[str, Any]] = []
    counts = [0, 0]

    def flush(force: bool = False) -> None:
        for table, rows, slot in (
            (MessageRollup.__table__, rollups, 0),
            (MessageRollupReason.__table__, reasons, 1),
        ):
            if rows and (force or len(rows) >= CHUNK):
                with engine.begin() as conn:
                    conn.execute(sa.insert(table), rows)
                counts[slot] += len(rows)
                rows.clear()

    orgs = [(TARGET_ORG, CONFIGURATIONS, messages)] + [
        (f"00000000-0000-0000-0000-00000000010{i}", CONFIGURATIONS // 4, messages // 4)
        for i in range(OTHER_ORGS)
    ]
    with engine.begin() as conn:
        for oi, (org_id, configurations, _) in enumerate(orgs):
            conn.execute(sa.insert(Organization), {"id": org_id, "name": org_id, "created_at": END})
            for c in range(configurations):
                conn.execute(
                    sa.insert(Channel),
                    {
                        "id": f"o{oi}-channel-{c:02d}",
                        "org_id": org_id,
                        "name": f"channel {c}",
                        "type": "sms",
                        "provider": ("twilio", "telesign", "acs")[c % 3],
                        "sender": "+15005550006",
                        "credential_fields": [],
                        "options": {},
                        "healthy": True,
                        "webhook_token": "",
                        "created_at": END,
                        "updated_at": END,
                    },
                )
    start = END - timedelta(days=DAYS)
    for oi, (org_id, configurations, volume) in enumerate(orgs):
        cells = DAYS * 24 * configurations * len(LOCALES) * len(COUNTRIES)
        per_cell = max(1, volume // cells)
        day_values: dict[tuple[Any, ...], dict[str, int]] = {}
        day_reasons: dict[tuple[Any, ...], int] = {}
        for hour_index in range(DAYS * 24):
            hour = start + timedelta(hours=hour_index)
            for c in range(configurations):
                run = f"run-{c:02d}-{hour_index // 24:02d}" if c % 2 == 0 else ""
                for locale in LOCALES:
                    for country in COUNTRIES:
                        n = max(1, int(per_cell * rng.uniform(0.5, 1.5)))
                        dims = {
                            "org_id": org_id,
                            "configuration_id": f"o{oi}-configuration-{c:02d}",
                            "template_id": f"o{oi}-template-{c:02d}",
                            "channel_id": f"o{oi}-channel-{c:02d}",
                            "flow_run_id": run,
                            "locale": locale,
                            "country": country,
                        }
                        key = {**dims, "period": "hour", "starts_at": hour}
                        values = _counters(rng, n)
                        rollups.append({**key, **values})
                        day = day_values.setdefault(tuple(dims.items()), dict.fromkeys(values, 0))
                        for name, value in values.items():
                            day[name] += value
                        for kind, code in (
                            ("skipped", "opted_out"),
                            ("rejected", "invalid_number"),
                            ("failed", ("30003", "30007")[hour_index % 2]),
                        ):
                            if values[kind]:
                                reasons.append(
                                    {**key, "kind": kind, "code": code, "count": values[kind]}
                                )
                                reason_key = (tuple(dims.items()), kind, code)
                                day_reasons[reason_key] = (
                                    day_reasons.get(reason_key, 0) + values[kind]
                                )
                        flush()
            if hour_index % 24 == 23:
                day_start = hour.replace(hour=0)
                for dims_items, values in day_values.items():
                    rollups.append(
                        {**dict(dims_items), "period": "day", "starts_at": day_start, **values}
                    )
                for (dims_items, kind, code), count in day_reasons.items():
                    reasons.append(
                        {
                            **dict(dims_items),
                            "period": "day",
                            "starts_at": day_start,
                            "kind": kind,
                            "code": code,
                            "count": count,
                        }
                    )
                day_values.clear()
                day_reasons.clear()
                flush()
    flush(force=True)
    # The state autovacuum keeps a settled table in: statistics, and (PostgreSQL) the
    # visibility map that lets a query read an index alone.
    statement = "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(statement))
    engine.dispose()
    return counts[0], counts[1], time.perf_counter() - began


def _scenarios(service: ReportService) -> list[tuple[str, Callable[[], int]]]:
    since = END - timedelta(days=DAYS)

    def report(group_by: list[str], zone: str = "UTC") -> Callable[[], int]:
        query = ReportQuery(since, END, group_by, parse_zone(zone))
        return lambda: len(service.messages(TARGET_ORG, query)["groups"])

    def funnel() -> int:
        return len(service.funnel(TARGET_ORG, ReportQuery(since, END), "configuration")["groups"])

    return [
        ("totals", report([])),
        ("day", report(["day"])),
        ("day (Europe/Paris)", report(["day"], "Europe/Paris")),
        ("day (Asia/Kolkata)", report(["day"], "Asia/Kolkata")),
        ("hour", report(["hour"])),
        ("hour (Europe/Paris)", report(["hour"], "Europe/Paris")),
        ("configuration", report(["configuration"])),
        ("template", report(["template"])),
        ("channel", report(["channel"])),
        ("provider", report(["provider"])),
        ("flow run", report(["flow_run"])),
        ("locale", report(["locale"])),
        ("country", report(["country"])),
        ("country, provider", report(["country", "provider"])),
        ("configuration, day (Europe/Paris)", report(["configuration", "day"], "Europe/Paris")),
        ("configuration, day (Asia/Kolkata)", report(["configuration", "day"], "Asia/Kolkata")),
        ("country, hour", report(["country", "hour"])),
        ("configuration, hour", report(["configuration", "hour"])),
        ("funnel by configuration", funnel),
    ]


def _measure(
    label: str, url: str, data_dir: Path, messages: int, runs: int, only: str | None = None
) -> None:
    settings = Settings(
        data_dir=data_dir, database_url=url, secret_key=Fernet.generate_key().decode()
    )
    container = build_container(settings)
    container.migrate()
    rollups, reasons, seconds = _load(container.settings.resolved_database_url, messages)
    console.print(
        f"[bold]{label}[/]: {messages:,} messages' rollups: {rollups:,} rollup rows and "
        f"{reasons:,} reason rows in all organisations, written in {seconds:.0f} s"
    )
    table = Table("report (30 days)", "groups", "median ms", "p95 ms", title=label)
    for name, run in _scenarios(container.reports):
        if only and only not in name:
            continue
        run()  # warm: the first query reads the pages into the cache
        times, groups = [], 0
        for _ in range(runs):
            began = time.perf_counter()
            groups = run()
            times.append((time.perf_counter() - began) * 1_000)
        table.add_row(
            name, str(groups), f"{statistics.median(times):.1f}", f"{_pct(times, 95):.1f}"
        )
    console.print(table)
    container.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a database is created)")
    parser.add_argument("--only", help="the reports whose names hold this text")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    console.print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'reports.db'}"
            _measure("SQLite", url, Path(tmp), args.messages, args.runs, args.only)
    if args.postgres:
        with _fresh(args.postgres) as url, tempfile.TemporaryDirectory() as tmp:
            assert url is not None
            _measure("PostgreSQL", url, Path(tmp), args.messages, args.runs, args.only)


if __name__ == "__main__":
    main()
