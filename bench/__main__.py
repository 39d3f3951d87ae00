"""Benchmarks: ``python -m bench [--messages N] [--requests N] [--database-url URL]``.

Prints one table per run. Figures are measured on whatever machine runs this; record them with
the machine's description in bench/results.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import sqlalchemy as sa
import uvicorn
from rich.console import Console
from rich.table import Table

from outbound.adapters.db.models import Message
from outbound.app import Container, build_container, create_app
from outbound.config import Settings
from outbound.schemas import ChannelCreate, ConfigurationCreate, Role, SendIn, TemplateCreate
from outbound.services.auth import create_api_key, create_organization

console = Console()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def _prepare(container: Container, send_latency: float) -> tuple[str, str]:
    org = create_organization(container.db, container.clock, "Bench")
    channel = container.channels.create(
        org.id,
        ChannelCreate(
            name="bench",
            type="sms",
            provider="sandbox",
            sender="+15005550006",
            options={"delivery_delay": 0.0, "send_latency": send_latency},
        ),
    )
    template = container.templates.create(
        org.id,
        TemplateCreate(
            name="bench",
            channel_type="sms",
            default_locale="en-US",
            default_text="Hi {CustomerName}, your case {CaseName} was updated.",
            localizations={"fr-FR": "Bonjour {CustomerName}, dossier {CaseName} mis à jour."},
        ),
    )
    config = container.configurations.create(
        org.id,
        ConfigurationCreate(
            name="bench", channel_type="sms", channel_id=channel.id, template_id=template.id
        ),
    )
    return org.id, config.id


def _contacts(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "tocontactid": f"+3361{(start + i) % 10_000_000:07d}",
            "optin": True,
            "locale": "fr-FR" if i % 2 else "en-US",
            "contextitems": {"CustomerName": f"C{start + i}", "CaseName": f"CAS-{start + i}"},
        }
        for i in range(count)
    ]


def bench_accept(settings: Settings, requests: int) -> dict[str, float]:
    """Latency of 100-contact send requests over HTTP, workers idle."""
    container = build_container(settings)
    container.migrate()
    org_id, config_id = _prepare(container, 0.0)
    _key, api_key = create_api_key(container.db, container.clock, org_id, Role.SENDER)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(container, run_worker=False), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    latencies: list[float] = []
    with httpx2.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30,
    ) as client:
        for n in range(requests + 5):
            body = {"configuration_id": config_id, "contacts": _contacts(n * 100, 100)}
            started = time.perf_counter()
            response = client.post("/v1/outbound/send", json=body)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 202, response.text
            if n >= 5:  # warm-up
                latencies.append(elapsed)
    server.should_exit = True
    thread.join(10)
    return {
        "p50_ms": statistics.median(latencies),
        "p99_ms": _percentile(latencies, 99),
        "requests": float(len(latencies)),
    }


async def _drain(container: Container, total: int) -> tuple[float, float]:
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(container.dispatcher("bench").run(stop))
    sent_at = delivered_at = 0.0
    while True:
        await asyncio.sleep(0.05)
        with container.db.read() as session:
            counts = dict(
                session.execute(
                    sa.select(Message.status, sa.func.count()).group_by(Message.status)
                ).all()
            )
        done = counts.get("sent", 0) + counts.get("delivered", 0)
        if not sent_at and done >= total:
            sent_at = time.perf_counter() - started
        if counts.get("delivered", 0) >= total:
            delivered_at = time.perf_counter() - started
            break
    stop.set()
    await task
    return sent_at, delivered_at


def bench_throughput(settings: Settings, messages: int, latency: float) -> dict[str, float]:
    """Messages/s from a queued backlog to sent and to delivered, through the sandbox."""
    container = build_container(settings)
    container.migrate()
    org_id, config_id = _prepare(container, latency)
    for start in range(0, messages, 100):
        container.sending.send(
            org_id,
            SendIn.model_validate(
                {"configuration_id": config_id, "contacts": _contacts(start, 100)}
            ),
        )
    sent_s, delivered_s = asyncio.run(_drain(container, messages))
    asyncio.run(container.aclose())
    return {
        "messages": float(messages),
        "sent_per_s": messages / sent_s,
        "delivered_per_s": messages / delivered_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.150, help="sandbox send latency (s)")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    args = parser.parse_args()

    table = Table(title="outbound benchmarks")
    for column in ("scenario", "store", "figure", "value"):
        table.add_column(column)
    store = "PostgreSQL" if args.database_url else "SQLite"
    with tempfile.TemporaryDirectory() as tmp:

        def settings(name: str, **extra: Any) -> Settings:
            url = args.database_url or f"sqlite:///{Path(tmp) / name}"
            return Settings(
                data_dir=Path(tmp),
                database_url=url,
                secret_key=None,
                log_level="WARNING",
                **extra,
            )

        accept = bench_accept(settings("accept.db"), args.requests)
        table.add_row("accept 100 contacts", store, "p50 latency", f"{accept['p50_ms']:.1f} ms")
        table.add_row("accept 100 contacts", store, "p99 latency", f"{accept['p99_ms']:.1f} ms")
        for latency in (0.0, args.latency):
            result = bench_throughput(
                settings(f"tp{latency}.db", worker_concurrency=600, worker_batch_size=200),
                args.messages,
                latency,
            )
            label = f"sandbox, {latency * 1000:.0f} ms send latency"
            table.add_row(label, store, "sent/s", f"{result['sent_per_s']:.0f}")
            table.add_row(label, store, "delivered/s", f"{result['delivered_per_s']:.0f}")
    console.print(table)
    console.print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}; "
        f"messages={args.messages}, requests={args.requests}"
    )


if __name__ == "__main__":
    main()
