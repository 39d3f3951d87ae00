"""Benchmarks: ``python -m bench [--messages N] [--latency S] [--postgres URL]``.

For each provider latency (the fake Twilio server answering at once, and after ``--latency``
seconds), one table row per scenario:

- *limit*: a bare aiohttp client sending the same requests straight to the fake Twilio server
  (no database, no rendering), at the dispatcher's concurrency -- the ceiling;
- *limit + callbacks*: the same, with a ``StatusCallback`` to a bare receiver
  (:mod:`bench.receiver`): what the machine allows for a whole message -- the send and its two
  signed status callbacks -- with nothing of the service in the way. Its CPU per message puts
  the receiver's in the service's place: the client's send and the receiver's two callbacks
  are the HTTP a service does for each message at the least (*HTTP floor*), and each outbound
  row gives the service's CPU per message above it;
- *naive*: a loop over the official ``twilio`` SDK, as a team without this service would write;
- *outbound SQLite*: ``outbound serve`` (API and worker in one process) fed 100-contact requests
  over HTTP, until every message is ``sent`` and until every delivery callback is recorded;
- *outbound PostgreSQL* (with ``--postgres``): 2 API processes and 1, then 2, worker processes
  (``--workers 1,2,3,4`` for others), with a table of how the throughput grows with them;
  the provider's status callbacks all go to the first API process (``--spread-callbacks``:
  each worker's to an API process in turn; ``--webhook-processes N``: to N of their own).

The fake provider and the service run in processes of their own; figures come from the
database and from each process's /proc entry. Record results with the machine in
bench/results.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import httpx2
import sqlalchemy as sa
from cryptography.fernet import Fernet
from rich.console import Console
from rich.table import Table

from outbound.adapters.db.engine import create_engine
from outbound.adapters.db.migrate import upgrade
from outbound.testing.fakes import CALLBACK_TALLY_PATH, DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

console = Console(width=max(170, int(os.environ.get("COLUMNS", "0") or 0)))
PYTHON = sys.executable
CONCURRENCY = 600
STALL_SECONDS = 20.0
ANALYZE_EVERY = 2.0
AUTOVACUUM_DUE = sa.text(
    "SELECT relname, n_live_tup, n_dead_tup, n_mod_since_analyze FROM pg_stat_user_tables"
    " WHERE relname IN ('messages', 'message_events', 'message_rollups', 'orphan_reports')"
)
ROLLUP_PROGRESS = sa.text(
    "SELECT coalesce(sum(sent), 0), coalesce(sum(delivered), 0) FROM message_rollups"
    " WHERE period = 'hour'"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_loop(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def _pct(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu_seconds() -> float:
    """CPU time used so far by the PostgreSQL server's processes on this machine."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
        except OSError:
            continue
        total += _cpu_seconds(int(entry.name))
    return total


