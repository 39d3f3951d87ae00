"""Export benchmark: ``python -m bench.exports [--messages N] [--postgres URL]``.

Does exporting N messages (default 1,000,000) as CSV stream in constant memory? N messages
with two history rows each (queued, sent) are written directly into a fresh database, then
``MessageExport.csv`` (the code behind ``GET /v1/messages/export`` and ``outbound export
messages``) is read to the end, its text thrown away. Printed: the rows written, the resident
memory of the process after 1%, 10%, 50% and 100% of the rows were exported, the export's
time and rate. Record results with the machine in bench/results.md.
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
from outbound.adapters.db.models import Message, MessageEvent, Organization
from outbound.app import build_container
from outbound.config import Settings
from outbound.services.exports import MessageExport
from outbound.services.tracking import MessageFilter

CHUNK = 20_000
START = datetime(2026, 11, 1, tzinfo=UTC)
ORG = "00000000-0000-0000-0000-0000000000e1"


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _load(url: str, count: int) -> float:
    began = time.perf_counter()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.insert(Organization), {"id": ORG, "name": "export", "created_at": START})
    for first in range(0, count, CHUNK):
        messages, events = [], []
        for i in range(first, min(count, first + CHUNK)):
            created = START + timedelta(seconds=i)
            message_id = str(uuid.UUID(int=i))
            messages.append(
                {
                    "id": message_id,
                    "org_id": ORG,
                    "contact_index": 0,
                    "configuration_id": "configuration",
                    "channel_id": "channel",
                    "template_id": "template",
                    "channel_type": "sms",
                    "provider": "twilio",
                    "to_raw": f"+3361{i:07d}",
                    "to_number": f"+3361{i:07d}",
                    "from_number": "+15005550006",
                    "locale": "fr-FR",
                    "country": "FR",
                    "body": f"Bonjour, votre dossier CAS-{i:07d} est prêt.",
                    "encoding": "UCS-2",
                    "segments": 1,
                    "status": "sent",
                    "provider_message_id": f"SM{i:032d}",
                    "attempts": 1,
                    "max_attempts": 8,
                    "scheduled_at": created,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            for status, at in (("queued", created), ("sent", created + timedelta(seconds=1))):
                events.append(
                    {
                        "message_id": message_id,
                        "org_id": ORG,
                        "status": status,
                        "occurred_at": at,
                        "source": "api" if status == "queued" else "worker",
                    }
                )
        with engine.begin() as conn:
            conn.execute(sa.insert(Message), messages)
            conn.execute(sa.insert(MessageEvent), events)
    engine.dispose()
    return time.perf_counter() - began


def _measure(label: str, url: str, data_dir: Path, count: int) -> None:
    secret = Fernet.generate_key().decode()
    container = build_container(Settings(data_dir=data_dir, database_url=url, secret_key=secret))
    container.migrate()
    seconds = _load(container.settings.resolved_database_url, count)
    console.print(f"[bold]{label}[/]: {count:,} messages written in {seconds:.0f} s")
    export = MessageExport(container.db)
    marks = {max(1, count // 100): "1%", count // 10: "10%", count // 2: "50%", count: "100%"}
    rows, size, began = 0, 0, time.perf_counter()
    console.print(f"  resident memory before: {_rss_mb():.0f} MB")
    for chunk in export.csv(ORG, MessageFilter()):
        size += len(chunk)
        before = rows
        rows += chunk.count("\r\n")
        for mark, name in marks.items():
            if before < mark + 1 <= rows:
                console.print(f"  after {name} ({mark:,} rows): {_rss_mb():.0f} MB")
    took = time.perf_counter() - began
    console.print(
        f"  exported {rows - 1:,} rows, {size / 1e6:.0f} MB of CSV in {took:.0f} s "
        f"({(rows - 1) / took:,.0f} rows/s)"
    )
    container.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a database is created)")
    args = parser.parse_args()
    console.print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'export.db'}"
        _measure("SQLite", url, Path(tmp), args.messages)
    if args.postgres:
        with _fresh(args.postgres) as url, tempfile.TemporaryDirectory() as tmp:
            assert url is not None
            _measure("PostgreSQL", url, Path(tmp), args.messages)


if __name__ == "__main__":
    main()
