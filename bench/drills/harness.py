"""What every drill shares: a fake provider in a thread, the service's processes, a run's count.

The fake provider runs in this process, on an event loop of its own thread, so a drill can
inject faults into it and read what it created while the service -- separate processes,
started as an operator starts them (``outbound serve``, ``outbound worker``) -- is killed and
restarted around it.

A message is matched to what the provider created by its number: every message of a run goes
to a number of its own, so two creations for one number are one message sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import sqlalchemy as sa
from cryptography.fernet import Fernet

from bench.__main__ import PYTHON, _admin_key, _free_port, _wait_port
from outbound.adapters.db.engine import create_engine
from outbound.adapters.db.migrate import upgrade
from outbound.adapters.db.models import MessageEvent
from outbound.testing.fakes import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_API_KEY,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_CUSTOMER_ID,
    FakeACS,
    FakeProviderServer,
    FakeTeleSign,
    FakeTwilio,
)

__all__ = ["Counts", "FakeThread", "Run", "Service", "drill_settings", "fresh_database", "run_dir"]

T = TypeVar("T")

FINAL = frozenset({"delivered", "undelivered", "failed", "skipped", "rejected", "canceled"})
"""Statuses a message does not leave: it reached an end the user can see."""
GONE_OUT = frozenset({"sent", "delivered", "undelivered"})
"""Statuses that say the provider took the message."""
STATUS_CHECK_AFTER = 8.0
STATUS_CHECK_RATE = 100.0
SENDERS = {"twilio": "+15005550006", "acs": "+18005550100", "telesign": "+15005550007"}


def drill_settings(lease: float, http_timeout: float) -> dict[str, str]:
    """The service's settings in every drill: short leases and retries, so that a drill waits
    seconds rather than the minutes of the defaults."""
    return {
        "OUTBOUND_LEASE_SECONDS": str(lease),
        "OUTBOUND_HTTP_TIMEOUT": str(http_timeout),
        "OUTBOUND_HTTP_CONNECT_TIMEOUT": str(min(http_timeout, 2.0)),
        "OUTBOUND_RETRY_BASE_SECONDS": "0.5",
        "OUTBOUND_RETRY_MAX_SECONDS": "4",
        "OUTBOUND_CIRCUIT_COOLDOWN_SECONDS": "2",
        "OUTBOUND_SHUTDOWN_GRACE_SECONDS": "2",
        # Where the service asks the provider about messages left `sent` without a report.
        "OUTBOUND_STATUS_CHECK_AFTER_SECONDS": str(STATUS_CHECK_AFTER),
        "OUTBOUND_STATUS_CHECK_RATE": str(STATUS_CHECK_RATE),
    }


def _digits(number: str) -> str:
    return re.sub(r"\D", "", number)


class FakeThread:
    """A fake provider served by an event loop on a thread of its own."""

    def __init__(self, provider: str, **options: Any) -> None:
        self.provider = provider
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        options.setdefault("callback_delay", 0.05)
        fake: FakeProviderServer
        if provider == "twilio":
            fake = FakeTwilio(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, **options)
        elif provider == "acs":
            # Event Grid retries a failed delivery; the drill's are seconds apart, not minutes.
            options.setdefault("callback_retry_delays", (2.0, 5.0, 10.0))
            fake = FakeACS(DEFAULT_ACCESS_KEY, **options)
        elif provider == "telesign":
            options.setdefault("callback_retry_delays", (2.0, 5.0))
            fake = FakeTeleSign(DEFAULT_CUSTOMER_ID, DEFAULT_API_KEY, **options)
        else:
            raise ValueError(f"unknown provider {provider}")
        self.fake = fake
        self.base_url: str = self.run(lambda f: f.start())

    def run(self, coroutine: Callable[[Any], Coroutine[Any, Any, T]], timeout: float = 60) -> T:
        """Run ``coroutine(fake)`` on the fake's loop and return its result."""
        future = asyncio.run_coroutine_threadsafe(coroutine(self.fake), self._loop)
        return future.result(timeout)

    def call(self, function: Callable[[Any], T]) -> T:
        """Call ``function(fake)`` on the fake's loop (where its state changes) and return."""

        async def wrapped(fake: Any) -> T:
            return function(fake)

        return self.run(wrapped)

    def created(self) -> dict[str, str]:
        """Provider message id -> digits of the number, for every message the fake created."""
        if self.provider == "twilio":
            return self.call(
                lambda f: {
                    sid: _digits(m.to) for sid, m in f.messages.items() if m.direction != "inbound"
                }
            )
        if self.provider == "acs":
            return self.call(lambda f: {i: _digits(m.to) for i, m in f.messages.items()})
        return self.call(lambda f: {i: _digits(m.phone_number) for i, m in f.messages.items()})

    def sends_to(self, numbers: set[str]) -> dict[str, list[str]]:
        """Digits of a number -> what the fake created for it (id and time), oldest first."""
        created = self.created()
        # When each provider's message came to be: Twilio's creation, TeleSign's submission,
        # ACS's send.
        field = {"twilio": "date_created", "telesign": "submit_timestamp", "acs": "sent_at"}
        times = self.call(
            lambda f: {key: getattr(m, field[self.provider]) for key, m in f.messages.items()}
        )
        found: dict[str, list[str]] = {}
        for key, number in created.items():
            if number in numbers:
                when = times.get(key)
                at = when.isoformat(timespec="milliseconds") if when is not None else "?"
                found.setdefault(number, []).append(f"{key} created {at}")
        return found

    def send_calls(self) -> int:
        """How many send requests reached the fake (answered, failed or dropped)."""
        path = {"twilio": "/Messages.json", "acs": "/sms", "telesign": "/v1/messaging"}
        suffix = path[self.provider]
        return self.call(
            lambda f: sum(1 for r in f.requests if r.method == "POST" and r.path.endswith(suffix))
        )

    def replay_reports(self) -> None:
        """Post every created message's reports again: an older one (out of order) first when
        the provider has one, then the final one again (a duplicate)."""

        async def replay(fake: Any) -> None:
            for key in list(fake.messages):
                if self.provider == "twilio":
                    await fake.deliver(key, "sent")
                    await fake.deliver(key, "delivered")
                elif self.provider == "telesign":
                    await fake.deliver(key, 203)
                    await fake.deliver(key, 200)
                else:
                    await fake.deliver(key, "Delivered")

        self.run(replay, timeout=600)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.run(lambda f: f.stop())

        async def cancel_the_rest(_fake: Any) -> None:
            # Handlers of calls whose caller was killed may still wait (slow calls).
            current = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not current]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_the_rest)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class Service:
    """The service's processes: ``serve`` with its worker (``apis=1, workers=0``), or API
    processes without one and ``workers`` worker processes. Logs go to ``log_dir``."""

    def __init__(
        self,
        database_url: str,
        data_dir: Path,
        settings: dict[str, str],
        *,
        apis: int = 1,
        workers: int = 0,
    ) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.secret = Fernet.generate_key().decode()
        self.ports = [_free_port() for _ in range(apis)]
        self.api_urls = [f"http://127.0.0.1:{port}" for port in self.ports]
        self.workers = workers
        env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")}
        env.update(
            {
                "OUTBOUND_DATABASE_URL": database_url,
                "OUTBOUND_SECRET_KEY": self.secret,
                "OUTBOUND_DATA_DIR": str(data_dir),
                "OUTBOUND_LOG_LEVEL": "INFO",
                "OUTBOUND_PUBLIC_BASE_URL": self.api_urls[0],
                **settings,
            }
        )
        self.env = env
        self.api_processes: list[subprocess.Popen[bytes] | None] = [None] * apis
        self.worker_processes: list[subprocess.Popen[bytes] | None] = [None] * workers
        self._logs: list[Any] = []
        self._starts = 0

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        self._starts += 1
        log = (self.data_dir / f"{name}.{self._starts}.log").open("wb")
        self._logs.append(log)
        return subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def start_api(self, index: int) -> None:
        worker = "--worker" if self.workers == 0 else "--no-worker"
        args = [PYTHON, "-m", "outbound", "serve", "--port", str(self.ports[index]), worker]
        self.api_processes[index] = self._spawn(args, f"api{index}")
        _wait_port(self.ports[index], timeout=60)

    def start_worker(self, index: int) -> None:
        process = self._spawn([PYTHON, "-m", "outbound", "worker"], f"worker{index}")
        self.worker_processes[index] = process

    def start(self) -> None:
        for index in range(len(self.ports)):
            self.start_api(index)
        for index in range(self.workers):
            self.start_worker(index)

    @staticmethod
    def _end(process: subprocess.Popen[bytes] | None, sig: signal.Signals) -> None:
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def kill_api(self, index: int, sig: signal.Signals = signal.SIGKILL) -> None:
        self._end(self.api_processes[index], sig)

    def kill_worker(self, index: int, sig: signal.Signals = signal.SIGKILL) -> None:
        self._end(self.worker_processes[index], sig)

    def stop(self) -> None:
        for process in [*self.worker_processes, *self.api_processes]:
            self._end(process, signal.SIGTERM)
        for log in self._logs:
            log.close()

    @property
    def webhook_base(self) -> str:
        return self.api_urls[0]