@contextmanager
def _analyzing(url: str | None, every: float | None) -> Iterator[None]:
    """Do autovacuum's work on the outbox's tables while the run lasts (PostgreSQL): every
    ``every`` seconds, vacuum a table with more dead rows than 50 + 20% of its live ones, and
    analyze one with more changed rows than 50 + 10% (autovacuum's default thresholds).

    Autovacuum visits each database at most once a minute: a benchmark's database lives about
    that long, so without this every plan of the run is made without statistics and every
    claim reads the index entries of every earlier version of every message — a new
    database's first minute, not a service that has run for days (a report's look-up by
    provider id then read every sent message). The server's CPU for it is counted with the
    rest. ``None`` (``--no-analyze``) leaves the database to autovacuum.
    """
    if url is None or every is None:
        yield
        return
    engine = sa.create_engine(
        sa.make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    stop = threading.Event()

    def analyze() -> None:
        while not stop.wait(every):
            try:
                with engine.connect() as conn:
                    for table, live, dead, changed in conn.execute(AUTOVACUUM_DUE).all():
                        if dead > 50 + 0.2 * live:
                            conn.execute(sa.text(f"VACUUM (ANALYZE) {table}"))
                        elif changed > 50 + 0.1 * live:
                            conn.execute(sa.text(f"ANALYZE {table}"))
            except sa.exc.DBAPIError:
                continue  # the run is ending: its database is going away

    thread = threading.Thread(target=analyze, name="analyze", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        engine.dispose()


def _wal_position(engine: sa.Engine) -> int:
    """Where the PostgreSQL server's write-ahead log is, in bytes (the whole server's)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')")
            ).scalar_one()
        )


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@contextmanager
def _process(
    args: list[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def fake_twilio(latency: float) -> Iterator[tuple[str, int]]:
    port = _free_port()
    args = [PYTHON, "-m", "outbound.testing.fakes", "twilio", "--port", str(port)]
    args += ["--latency", str(latency), "--callback-delay", "0.05"]
    with _process(args) as process:
        _wait_port(port)
        yield f"http://127.0.0.1:{port}", process.pid


# --- limit and naive ------------------------------------------------------------------------


async def _limit(base: str, count: int, callback_url: str | None = None) -> tuple[float, float]:
    """Sends per second; with ``callback_url``, also messages per second until both status
    callbacks of every message reached that receiver (else NaN)."""
    url = f"{base}/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json"
    auth = base64.b64encode(f"{DEFAULT_ACCOUNT_SID}:{DEFAULT_AUTH_TOKEN}".encode()).decode()
    headers = {
        "Authorization": f"Basic {auth}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    extra = f"&StatusCallback={quote(callback_url, safe='')}" if callback_url else ""
    semaphore = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as s:

        async def one(i: int) -> None:
            body = f"To=%2B3361{i:07d}&From=%2B15005550006&Body=Hi+C{i}%2C+case+CAS-{i}{extra}"
            async with semaphore, s.post(url, data=body, headers=headers) as response:
                await response.read()
                assert response.status == 201, response.status

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        sent = count / (time.perf_counter() - started)
        if callback_url is None:
            return sent, float("nan")
        count_url = callback_url.rsplit("/", 1)[0] + "/count"
        last, last_change = -1, time.monotonic()
        while time.monotonic() - last_change < STALL_SECONDS:
            async with s.get(count_url) as response:
                received = int(await response.text())
            if received >= 2 * count:
                return sent, count / (time.perf_counter() - started)
            if received != last:
                last, last_change = received, time.monotonic()
            await asyncio.sleep(0.02)
        return sent, float("nan")


@contextmanager
def receiver() -> Iterator[tuple[str, int]]:
    """A bare webhook receiver in a process of its own (``bench.receiver``): its URL and pid."""
    port = _free_port()
    with _process([PYTHON, "-m", "bench.receiver", "--port", str(port)]) as process:
        _wait_port(port)
        yield f"http://127.0.0.1:{port}/callbacks", process.pid


def _naive(base: str, count: int) -> float:
    from twilio.rest import Client

    client = Client(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
    client.api.base_url = base
    started = time.perf_counter()
    for i in range(count):
        client.messages.create(to=f"+3361{i:07d}", from_="+15005550006", body=f"Hi C{i}")
    return count / (time.perf_counter() - started)


# --- outbound ---------------------------------------------------------------------------------


def _given_up(provider_url: str) -> dict[str, int]:
    """The status callbacks the fake gave up on so far, by cause (its tally)."""
    with httpx2.Client(timeout=30) as client:
        tally = client.get(provider_url + CALLBACK_TALLY_PATH).json()
    return {str(cause): int(count) for cause, count in tally["failed"].items()}


@dataclass
class Run:
    sent_per_s: float = 0.0
    delivered_per_s: float = 0.0
    accept_ms: list[float] = field(default_factory=list)
    to_provider_ms: list[float] = field(default_factory=list)
    peak_mb: float = 0.0
    delivered_share: float = 0.0
    cpu_service: float = 0.0
    """CPU seconds the service's processes used from the first request to the last callback."""
    cpu_provider: float = 0.0
    """CPU seconds the fake provider used over the same span."""
    cpu_database: float = 0.0
    """CPU seconds of the PostgreSQL server's processes over the same span (0 on SQLite)."""
    cpu_bench: float = 0.0
    """CPU seconds of this process (load generator and progress queries) over the same span."""
    wal_bytes: float = 0.0
    """Bytes of write-ahead log the PostgreSQL server wrote over the same span (0 on SQLite):
    the database's writes, which unlike its CPU do not vary with the machine's load."""
    seconds: float = 0.0
    write_seconds: float = 0.0
    """Seconds spent in write transactions, summed over the service's processes (/metrics)."""
    write_wait_seconds: float = 0.0
    """Seconds write transactions waited for their turn, summed likewise."""
    writes: int = 0
    stages: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    """Statements, transactions and CPU seconds inside database sessions, by stage, summed
    over the service's processes (/metrics)."""
    callbacks_given_up: dict[str, int] = field(default_factory=dict)
    """Status callbacks the fake gave up on during the run (it posts each once), by cause."""

    def delivered_cell(self) -> str:
        """Delivered per second, or the share recorded and why the rest is missing."""
        if self.delivered_per_s == self.delivered_per_s:
            return f"{self.delivered_per_s:.0f}"
        cell = f"{self.delivered_share:.0%} recorded"
        if self.callbacks_given_up:
            causes = ", ".join(f"{n} {c}" for c, n in sorted(self.callbacks_given_up.items()))
            cell += f" (fake gave up: {causes})"
        return cell


def _admin_key(database_url: str, secret: str, data_dir: Path) -> tuple[str, str]:
    from outbound.app import build_container
    from outbound.config import Settings
    from outbound.schemas import Role
    from outbound.services.auth import create_api_key, create_organization

    container = build_container(
        Settings(data_dir=data_dir, database_url=database_url, secret_key=secret)
    )
    container.migrate()
    org = create_organization(container.db, container.clock, f"bench-{uuid.uuid4().hex[:6]}")
    _key, key = create_api_key(container.db, container.clock, org.id, Role.ADMIN)
    container.db.dispose()
    return org.id, key


def _setup(api: str, key: str, provider_url: str) -> str:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx2.Client(base_url=api, headers=headers, timeout=30) as client:
        channel = client.post(
            "/v1/channels",
            json={
                "name": "bench",
                "type": "sms",
                "provider": "twilio",
                "sender": "+15005550006",
                "base_url": provider_url,
                "credentials": {
                    "account_sid": DEFAULT_ACCOUNT_SID,
                    "auth_token": DEFAULT_AUTH_TOKEN,
                },
            },
        ).json()
        template = client.post(
            "/v1/templates",
            json={
                "name": "bench",
                "channel_type": "sms",
                "default_locale": "en-US",
                "default_text": "Hi {CustomerName}, your case {CaseName} was updated.",
                "localizations": {"fr-FR": "Bonjour {CustomerName}, dossier {CaseName}."},
            },
        ).json()
        config = client.post(
            "/v1/outbound-configurations",
            json={
                "name": "bench",
                "channel_type": "sms",
                "channel_id": channel["id"],
                "template_id": template["id"],
            },
        ).json()
    return str(config["id"])


def _contacts(start: int) -> list[dict[str, Any]]:
    return [
        {
            "tocontactid": f"+3361{(start + i) % 10_000_000:07d}",
            "optin": True,
            "locale": "fr-FR" if i % 2 else "en-US",
            "contextitems": {"CustomerName": f"C{start + i}", "CaseName": f"CAS-{start + i}"},
        }
        for i in range(100)
    ]


async def _feed(apis: list[str], key: str, config_id: str, messages: int) -> list[float]:
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def client(index: int, starts: list[int]) -> None:
            api = apis[index % len(apis)]
            for start in starts:
                body = {"configuration_id": config_id, "contacts": _contacts(start)}
                began = time.perf_counter()
                async with session.post(f"{api}/v1/outbound/send", json=body) as response:
                    await response.read()
                    assert response.status == 202, response.status
                latencies.append((time.perf_counter() - began) * 1000)

        starts = list(range(0, messages, 100))
        clients = 4
        await asyncio.gather(*(client(i, starts[i::clients]) for i in range(clients)))
    return latencies


def _outbound(
    label: str,
    provider_url: str,
    provider_pid: int,
    messages: int,
    *,
    database_url: str | None,
    api_processes: int,
    workers: int,
    inline_worker: bool = False,
    batch_size: int = 200,
    webhook_processes: int = 0,
    spread_callbacks: bool = False,
    analyze_every: float | None = ANALYZE_EVERY,
) -> Run:
    with (
        tempfile.TemporaryDirectory(prefix="outbound-bench-") as tmp,
        _fresh(database_url) as fresh_url,
    ):
        data_dir = Path(tmp)
        url = fresh_url or f"sqlite:///{data_dir / 'bench.db'}"
        secret = Fernet.generate_key().decode()
        engine = create_engine(url)
        upgrade(engine)
        _org, key = _admin_key(url, secret, data_dir)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")}
        env.update(
            {
                "OUTBOUND_DATABASE_URL": url,
                "OUTBOUND_SECRET_KEY": secret,
                "OUTBOUND_DATA_DIR": str(data_dir),
                "OUTBOUND_LOG_LEVEL": "WARNING",
                "OUTBOUND_WORKER_CONCURRENCY": str(CONCURRENCY),
                "OUTBOUND_WORKER_BATCH_SIZE": str(batch_size),
            }
        )
        ports = [_free_port() for _ in range(api_processes + webhook_processes)]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        # The first processes take the send requests; the others, when asked for, only the
        # provider's callbacks (a load balancer sending /webhooks/ to processes of their own).
        apis, hooks = urls[:api_processes], urls[api_processes:]
        metrics_urls = [f"{url}/metrics" for url in urls]
        processes = []
        with contextlib_exit() as stack:
            for index, port in enumerate(ports):
                api_env = {**env, "OUTBOUND_PUBLIC_BASE_URL": urls[index]}
                run_worker = inline_worker
                args = [PYTHON, "-m", "outbound", "serve", "--port", str(port)]
                args.append("--worker" if run_worker else "--no-worker")
                processes.append(stack.enter_context(_process(args, api_env)))
            for port in ports:
                _wait_port(port)
            # The providers' callbacks all go to one process (the first API, or those of
            # their own), whatever the number of workers, as docs/deploy.md advises: the
            # workers' rows then differ by the workers alone, not by callbacks spread over
            # more processes in smaller report batches.
            callbacks_to = hooks or (apis if spread_callbacks else apis[:1])
            if not inline_worker:
                for index in range(workers):
                    metrics_port = _free_port()
                    metrics_urls.append(f"http://127.0.0.1:{metrics_port}/metrics")
                    # Status callbacks go to the process the worker names.
                    worker_env = {
                        **env,
                        "OUTBOUND_PUBLIC_BASE_URL": callbacks_to[index % len(callbacks_to)],
                        "OUTBOUND_WORKER_METRICS_PORT": str(metrics_port),
                    }
                    args = [PYTHON, "-m", "outbound", "worker"]
                    processes.append(stack.enter_context(_process(args, worker_env)))
            config_id = _setup(apis[0], key, provider_url)
            stack.enter_context(_analyzing(fresh_url, analyze_every))
            cpu_before = [_cpu_seconds(p.pid) for p in processes]
            provider_before = _cpu_seconds(provider_pid)
            database_before = _postgres_cpu_seconds() if database_url else 0.0
            wal_before = _wal_position(engine) if database_url else 0
            bench_before = time.process_time()
            given_up_before = _given_up(provider_url)
            started = time.perf_counter()
            accept = asyncio.run(_feed(apis, key, config_id, messages))
            sent_at = delivered_at = 0.0
            deadline = time.monotonic() + 600
            last_delivered, last_change = -1, time.monotonic()
            while time.monotonic() < deadline:
                # The report rollups count the messages that reached the provider and those
                # delivered, in a few rows: counting the messages themselves every 50 ms
                # would be a scan of the table that grows with the run, charged to the
                # database's CPU per message.
                with engine.connect() as conn:
                    done, delivered = conn.execute(ROLLUP_PROGRESS).one()
                done, delivered = int(done), int(delivered)
                if not sent_at and done >= messages:
                    sent_at = time.perf_counter() - started
                if delivered >= messages:
                    delivered_at = time.perf_counter() - started
                    break
                if delivered != last_delivered:
                    last_delivered, last_change = delivered, time.monotonic()
                elif sent_at and time.monotonic() - last_change > STALL_SECONDS:
                    break  # callbacks the fake gave up on will not come
                time.sleep(0.05)
            seconds = time.perf_counter() - started
            if delivered < messages:
                # The run ended at its last report; the wait for those that never came is not
                # part of it (the machine's share busy would count it idle).
                seconds -= time.monotonic() - last_change
            cpu_service = sum(
                _cpu_seconds(p.pid) - before
                for p, before in zip(processes, cpu_before, strict=True)
            )
            cpu_provider = _cpu_seconds(provider_pid) - provider_before
            cpu_database = _postgres_cpu_seconds() - database_before if database_url else 0.0
            wal_bytes = _wal_position(engine) - wal_before if database_url else 0
            cpu_bench = time.process_time() - bench_before
            given_up = {
                cause: count - given_up_before.get(cause, 0)
                for cause, count in _given_up(provider_url).items()
                if count > given_up_before.get(cause, 0)
            }
            writes = _write_figures(metrics_urls)
            stages = _stage_figures(metrics_urls)
            peak = max(_peak_rss_mb(p.pid) for p in processes)
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        "SELECT m.created_at, e.occurred_at FROM messages m JOIN message_events e"
                        " ON e.message_id = m.id WHERE e.status = 'sent'"
                    )
                ).all()
        engine.dispose()
    to_provider = []
    for created, sent in rows:
        if isinstance(created, str):
            created, sent = _parse(created), _parse(sent)
        to_provider.append((sent - created).total_seconds() * 1000)
    return Run(
        sent_per_s=messages / sent_at if sent_at else float("nan"),
        delivered_per_s=messages / delivered_at if delivered_at else float("nan"),
        accept_ms=accept,
        to_provider_ms=to_provider,
        peak_mb=peak,
        delivered_share=last_delivered / messages if last_delivered >= 0 else 0.0,
        callbacks_given_up=given_up,
        cpu_service=cpu_service,
        cpu_provider=cpu_provider,
        cpu_database=cpu_database,
        cpu_bench=cpu_bench,
        wal_bytes=wal_bytes,
        seconds=seconds,
        write_seconds=writes[0],
        write_wait_seconds=writes[1],
        writes=int(writes[2]),
        stages=stages,
    )


