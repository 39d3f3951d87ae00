"""What accepting a send request costs alone: ``python -m bench.accept [--requests N]``.

Calls the send service directly (no HTTP, no dispatcher, nothing else running) with
100-contact requests on a fresh SQLite database, each contact a new number, and prints the
time per request and per contact -- the floor under the accept latency that ``python -m
bench`` measures under load -- and the CPU per contact (the process's: on a machine shared
with other work it moves less than the time). A second pass sends to the same numbers again (the
parsed-number cache then answers).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from rich.console import Console
from rich.table import Table

from outbound.app import build_container
from outbound.config import Settings
from outbound.schemas import ChannelCreate, ConfigurationCreate, SendIn, TemplateCreate
from outbound.services.auth import create_organization

CONTACTS = 100


def _body(config_id: str, start: int) -> dict[str, Any]:
    return {
        "configuration_id": config_id,
        "contacts": [
            {
                "tocontactid": f"+3361{(start + i) % 10_000_000:07d}",
                "optin": True,
                "locale": "fr-FR" if i % 2 else "en-US",
                "contextitems": {"CustomerName": f"C{start + i}", "CaseName": f"CAS-{start + i}"},
            }
            for i in range(CONTACTS)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.accept")
    parser.add_argument("--requests", type=int, default=100, help="requests per pass")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="outbound-accept-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            secret_key=Fernet.generate_key().decode(),
            hourly_request_quota=10 * args.requests + 100,
        )
        c = build_container(settings)
        c.migrate()
        org = create_organization(c.db, c.clock, "bench")
        channel = c.channels.create(
            org.id, ChannelCreate(name="s", type="sms", provider="sandbox", sender="+15005550006")
        )
        template = c.templates.create(
            org.id,
            TemplateCreate(
                name="t",
                channel_type="sms",
                default_locale="en-US",
                default_text="Hi {CustomerName}, your case {CaseName} was updated.",
                localizations={"fr-FR": "Bonjour {CustomerName}, dossier {CaseName}."},
            ),
        )
        config = c.configurations.create(
            org.id,
            ConfigurationCreate(
                name="c", channel_type="sms", channel_id=channel.id, template_id=template.id
            ),
        )
        starts = [i * CONTACTS for i in range(args.requests)]
        requests = [SendIn.model_validate(_body(config.id, s)) for s in starts]
        for request in requests[:10]:  # warm up: imports, caches of the database layer
            c.sending.send(org.id, request)
        table = Table(title=f"accepting {CONTACTS}-contact send requests, one at a time")
        columns = ("pass", "requests", "ms/request p50", "ms/request mean", "µs/contact")
        for column in (*columns, "CPU µs/contact"):
            table.add_column(column, justify="right" if column != "pass" else "left")
        for label, batch in (("new numbers", requests[10:]), ("same numbers again", requests)):
            timings = []
            cpu_began = time.process_time()
            for request in batch:
                began = time.perf_counter()
                c.sending.send(org.id, request)
                timings.append((time.perf_counter() - began) * 1000)
            cpu = time.process_time() - cpu_began
            mean = statistics.fmean(timings)
            table.add_row(
                label,
                str(len(batch)),
                f"{statistics.median(timings):.1f}",
                f"{mean:.1f}",
                f"{mean * 1000 / CONTACTS:.0f}",
                f"{cpu * 1e6 / (len(batch) * CONTACTS):.0f}",
            )
        c.db.dispose()
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
