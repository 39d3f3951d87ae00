"""Several worker processes on one PostgreSQL backlog: each message sent exactly once, every
worker taking part (read from each worker's own /metrics)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from outbound.adapters.db.models import Message, MessageEvent
from outbound.app import Container
from outbound.config import Settings
from outbound.schemas import ChannelCreate, ConfigurationCreate, SendIn, TemplateCreate
from outbound.services.auth import create_organization
from tests.helpers import SECRET, contact

WORKERS = 3
MESSAGES = 600


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_metrics(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _sent_by(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "outbound_message_transitions_total" and sample.labels["status"] == "sent"
    )


# Several writer processes are the PostgreSQL deployment; SQLite has one writer.
@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_worker_processes_share_a_backlog(
    container: Container, settings: Settings, tmp_path: Path
) -> None:
    org = create_organization(container.db, container.clock, "Acme")
    channel = container.channels.create(
        org.id,
        ChannelCreate(
            name="s",
            type="sms",
            provider="sandbox",
            sender="+15005550006",
            options={"send_latency": 0.02, "delivery_delay": 0.0},
        ),
    )
    template = container.templates.create(
        org.id,
        TemplateCreate(name="t", channel_type="sms", default_locale="en", default_text="Hi"),
    )
    config = container.configurations.create(
        org.id,
        ConfigurationCreate(
            name="c", channel_type="sms", channel_id=channel.id, template_id=template.id
        ),
    )
    ports = [_free_port() for _ in range(WORKERS)]
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "outbound", "worker"],
            env={
                **base_env,
                "OUTBOUND_DATABASE_URL": settings.resolved_database_url,
                "OUTBOUND_SECRET_KEY": SECRET,
                "OUTBOUND_DATA_DIR": str(tmp_path),
                "OUTBOUND_WORKER_BATCH_SIZE": "20",
                "OUTBOUND_WORKER_CONCURRENCY": "40",
                "OUTBOUND_WORKER_METRICS_PORT": str(port),
                "OUTBOUND_LOG_LEVEL": "WARNING",
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        # The backlog arrives once every worker is up, so that each one can take a share.
        for port in ports:
            _wait_metrics(port)
        for start in range(0, MESSAGES, 100):
            container.sending.send(
                org.id,
                SendIn.model_validate(
                    {
                        "configuration_id": config.id,
                        "contacts": [contact(f"+336{start + i:08d}") for i in range(100)],
                    }
                ),
            )
        deadline = time.monotonic() + 120
        while True:
            with container.db.read() as session:
                delivered = session.execute(
                    sa.select(sa.func.count()).where(Message.status == "delivered")
                ).scalar_one()
            if delivered == MESSAGES or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert delivered == MESSAGES
        per_worker = [_sent_by(port) for port in ports]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(20)
    assert sum(per_worker) == MESSAGES, per_worker
    assert all(count > 0 for count in per_worker), per_worker
    with container.db.read() as session:
        sends = session.execute(
            sa.select(MessageEvent.message_id, sa.func.count())
            .where(MessageEvent.status == "sent")
            .group_by(MessageEvent.message_id)
        ).all()
    assert len(sends) == MESSAGES
    assert {count for _, count in sends} == {1}


RATE = 10.0
RATED = 30


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_channel_send_rate_holds_across_worker_processes(
    container: Container, settings: Settings, tmp_path: Path
) -> None:
    from outbound.testing.fakes import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio

    async with FakeTwilio(callback_sequence=()) as twilio:
        org = create_organization(container.db, container.clock, "Acme")
        channel = container.channels.create(
            org.id,
            ChannelCreate(
                name="long code",
                type="sms",
                provider="twilio",
                sender="+15005550006",
                base_url=twilio.base_url,
                credentials={"account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN},
                rate_per_second=RATE,
            ),
        )
        template = container.templates.create(
            org.id,
            TemplateCreate(name="t", channel_type="sms", default_locale="en", default_text="Hi"),
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
                    "contacts": [contact(f"+3361234{i:04d}") for i in range(RATED)],
                }
            ),
        )
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")}
        started = time.monotonic()
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "outbound", "worker"],
                env={
                    **base_env,
                    "OUTBOUND_DATABASE_URL": settings.resolved_database_url,
                    "OUTBOUND_SECRET_KEY": SECRET,
                    "OUTBOUND_DATA_DIR": str(tmp_path),
                    "OUTBOUND_WORKER_BATCH_SIZE": "8",
                    "OUTBOUND_LEASE_SECONDS": "4",
                    "OUTBOUND_LOG_LEVEL": "WARNING",
                },
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        try:
            deadline = time.monotonic() + 60
            while len(twilio.messages) < RATED and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(20)
        elapsed = time.monotonic() - started
    assert len(twilio.messages) == RATED
    # 30 sends at 10 per second cannot take less than 2.9 s, however many workers share them.
    assert elapsed >= (RATED - 1) / RATE
    arrivals = sorted(r.received_at for r in twilio.requests)
    assert (arrivals[-1] - arrivals[0]).total_seconds() >= (RATED - 1) / RATE - 0.5


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_the_hourly_quota_holds_across_api_processes(
    container: Container, settings: Settings, tmp_path: Path
) -> None:
    from outbound.schemas import Role
    from outbound.services.auth import create_api_key, set_limits

    org = create_organization(container.db, container.clock, "Acme")
    set_limits(container.db, org.id, hourly_request_quota=10)
    _key, key = create_api_key(container.db, container.clock, org.id, Role.ADMIN)
    channel = container.channels.create(
        org.id, ChannelCreate(name="s", type="sms", provider="sandbox", sender="+15005550006")
    )
    template = container.templates.create(
        org.id,
        TemplateCreate(name="t", channel_type="sms", default_locale="en", default_text="Hi"),
    )
    config = container.configurations.create(
        org.id,
        ConfigurationCreate(
            name="c", channel_type="sms", channel_id=channel.id, template_id=template.id
        ),
    )
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")}
    ports = [_free_port() for _ in range(2)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "outbound", "serve", "--no-worker", "--port", str(port)],
            env={
                **base_env,
                "OUTBOUND_DATABASE_URL": settings.resolved_database_url,
                "OUTBOUND_SECRET_KEY": SECRET,
                "OUTBOUND_DATA_DIR": str(tmp_path),
                "OUTBOUND_LOG_LEVEL": "WARNING",
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        for port in ports:
            deadline = time.monotonic() + 30
            while True:
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                assert time.monotonic() < deadline, "API process did not start"
                time.sleep(0.05)

        async def fire() -> list[int]:
            import aiohttp

            body = {"configuration_id": config.id, "contacts": [contact()]}
            headers = {"Authorization": f"Bearer {key}"}
            async with aiohttp.ClientSession(headers=headers) as session:

                async def one(port: int) -> int:
                    url = f"http://127.0.0.1:{port}/v1/outbound/send"
                    async with session.post(url, json=body) as response:
                        if response.status == 429:
                            assert int(response.headers["Retry-After"]) > 0
                        return response.status

                return list(await asyncio.gather(*(one(ports[i % 2]) for i in range(16))))

        statuses = asyncio.run(fire())
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(20)
    assert sorted(statuses) == [202] * 10 + [429] * 6