def _write_figures(urls: list[str]) -> tuple[float, float, float]:
    """Write-transaction seconds, waiting seconds and count, summed over the processes."""
    from prometheus_client.parser import text_string_to_metric_families

    took = waited = count = 0.0
    for url in urls:
        try:
            text = httpx2.get(url, timeout=30).text
        except httpx2.HTTPError:
            continue
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "outbound_database_write_seconds_sum":
                    took += sample.value
                elif sample.name == "outbound_database_write_seconds_count":
                    count += sample.value
                elif sample.name == "outbound_database_write_wait_seconds_sum":
                    waited += sample.value
    return took, waited, count


def _stage_figures(urls: list[str]) -> dict[str, tuple[float, float, float]]:
    """Statements, transactions and session CPU seconds by stage, summed over the processes."""
    from prometheus_client.parser import text_string_to_metric_families

    names = {
        "outbound_database_statements_total": 0,
        "outbound_database_transactions_total": 1,
        "outbound_database_session_cpu_seconds_total": 2,
    }
    totals: dict[str, list[float]] = {}
    for url in urls:
        try:
            text = httpx2.get(url, timeout=30).text
        except httpx2.HTTPError:
            continue
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                column = names.get(sample.name)
                if column is not None:
                    row = totals.setdefault(sample.labels["stage"], [0.0, 0.0, 0.0])
                    row[column] += sample.value
    return {name: (row[0], row[1], row[2]) for name, row in totals.items()}


