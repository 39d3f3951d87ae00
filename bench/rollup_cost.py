"""What the report rollups cost on the dispatch path: ``python -m bench.rollup_cost
[--messages N] [--batch B] [--postgres URL]``.

N messages (default 2,000) go through the outbox in process, as the worker drives it:
accepted in requests of B (default 100), claimed and recorded ``sent`` in batches of B, then
one delivery report each, applied in batches of B. Rollup maintenance
(:func:`outbound.adapters.queue.rollups.add_to_rollups`, called by the history writer) is timed
apart, and the statements it issues are counted (an ``executemany`` counts once, and its rows
apart). Printed per stage and in all: statements and rows per message, the CPU time of the
rollups and of the whole stage (the process's own time, the database server's excluded).
SQLite always; PostgreSQL too with ``--postgres``. Record results in bench/results.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet
from rich.table import Table

import outbound.adapters.queue.history as history
from bench.__main__ import _fresh, console
from outbound.adapters.db.models import Channel, new_id
from outbound.adapters.providers.base import StatusReport
from outbound.adapters.queue.outbox import Outbox, Outcome
from outbound.app import build_container
from outbound.config import Settings
from outbound.domain.statuses import MessageStatus
from outbound.services.auth import create_organization
from outbound.testing import FakeClock


class _Meter:
    """Statements and CPU time, of the rollups and in all, for the stage being measured."""

    def __init__(self) -> None:
        self.inside = False
        self.statements = self.rows = self.all_statements = 0
        self.cpu = 0.0

    def reset(self) -> None:
        self.statements = self.rows = self.all_statements = 0
        self.cpu = 0.0

    def on_execute(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        self.all_statements += 1
        if self.inside:
            self.statements += 1
            self.rows += (
                len(params)
                if isinstance(params, (list, tuple))
                and params
                and (isinstance(params[0], (dict, list, tuple)))
                else 1
            )

    @contextmanager
    def rollups(self) -> Iterator[None]:
        self.inside = True
        began = time.process_time()
        try:
            yield
        finally:
            self.cpu += time.process_time() - began
            self.inside = False


def _message(org_id: str, channel_id: str, index: int, now: Any) -> dict[str, Any]:
    return {
        "id": new_id(),
        "org_id": org_id,
        "request_id": None,
        "contact_index": index,
        "configuration_id": f"cfg-{index % 4}",
        "channel_id": channel_id,
        "template_id": "template",
        "channel_type": "sms",
        "provider": "sandbox",
        "to_raw": "+33612345678",
        "to_number": "+33612345678",
        "from_number": None,
        "locale": ("fr-FR", "en-GB")[index % 2],
        "body": "Hello",
        "encoding": "GSM-7",
        "segments": 1,
        "send_as_template": False,
        "template_parameters": None,
        "context": None,
        "regarding_object_id": None,
        "entity_relationship_name": None,
        "show_in_timeline": False,
        "status": "queued",
        "reason": None,
        "provider_message_id": None,
        "error_code": None,
        "error_message": None,
        "attempts": 0,
        "max_attempts": 5,
        "scheduled_at": now,
        "time_zone": None,
        "country": ("FR", "GB")[index % 2],
        "flow_run_id": None,
        "lease_until": None,
        "worker_id": None,
        "created_at": now,
        "updated_at": now,
    }


def _measure(label: str, url: str, data_dir: Path, messages: int, batch: int) -> None:
    settings = Settings(
        data_dir=data_dir, database_url=url, secret_key=Fernet.generate_key().decode()
    )
    clock = FakeClock()
    container = build_container(settings, clock=clock)
    container.migrate()
    meter = _Meter()
    sa.event.listen(container.db.engine, "before_cursor_execute", meter.on_execute)
    original = history.add_to_rollups

    def timed(*args: Any, **kwargs: Any) -> None:
        with meter.rollups():
            original(*args, **kwargs)

    history.add_to_rollups = timed  # type: ignore[assignment]
    org_id = create_organization(container.db, clock, "Bench").id
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
        channel_id = channel.id
    outbox = Outbox(container.db)
    table = Table(
        "stage",
        "statements / message (all)",
        "rollup statements / message",
        "rollup rows / message",
        "rollup CPU µs / message",
        "stage CPU µs / message",
        "rollup share of CPU",
        title=f"{label}: {messages:,} messages, batches of {batch}",
    )
    totals = [0.0] * 5

    def stage(name: str, run: Any) -> None:
        meter.reset()
        began = time.process_time()
        run()
        cpu = time.process_time() - began
        figures = [meter.all_statements, meter.statements, meter.rows, meter.cpu, cpu]
        for i, value in enumerate(figures):
            totals[i] += value
        _row(table, name, figures, messages)

    def accept() -> None:
        for start in range(0, messages, batch):
            rows = [
                _message(org_id, channel_id, i, clock.now())
                for i in range(start, min(messages, start + batch))
            ]
            with container.db.transaction() as session:
                outbox.enqueue(session, rows, source="api")

    pids: list[str] = []

    def send() -> None:
        while claimed := outbox.claim("w1", batch, clock.now(), timedelta(seconds=30)):
            outcomes = []
            for m in claimed:
                pids.append(f"P{len(pids)}")
                outcomes.append(
                    Outcome(
                        m.id,
                        MessageStatus.SENT,
                        provider_message_id=pids[-1],
                        provider="sandbox",
                    )
                )
            outbox.record("w1", outcomes, clock.now())

    def deliver() -> None:
        clock.advance(3.0)
        for start in range(0, len(pids), batch):
            reports = [
                StatusReport(
                    provider="sandbox",
                    provider_message_id=pid,
                    status=MessageStatus.DELIVERED,
                    occurred_at=clock.now(),
                )
                for pid in pids[start : start + batch]
            ]
            container.statuses.apply_many(reports, channel_id=channel_id)

    stage("accept", accept)
    stage("claim and record sent", send)
    stage("delivery reports", deliver)
    _row(table, "all", totals, messages)
    history.add_to_rollups = original  # type: ignore[assignment]
    console.print(table)
    container.db.dispose()


def _row(table: Table, name: str, figures: list[float], messages: int) -> None:
    statements, rollup_statements, rows, rollup_cpu, cpu = figures
    table.add_row(
        name,
        f"{statements / messages:.2f}",
        f"{rollup_statements / messages:.3f}",
        f"{rows / messages:.2f}",
        f"{rollup_cpu / messages * 1e6:.0f}",
        f"{cpu / messages * 1e6:.0f}",
        f"{rollup_cpu / cpu:.0%}" if cpu else "-",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a database is created)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'cost.db'}"
        _measure("SQLite", url, Path(tmp), args.messages, args.batch)
    if args.postgres:
        with _fresh(args.postgres) as url, tempfile.TemporaryDirectory() as tmp:
            assert url is not None
            _measure("PostgreSQL", url, Path(tmp), args.messages, args.batch)


if __name__ == "__main__":
    main()
