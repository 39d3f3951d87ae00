"""Flow-run benchmark: ``python -m bench.flows [--contacts 100000,1000000] [--postgres URL]``.

For each audience size, a fresh database is seeded with that many contacts (one in ten has
withdrawn consent), an instant flow over every contact is applied and run, and the run is
executed in a process of its own: the process's peak resident memory (VmHWM) is the figure
that must not grow with the audience. Every contact becomes a message in the outbox (queued
or skipped); the dispatcher is not part of this measure.

Printed per size: seeding time, run time, contacts per second through the flow (render, plan,
insert into the outbox, 100 per send request), batches, resident memory at 10%, 50% and 100%
of the run, and the peak. Record results with the machine in bench/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet
from rich.console import Console
from rich.table import Table

console = Console(width=160)
FLOW = """\
name: everyone
configuration: Bench
trigger: {type: instant}
source: {records: contacts}
conditions:
  - {field: contact.custom.segment, op: ne, value: excluded}
recipient:
  contextitems:
    CaseName: "{contact.custom.ref}"
"""
SEED_CHUNK = 20_000
CHILD_ENV = "OUTBOUND_BENCH_FLOWS_CHILD"


def _rss_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _settings(url: str, data_dir: Path, key: str) -> Any:
    from outbound.config import Settings

    return Settings(
        data_dir=data_dir,
        database_url=url,
        secret_key=key,
        default_region="FR",
        hourly_request_quota=10_000_000,
        log_level="WARNING",
    )


def seed(url: str, data_dir: Path, key: str, contacts: int) -> tuple[str, str, float]:
    """A fresh organisation, channel, template, configuration, flow and contacts."""
    from outbound.adapters.db.models import Contact, new_id
    from outbound.app import build_container
    from outbound.schemas import ChannelCreate, ConfigurationCreate, TemplateCreate
    from outbound.services.auth import create_organization

    container = build_container(_settings(url, data_dir, key))
    container.migrate()
    org = create_organization(container.db, container.clock, "Bench")
    channel = container.channels.create(
        org.id,
        ChannelCreate.model_validate(
            {"name": "SMS", "type": "sms", "provider": "sandbox", "sender": "+15005550006"}
        ),
    )
    template = container.templates.create(
        org.id,
        TemplateCreate.model_validate(
            {
                "name": "Bench",
                "channel_type": "sms",
                "default_locale": "en-US",
                "default_text": "Hi {CustomerName}, your order {CaseName} is delayed.",
                "localizations": {
                    "fr-FR": "Bonjour {CustomerName}, commande {CaseName} en retard."
                },
            }
        ),
    )
    container.configurations.create(
        org.id,
        ConfigurationCreate.model_validate(
            {
                "name": "Bench",
                "channel_type": "sms",
                "channel_id": channel.id,
                "template_id": template.id,
                "default_locale": "en-US",
            }
        ),
    )
    container.flows.apply(org.id, FLOW)
    started = time.perf_counter()
    now = container.clock.now()
    for offset in range(0, contacts, SEED_CHUNK):
        rows = [
            {
                "id": new_id(),
                "org_id": org.id,
                "external_id": None,
                "name": f"Customer {i}",
                "mobile_phone": f"+336{i:08d}",
                "whatsapp_number": None,
                "preferred_language": "fr-FR" if i % 2 else "en-US",
                "consent_sms": i % 10 != 0,
                "consent_whatsapp": False,
                "time_zone": None,
                "custom": {"segment": "all", "ref": f"SO-{i}"},
                "created_at": now,
                "updated_at": now,
            }
            for i in range(offset, min(contacts, offset + SEED_CHUNK))
        ]
        with container.db.transaction() as session:
            session.execute(sa.insert(Contact), rows)
    seeded = time.perf_counter() - started
    run = container.flows.start_run(org.id, "everyone")
    container.db.dispose()
    return org.id, run.id, seeded


def child(url: str, data_dir: Path, key: str, org_id: str, run_id: str) -> None:
    """Execute the run in this process and print its figures as one JSON line."""
    from outbound.app import build_container

    container = build_container(_settings(url, data_dir, key))
    engine = container.flow_engine("bench")
    samples: dict[str, int] = {}
    baseline = _rss_kib("VmRSS")

    def progress(state: Any) -> None:
        if state.total:
            done = state.scanned / state.total
            for mark in (0.1, 0.5):
                label = f"{int(mark * 100)}%"
                if done >= mark and label not in samples:
                    samples[label] = _rss_kib("VmRSS")

    started = time.perf_counter()
    assert engine.claim(run_id=run_id) == [run_id]
    engine.execute(run_id, progress=progress)
    elapsed = time.perf_counter() - started
    samples["100%"] = _rss_kib("VmRSS")
    final = container.flows.get_run(org_id, run_id)
    print(
        json.dumps(
            {
                "status": final.status.value,
                "matched": final.matched,
                "queued": final.queued,
                "skipped": final.skipped,
                "rejected": final.rejected,
                "batches": final.batches,
                "seconds": elapsed,
                "baseline_kib": baseline,
                "samples_kib": samples,
                "peak_kib": _rss_kib("VmHWM"),
            }
        )
    )
    container.db.dispose()


def _fresh_postgres(url: str) -> tuple[str, sa.Engine, str]:
    admin_url = sa.make_url(url).set(drivername="postgresql+psycopg")
    name = f"outbound_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return admin_url.set(database=name).render_as_string(hide_password=False), admin, name


def measure(size: int, postgres: str | None) -> dict[str, Any]:
    key = Fernet.generate_key().decode()
    with tempfile.TemporaryDirectory(prefix="outbound-bench-flows-") as tmp:
        data_dir = Path(tmp)
        admin: sa.Engine | None = None
        name = ""
        if postgres:
            url, admin, name = _fresh_postgres(postgres)
        else:
            url = f"sqlite:///{data_dir / 'bench.db'}"
        try:
            with console.status(f"seeding {size:,} contacts…"):
                org_id, run_id, seeded = seed(url, data_dir, key, size)
            with console.status(f"running the flow over {size:,} contacts…"):
                # Passed in the environment: a Fernet key may start with "-", which a
                # command line would take for an option.
                child_args = json.dumps([url, str(data_dir), key, org_id, run_id])
                result = subprocess.run(
                    [sys.executable, "-m", "bench.flows", "--child"],
                    capture_output=True,
                    text=True,
                    check=False,
                    env={
                        **{k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")},
                        CHILD_ENV: child_args,
                    },
                )
            if result.returncode != 0:
                raise RuntimeError(result.stderr[-4000:])
            figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
            figures.update(size=size, seed_seconds=seeded)
            return figures
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--contacts", default="100000,1000000", help="Audience sizes, comma-separated."
    )
    parser.add_argument("--postgres", default=None, help="Run on this PostgreSQL server too.")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, data_dir, key, org_id, run_id = json.loads(os.environ[CHILD_ENV])
        child(url, Path(data_dir), key, org_id, run_id)
        return
    sizes = [int(s.replace("_", "")) for s in args.contacts.split(",")]
    backends: list[tuple[str, str | None]] = [("SQLite", None)]
    if args.postgres:
        backends.append(("PostgreSQL", args.postgres))
    console.print(
        f"[bold]flow-run benchmark[/bold] on {platform.node()} "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()})"
    )
    table = Table(title="Instant flow over every contact (one run, one process)")
    for column in (
        "backend",
        "contacts",
        "seed s",
        "run s",
        "contacts/s",
        "queued",
        "skipped",
        "batches",
        "RSS start MiB",
        "RSS 10%",
        "RSS 50%",
        "RSS 100%",
        "peak MiB",
    ):
        table.add_column(column, justify="right")
    peaks: dict[str, list[tuple[int, float]]] = {}
    for label, pg in backends:
        for size in sizes:
            r = measure(size, pg)
            mib = {k: v / 1024 for k, v in r["samples_kib"].items()}
            peak = r["peak_kib"] / 1024
            peaks.setdefault(label, []).append((size, peak))
            table.add_row(
                label,
                f"{size:,}",
                f"{r['seed_seconds']:.0f}",
                f"{r['seconds']:.0f}",
                f"{r['matched'] / r['seconds']:,.0f}",
                f"{r['queued']:,}",
                f"{r['skipped']:,}",
                f"{r['batches']:,}",
                f"{r['baseline_kib'] / 1024:.0f}",
                f"{mib.get('10%', 0):.0f}",
                f"{mib.get('50%', 0):.0f}",
                f"{mib.get('100%', 0):.0f}",
                f"{peak:.0f}",
            )
    console.print(table)
    for label, rows in peaks.items():
        if len(rows) > 1:
            (small, p_small), (large, p_large) = rows[0], rows[-1]
            console.print(
                f"{label}: {large / small:.0f}x the contacts, {p_large / p_small:.2f}x the peak "
                f"memory ({p_small:.0f} → {p_large:.0f} MiB)"
            )


if __name__ == "__main__":
    main()
