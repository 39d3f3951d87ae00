"""A real worker process killed mid-batch loses nothing; SIGTERM stops one gracefully."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from outbound.adapters.db.models import Message, MessageEvent
from outbound.app import Container
from outbound.config import Settings
from outbound.schemas import (
    ChannelCreate,
    ConfigurationCreate,
    SendIn,
    TemplateCreate,
)
from outbound.services.auth import create_organization
from tests.helpers import SECRET, contact

COUNT = 20


def _counts(container: Container) -> dict[str, int]:
    with container.db.read() as session:
        rows = session.execute(
            sa.select(Message.status, sa.func.count()).group_by(Message.status)
        ).all()
    return {str(status): int(n) for status, n in rows}


def _wait_for(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def backlog(container: Container) -> Container:
    org = create_organization(container.db, container.clock, "Acme")
    channel = container.channels.create(
        org.id,
        ChannelCreate(
            name="slow",
            type="sms",
            provider="sandbox",
            sender="+15005550006",
            options={"send_latency": 1.0, "delivery_delay": 0.0},
        ),
    )
    template = container.templates.create(
        org.id,
        TemplateCreate(
            name="t", channel_type="sms", default_locale="en-US", default_text="Hi {CustomerName}"
        ),
    )
    config = container.configurations.create(
        org.id,
        ConfigurationCreate(
            name="c", channel_type="sms", channel_id=channel.id, template_id=template.id
        ),
    )
    container.sending.send(
        org.id,
        SendIn.model_validate(
            {
                "configuration_id": config.id,
                "contacts": [contact(f"+3361234{i:04d}") for i in range(COUNT)],
            }
        ),
    )
    return container


@pytest.fixture
def start_worker(settings: Settings, tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")},
            "OUTBOUND_DATABASE_URL": settings.resolved_database_url,
            "OUTBOUND_SECRET_KEY": SECRET,
            "OUTBOUND_DATA_DIR": str(tmp_path),
            "OUTBOUND_LEASE_SECONDS": "2",
            "OUTBOUND_WORKER_BATCH_SIZE": str(COUNT),
            "OUTBOUND_WORKER_CONCURRENCY": str(COUNT),
            "OUTBOUND_SHUTDOWN_GRACE_SECONDS": "5",
            "OUTBOUND_LOG_LEVEL": "WARNING",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "outbound", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        if process.stderr:
            process.stderr.close()


def test_killed_worker_loses_nothing(backlog: Container, start_worker) -> None:  # type: ignore[no-untyped-def]
    first = start_worker()
    assert _wait_for(lambda: _counts(backlog).get("sending", 0) == COUNT, 30), _counts(backlog)
    first.send_signal(signal.SIGKILL)  # mid-batch: every send is still in flight
    first.wait(10)
    assert _counts(backlog) == {"sending": COUNT}

    second = start_worker()
    assert _wait_for(lambda: _counts(backlog).get("delivered", 0) == COUNT, 60), _counts(backlog)
    second.send_signal(signal.SIGTERM)
    assert second.wait(15) == 0
    with backlog.db.read() as session:
        reclaimed = session.execute(
            sa.select(sa.func.count()).where(MessageEvent.source == "reclaimed")
        ).scalar_one()
    assert reclaimed == COUNT


def test_sigterm_lets_in_flight_sends_finish(backlog: Container, start_worker) -> None:  # type: ignore[no-untyped-def]
    worker = start_worker()
    assert _wait_for(lambda: _counts(backlog).get("sending", 0) == COUNT, 30), _counts(backlog)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    counts = _counts(backlog)
    assert counts.get("sending", 0) == 0
    assert sum(counts.values()) == COUNT