@dataclass
class Counts:
    """What a run ended with."""

    messages: int
    final: int
    failed: int
    not_final: int
    lost: int
    duplicated: int
    send_calls: int
    seconds: float | None
    statuses: dict[str, int] = field(default_factory=dict)


class Run:
    """One drill row: a fresh database, the service, a fake provider, the messages."""

    def __init__(
        self,
        provider: str,
        database_url: str,
        data_dir: Path,
        settings: dict[str, str],
        *,
        apis: int = 1,
        workers: int = 0,
        fake_options: dict[str, Any] | None = None,
    ) -> None:
        self.provider = provider
        self.database_url = database_url
        self.engine = create_engine(database_url)
        upgrade(self.engine)
        self.service = Service(database_url, data_dir, settings, apis=apis, workers=workers)
        _org, self.key = _admin_key(database_url, self.service.secret, data_dir)
        self.fake = FakeThread(provider, **(fake_options or {}))
        self.accepted: dict[str, str] = {}
        """Message id -> digits of its number, for every message the API accepted."""
        self.config_id = ""
        self.started = 0.0

    def close(self) -> None:
        self.service.stop()
        self.fake.close()
        self.engine.dispose()

    def _client(self) -> httpx2.Client:
        return httpx2.Client(
            base_url=self.service.api_urls[0],
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=60,
        )

    def setup(self) -> None:
        """Start the service and create the channel, template and configuration."""
        self.service.start()
        credentials = {
            "twilio": {"account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN},
            "acs": {"access_key": DEFAULT_ACCESS_KEY},
            "telesign": {"customer_id": DEFAULT_CUSTOMER_ID, "api_key": DEFAULT_API_KEY},
        }[self.provider]
        with self._client() as client:
            response = client.post(
                "/v1/channels",
                json={
                    "name": "drill",
                    "type": "sms",
                    "provider": self.provider,
                    "sender": SENDERS[self.provider],
                    "base_url": self.fake.base_url,
                    "credentials": credentials,
                },
            )
            response.raise_for_status()
            channel = response.json()
            template = client.post(
                "/v1/templates",
                json={
                    "name": "drill",
                    "channel_type": "sms",
                    "default_locale": "en-US",
                    "default_text": "Hi {CustomerName}, your case {CaseName} was updated.",
                },
            )
            template.raise_for_status()
            config = client.post(
                "/v1/outbound-configurations",
                json={
                    "name": "drill",
                    "channel_type": "sms",
                    "channel_id": channel["id"],
                    "template_id": template.json()["id"],
                },
            )
            config.raise_for_status()
        self.config_id = str(config.json()["id"])
        if self.provider == "acs":
            url = channel["webhook_url"]

            def subscribe(fake: Any) -> None:
                fake.subscription_url = url

            self.fake.call(subscribe)
            if not self.fake.run(lambda f: f.validate_subscription()):
                raise RuntimeError("the service refused Event Grid's validation")

    def feed(self, messages: int) -> None:
        """Send ``messages`` messages, 100 contacts a request, each to a number of its own."""
        self.started = time.monotonic()
        with self._client() as client:
            for start in range(0, messages, 100):
                contacts: list[dict[str, Any]] = [
                    {
                        "tocontactid": f"+3361{i:07d}",
                        "optin": True,
                        "contextitems": {"CustomerName": f"C{i}", "CaseName": f"CAS-{i}"},
                    }
                    for i in range(start, min(start + 100, messages))
                ]
                response = client.post(
                    "/v1/outbound/send",
                    json={"configuration_id": self.config_id, "contacts": contacts},
                )
                response.raise_for_status()
                for item, contact in zip(response.json()["results"], contacts, strict=True):
                    if item.get("message_id") and item.get("status") == "queued":
                        self.accepted[item["message_id"]] = _digits(contact["tocontactid"])

    def statuses(self) -> dict[str, int]:
        """Messages by status (empty while the database cannot be read)."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    sa.text("SELECT status, count(*) FROM messages GROUP BY status")
                ).all()
        except sa.exc.OperationalError:
            return {}
        return {str(status): int(count) for status, count in rows}

    def wait_created(self, share: float, timeout: float = 120) -> None:
        """Until the provider created ``share`` of the accepted messages."""
        wanted = share * len(self.accepted)
        deadline = time.monotonic() + timeout
        while len(self.fake.created()) < wanted:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the provider did not create {share:.0%} in {timeout} s")
            time.sleep(0.02)

    def wait_status(self, statuses: frozenset[str], timeout: float = 120) -> None:
        """Until every accepted message is in one of ``statuses``."""
        deadline = time.monotonic() + timeout
        while sum(self.statuses().get(s, 0) for s in statuses) < len(self.accepted):
            if time.monotonic() > deadline:
                raise RuntimeError(f"messages not {'/'.join(sorted(statuses))} in {timeout} s")
            time.sleep(0.05)

    def wait_final(self, stall: float, timeout: float) -> float | None:
        """Until every accepted message is final (seconds since the feed began), or until
        nothing changed for ``stall`` seconds, or ``timeout`` (``None`` then)."""
        deadline = time.monotonic() + timeout
        last: tuple[Any, ...] = ()
        changed = time.monotonic()
        while time.monotonic() < deadline:
            counts = self.statuses()
            if counts and sum(counts.get(s, 0) for s in FINAL) >= len(self.accepted):
                return time.monotonic() - self.started
            state = (tuple(sorted(counts.items())), self.fake.send_calls())
            if state != last:
                last, changed = state, time.monotonic()
            elif time.monotonic() - changed > stall:
                return None
            time.sleep(0.1)
        return None

    def count(self, seconds: float | None) -> Counts:
        """Lost, duplicated and final messages, from the database and the fake."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, status FROM messages")).all()
        status_of = {str(id_): str(status) for id_, status in rows}
        created = Counter(self.fake.created().values())
        lost = 0
        for message_id, number in self.accepted.items():
            status = status_of.get(message_id)
            if status is None or status not in FINAL | GONE_OUT:
                lost += 1  # missing, or never out of the queue
            elif status in GONE_OUT and created[number] == 0:
                lost += 1  # recorded as sent, but the provider never had it
        numbers = set(self.accepted.values())
        duplicated = sum(1 for number, n in created.items() if n > 1 and number in numbers)
        if duplicated:
            self.write_duplicates({number for number, n in created.items() if n > 1})
        statuses = Counter(status_of[m] for m in self.accepted if m in status_of)
        final = sum(statuses[s] for s in FINAL)
        return Counts(
            messages=len(self.accepted),
            final=final,
            failed=statuses["failed"] + statuses["undelivered"],
            not_final=len(self.accepted) - final,
            lost=lost,
            duplicated=duplicated,
            send_calls=self.fake.send_calls(),
            seconds=seconds,
            statuses=dict(statuses),
        )

    def write_duplicates(self, numbers: set[str]) -> None:
        """Write, beside the row's logs, each message sent twice: what the provider created
        for its number, and the message's status history."""
        ids = [m for m, number in self.accepted.items() if number in numbers]
        with self.engine.connect() as conn:
            history = conn.execute(
                sa.select(MessageEvent.message_id, MessageEvent.occurred_at, MessageEvent.status)
                .add_columns(MessageEvent.source, MessageEvent.error_code)
                .where(MessageEvent.message_id.in_(ids))
                .order_by(MessageEvent.message_id, MessageEvent.id)
            ).all()
        sends = self.fake.sends_to(numbers)
        with (self.service.data_dir / "duplicated.txt").open("w") as out:
            for message_id in ids:
                number = self.accepted[message_id]
                out.write(f"message {message_id} to ...{number[-4:]}\n")
                for line in sends.get(number, []):
                    out.write(f"  provider: {line}\n")
                for row in history:
                    if row.message_id == message_id:
                        when = row.occurred_at.isoformat(timespec="milliseconds")
                        out.write(f"  {when} {row.status} ({row.source}) {row.error_code or ''}\n")


@contextlib.contextmanager
def run_dir(root: Path | None, name: str) -> Iterator[Path]:
    """A directory for one row's files (kept under ``root`` when given)."""
    if root is not None:
        path = root / name
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="outbound-drill-") as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on a PostgreSQL server, dropped afterwards; each statement on a
    connection of its own, since the server may have been restarted in between."""
    admin_url = sa.make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"outbound_drill_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield admin_url.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
