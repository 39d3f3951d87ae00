"""Status checks benchmark: ``python -m bench.status_checks [--messages N] [--due D]
[--postgres URL]``.

What does claiming the status checks cost over a large ``messages`` table? N messages
(default 200,000) are written directly into a fresh database, one in 50 of them ``sent`` and
waiting for a check (the others final, outside the partial index), D of those (default 2,000)
due now, each with its ``sent`` history row. Then ``StatusCheckQueue.claim`` (the code behind
every worker's checks: batches of 100, a rate high enough not to limit them) is called until
nothing is due. Printed: the plan of the claim's read, how many were claimed and the median
and slowest claim. Record results with the machine in bench/results.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet

from bench.__main__ import _fresh, console
from outbound.adapters.db.models import Channel, Message, MessageEvent, Organization
from outbound.adapters.queue.status_checks import StatusCheckQueue
from outbound.app import build_container
from outbound.config import Settings

CHUNK = 20_000
WAITING_SHARE = 50
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
ORG = "00000000-0000-0000-0000-0000000000c1"
CHANNEL = "00000000-0000-0000-0000-0000000000c2"
PICK = (
    "SELECT id FROM messages WHERE status_check_at <= :now ORDER BY status_check_at, id LIMIT 100"
)


def _load(url: str, count: int, due: int) -> float:
    began = time.perf_counter()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.insert(Organization), {"id": ORG, "name": "checks", "created_at": NOW})
        conn.execute(
            sa.insert(Channel),
            {
                "id": CHANNEL,
                "org_id": ORG,
                "name": "twilio",
                "type": "sms",
                "provider": "twilio",
                "sender": "+15005550006",
                "credential_fields": [],
                "options": {},
                "created_at": NOW,
                "updated_at": NOW,
            },
        )
    waiting = 0
    for first in range(0, count, CHUNK):
        messages, events = [], []
        for i in range(first, min(count, first + CHUNK)):
            sent = NOW - timedelta(seconds=count - i)
            message_id = str(uuid.UUID(int=i))
            check_at = None
            if i % WAITING_SHARE == 0:
                check_at = NOW - timedelta(seconds=1) if waiting < due else NOW + timedelta(hours=1)
                waiting += 1
            messages.append(
                {
                    "id": message_id,
                    "org_id": ORG,
                    "contact_index": 0,
                    "channel_id": CHANNEL,
                    "channel_type": "sms",
                    "provider": "twilio",
                    "to_raw": f"+3361{i:07d}",
                    "to_number": f"+3361{i:07d}",
                    "status": "sent" if check_at is not None else "delivered",
                    "provider_message_id": f"SM{i:032d}",
                    "attempts": 1,
                    "max_attempts": 8,
                    "scheduled_at": sent,
                    "status_check_at": check_at,
                    "created_at": sent,
                    "updated_at": sent,
                }
            )
            events.append(
                {
                    "message_id": message_id,
                    "org_id": ORG,
                    "status": "sent",
                    "occurred_at": sent,
                    "source": "worker",
                }
            )
        with engine.begin() as conn:
            conn.execute(sa.insert(Message), messages)
            conn.execute(sa.insert(MessageEvent), events)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE messages"))
            conn.execute(sa.text("ANALYZE message_events"))
        else:
            conn.execute(sa.text("ANALYZE"))
    engine.dispose()
    return time.perf_counter() - began


def _measure(label: str, url: str, data_dir: Path, count: int, due: int) -> None:
    secret = Fernet.generate_key().decode()
    container = build_container(Settings(data_dir=data_dir, database_url=url, secret_key=secret))
    container.migrate()
    seconds = _load(container.settings.resolved_database_url, count, due)
    waiting = len(range(0, count, WAITING_SHARE))
    console.print(
        f"[bold]{label}[/]: {count:,} messages written in {seconds:.0f} s, "
        f"{waiting:,} waiting for a check, {min(due, waiting):,} due"
    )
    with container.db.read() as session:
        if container.db.dialect == "sqlite":
            plan = [
                str(row[-1])
                for row in session.execute(sa.text(f"EXPLAIN QUERY PLAN {PICK}"), {"now": NOW})
            ]
        else:
            plan = list(
                session.execute(
                    sa.text(f"EXPLAIN {PICK} FOR UPDATE SKIP LOCKED"), {"now": NOW}
                ).scalars()
            )
    for line in plan:
        console.print(f"  plan: {line}")
    queue = StatusCheckQueue(container.db)
    took: list[float] = []
    claimed = 0
    while True:
        began = time.perf_counter()
        checks, _ = queue.claim(
            now=NOW,
            limit=100,
            providers={"twilio"},
            rate=1_000.0,
            horizon=timedelta(seconds=10),
            lease=timedelta(minutes=2),
        )
        took.append(time.perf_counter() - began)
        if not checks:
            break
        claimed += len(checks)
    took.sort()
    console.print(
        f"  claimed {claimed:,} in {len(took)} claims (the last finds none): "
        f"median {took[len(took) // 2] * 1000:.1f} ms, slowest {took[-1] * 1000:.1f} ms"
    )
    container.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--due", type=int, default=2_000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a database is created)")
    args = parser.parse_args()
    console.print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'checks.db'}"
        _measure("SQLite", url, Path(tmp), args.messages, args.due)
    if args.postgres:
        with _fresh(args.postgres) as url, tempfile.TemporaryDirectory() as tmp:
            assert url is not None
            _measure("PostgreSQL", url, Path(tmp), args.messages, args.due)


if __name__ == "__main__":
    main()