STAGE_COLUMNS = ("accept", "claim", "record", "dispatch", "report", "other")


def _stage_table(latency: float) -> Table:
    table = Table(
        title=f"database work per message by stage, fake answering after {latency * 1000:.0f} ms"
        " (statements / transactions / CPU ms inside sessions; PostgreSQL's WAL kB)"
    )
    table.add_column("scenario")
    for column in (
        "statements",
        "transactions",
        *STAGE_COLUMNS,
        "CPU ms outside sessions",
        "WAL kB",
    ):
        table.add_column(column, justify="right")
    return table


def _stage_row(label: str, run: Run, messages: int) -> list[str]:
    stages = dict(run.stages)
    for merged in ("inbound",):  # no customer writes in the benchmark: counted with "other"
        extra = stages.pop(merged, (0.0, 0.0, 0.0))
        other = stages.get("other", (0.0, 0.0, 0.0))
        stages["other"] = (other[0] + extra[0], other[1] + extra[1], other[2] + extra[2])
    statements = sum(v[0] for v in stages.values())
    transactions = sum(v[1] for v in stages.values())
    inside = sum(v[2] for v in stages.values())
    cells = [label, f"{statements / messages:.2f}", f"{transactions / messages:.2f}"]
    for name in STAGE_COLUMNS:
        count, began, cpu = stages.get(name, (0.0, 0.0, 0.0))
        cells.append(
            f"{count / messages:.2f} / {began / messages:.2f} / {cpu * 1000 / messages:.2f}"
        )
    cells.append(f"{(run.cpu_service - inside) * 1000 / messages:.2f}")
    cells.append(f"{run.wal_bytes / 1024 / messages:.1f}" if run.wal_bytes else "-")
    return cells


def _scale_table(latency: float, runs: list[tuple[int, Run]], messages: int) -> Table:
    """How throughput grows with the workers sharing one PostgreSQL database."""
    table = Table(
        title=f"PostgreSQL scale-out, fake answering after {latency * 1000:.0f} ms "
        "(2 API processes)"
    )
    for column in (
        "workers",
        "msg/s sent",
        "x 1st row",
        "msg/s delivered",
        "CPU ms/msg service / db",
        "statements/msg",
    ):
        table.add_column(column, justify="right")
    base = runs[0][1].sent_per_s
    for workers, run in runs:
        statements = sum(v[0] for v in run.stages.values())
        table.add_row(
            str(workers),
            f"{run.sent_per_s:.0f}",
            f"{run.sent_per_s / base:.2f}",
            run.delivered_cell(),
            f"{run.cpu_service * 1000 / messages:.2f} / {run.cpu_database * 1000 / messages:.2f}",
            f"{statements / messages:.2f}",
        )
    return table


@contextmanager
def _fresh(server_url: str | None) -> Iterator[str | None]:
    """A new, empty PostgreSQL database for one run (dropped afterwards)."""
    if server_url is None:
        yield None
        return
    admin_url = sa.make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"outbound_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _parse(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value)


@contextmanager
def contextlib_exit() -> Iterator[Any]:
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield stack


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--messages", type=int, default=10_000, help="messages per outbound run")
    parser.add_argument("--limit-messages", type=int, default=None, help="default: --messages")
    parser.add_argument("--naive-messages", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.150, help="slow provider latency (s)")
    parser.add_argument("--postgres", default=None, help="also run on this PostgreSQL URL")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=200,
        help=f"OUTBOUND_WORKER_BATCH_SIZE of the service ({CONCURRENCY} calls in flight)",
    )
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated outbound scenarios to run: sqlite, sqlite-split, pg-N (N of "
        "--workers)",
    )
    parser.add_argument(
        "--latencies",
        choices=["both", "0", "slow"],
        default="both",
        help="run at 0 ms, at --latency, or both (default)",
    )
    parser.add_argument(
        "--workers",
        default="1,2",
        help="with --postgres: the numbers of worker processes to run against one database "
        "(2 API processes each), e.g. 1,2,3,4; a table shows how throughput grows with them",
    )
    parser.add_argument(
        "--webhook-processes",
        type=int,
        default=0,
        help="with --postgres: API processes that take only the provider's status callbacks "
        "(the 2 others take the send requests)",
    )
    parser.add_argument(
        "--spread-callbacks",
        action="store_true",
        help="each worker's status callbacks to an API process of its own, in turn (by "
        "default they all go to one)",
    )
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="with --postgres: leave vacuuming and statistics to autovacuum, which does not "
        "visit a database this young (by default the outbox's tables are vacuumed and "
        f"analyzed at autovacuum's thresholds, looked at every {ANALYZE_EVERY:.0f} s)",
    )
    args = parser.parse_args()
    if args.webhook_processes < 0:
        parser.error("--webhook-processes: 0 or more")
    try:
        worker_counts = sorted({int(n) for n in args.workers.split(",")})
    except ValueError:
        parser.error("--workers: comma-separated numbers of workers, such as 1,2,3,4")
    if not worker_counts or worker_counts[0] < 1:
        parser.error("--workers: at least one worker")

    scenarios = [
        ("sqlite", "outbound SQLite, 1 process", None, 1, 0, True),
        ("sqlite-split", "outbound SQLite, 1 API + 1 worker", None, 1, 1, False),
    ]
    if args.postgres:
        scenarios += [
            (
                f"pg-{n}",
                f"outbound PostgreSQL, 2 API + {n} worker{'s' if n > 1 else ''}"
                + (f" + {args.webhook_processes} webhook" if args.webhook_processes else ""),
                args.postgres,
                2,
                n,
                False,
            )
            for n in worker_counts
        ]
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {name for name, *_ in scenarios}
        if unknown:
            parser.error(f"--only: unknown scenario(s) {', '.join(sorted(unknown))}")
        scenarios = [scenario for scenario in scenarios if scenario[0] in wanted]
    latencies = [0.0, args.latency] if args.latencies == "both" else [args.latency]
    if args.latencies == "0":
        latencies = [0.0]

    for latency in latencies:
        table = Table(title=f"fake Twilio answering after {latency * 1000:.0f} ms")
        stage_table = _stage_table(latency)
        scale: list[tuple[int, Run]] = []
        for column in (
            "scenario",
            "msg/s sent",
            "msg/s delivered",
            "x limit",
            "x naive",
            "accept p50/p99 ms",
            "accept→sent p50/p99 ms",
            "peak MB",
            "CPU ms/msg service / db / fake / load",
            "CPU busy",
            "writes: busy / mean ms / wait ms",
            "delivered x limit+cb",
            "service CPU ms/msg above HTTP floor",
        ):
            table.add_column(column, justify="right" if column != "scenario" else "left")
        cores = os.cpu_count() or 1
        with fake_twilio(latency) as (provider_url, provider_pid):
            # The ceiling gets the same event loop as the service (uvloop where installed).
            limit_count = args.limit_messages or args.messages
            provider_before, client_before = _cpu_seconds(provider_pid), time.process_time()
            began = time.perf_counter()
            limit, _ = _run_loop(_limit(provider_url, limit_count))
            limit_seconds = time.perf_counter() - began
            limit_provider = _cpu_seconds(provider_pid) - provider_before
            limit_client = time.process_time() - client_before
            with receiver() as (callback_url, receiver_pid):
                before = (
                    _cpu_seconds(receiver_pid),
                    _cpu_seconds(provider_pid),
                    time.process_time(),
                )
                lifecycle_sent, lifecycle = _run_loop(
                    _limit(provider_url, limit_count, callback_url)
                )
                lifecycle_receiver, lifecycle_provider, lifecycle_client = (
                    (after - start) * 1000 / limit_count
                    for after, start in zip(
                        (
                            _cpu_seconds(receiver_pid),
                            _cpu_seconds(provider_pid),
                            time.process_time(),
                        ),
                        before,
                        strict=True,
                    )
                )
            # What a service spends per message on its HTTP at the least: the client's send
            # and the bare receiver's two callbacks.
            floor = lifecycle_receiver + lifecycle_client
            naive_count = (
                args.naive_messages if latency == 0 else max(10, args.naive_messages // 10)
            )
            naive = _naive(provider_url, naive_count)
            table.add_row(
                "limit (bare aiohttp)",
                f"{limit:.0f}",
                "",
                "1.00",
                f"{limit / naive:.0f}",
                "",
                "",
                "",
                f"- / - / {limit_provider * 1000 / limit_count:.2f}"
                f" / {limit_client * 1000 / limit_count:.2f}",
                f"{(limit_provider + limit_client) / (limit_seconds * cores):.0%}",
            )
            table.add_row(
                "limit + callbacks (bare receiver)",
                f"{lifecycle_sent:.0f}",
                f"{lifecycle:.0f}" if lifecycle == lifecycle else "callbacks lost",
                f"{lifecycle_sent / limit:.2f}",
                f"{lifecycle_sent / naive:.0f}",
                "",
                "",
                "",
                f"{lifecycle_receiver:.2f} / - / {lifecycle_provider:.2f} / {lifecycle_client:.2f}",
                "",
                "",
                "",
                f"floor {floor:.2f}",
            )
            table.add_row(
                "naive (twilio SDK loop)", f"{naive:.1f}", "", f"{naive / limit:.3f}", "1"
            )
            for _name, label, url, apis, workers, inline in scenarios:
                run = _outbound(
                    label,
                    provider_url,
                    provider_pid,
                    args.messages,
                    database_url=url,
                    api_processes=apis,
                    workers=workers,
                    inline_worker=inline,
                    batch_size=args.batch_size,
                    webhook_processes=args.webhook_processes if url else 0,
                    spread_callbacks=args.spread_callbacks,
                    analyze_every=None if args.no_analyze else ANALYZE_EVERY,
                )
                per_message = 1000 / args.messages
                busy = (run.cpu_service + run.cpu_database + run.cpu_provider + run.cpu_bench) / (
                    run.seconds * cores
                )
                table.add_row(
                    label,
                    f"{run.sent_per_s:.0f}",
                    run.delivered_cell(),
                    f"{run.sent_per_s / limit:.2f}",
                    f"{run.sent_per_s / naive:.0f}",
                    f"{statistics.median(run.accept_ms):.0f} / {_pct(run.accept_ms, 99):.0f}",
                    f"{_pct(run.to_provider_ms, 50):.0f} / {_pct(run.to_provider_ms, 99):.0f}",
                    f"{run.peak_mb:.0f}",
                    f"{run.cpu_service * per_message:.2f} / {run.cpu_database * per_message:.2f}"
                    f" / {run.cpu_provider * per_message:.2f} / {run.cpu_bench * per_message:.2f}",
                    f"{busy:.0%}",
                    f"{run.write_seconds / run.seconds:.0%} / "
                    f"{run.write_seconds * 1000 / max(run.writes, 1):.1f} / "
                    f"{run.write_wait_seconds * 1000 / max(run.writes, 1):.1f}",
                    f"{run.delivered_per_s / lifecycle:.2f}",
                    f"{run.cpu_service * per_message - floor:.2f}",
                )
                stage_table.add_row(*_stage_row(label, run, args.messages))
                if url is not None:
                    scale.append((workers, run))
        console.print(table)
        console.print(stage_table)
        if len(scale) > 1:
            console.print(_scale_table(latency, scale, args.messages))
    console.print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}; "
        f"messages={args.messages}, concurrency={CONCURRENCY}"
    )


if __name__ == "__main__":
    main()
