"""Reliability drills: ``python -m bench.drills [--messages N] [--only DRILLS] [--down S]``.

Each row sends ``--messages`` messages, each to a number of its own, through a fake provider,
while something goes wrong, then waits until every message is final (or nothing changed for a
lease and more), and counts, from the service's database and from what the fake created:

- *final*: messages in a status they do not leave (``delivered``, ``failed``...), failed ones
  in brackets; *not final* are the others (``sent`` without its report, mostly);
- *lost*: accepted, but missing, never out of ``queued``/``sending``, or recorded as sent
  although the provider never created it;
- *duplicated*: messages the provider created more than once;
- *send calls*: send requests that reached the provider, faults included;
- *s to final*: from the first request to the moment every message was final.

The drills (``--only`` takes these names, or ``name:provider``):

- ``kill-service``: ``kill -9`` of ``outbound serve`` (SQLite, API and worker in one process)
  while a tenth of the provider's calls take ``--slow`` seconds (2, under the service's
  timeout: calls it would have waited for), once the provider created 30% of the messages;
  started again at once.
- ``kill-worker``: the same against one of two ``outbound worker`` processes on PostgreSQL.
- ``429``, ``500``: the next tenth of the calls answered so (429 with ``Retry-After: 1``).
- ``timeout``: a tenth of the calls answered after the service's timeout (``--http-timeout``);
  the provider still creates those messages.
- ``drop-before``, ``drop-after``: a tenth of the connections closed unanswered, before the
  provider created the message and after.
- ``callbacks``: reports out of order (``delivered`` before ``sent``) and again, once every
  message is final.
- ``down``: the provider answers 503 to everything for ``--down`` seconds.
- ``callbacks-lost``: the service killed once every message is ``sent`` and kept down while the
  provider posts its reports (Twilio does not post them again; ACS and TeleSign retry).
- ``pg-restart``: the private PostgreSQL cluster stopped for ``--pg-down`` seconds mid-run
  (1 API and 2 workers).

PostgreSQL rows run on a private cluster the drill starts (``initdb``, ``pg_ctl``, a free
port; as the ``postgres`` user when run as root), else on ``--postgres URL``; a row that cannot
run says why. The target -- 0 lost, 0 duplicated -- applies to every row but those where the
provider created a message whose answer it did not give (``timeout``, ``drop-after``).

With ``--logs DIR``, each row's directory is kept there: the service's logs and, when a message
was sent twice, ``duplicated.txt`` (what the provider created for it, and its status history).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.drills.cluster import Cluster, ClusterUnavailableError
from bench.drills.harness import (
    FINAL,
    GONE_OUT,
    STATUS_CHECK_AFTER,
    STATUS_CHECK_RATE,
    Counts,
    Run,
    drill_settings,
    fresh_database,
    run_dir,
)
from outbound.services.housekeeping import STATUS_CHECK_SECONDS

console = Console(width=max(170, int(os.environ.get("COLUMNS", "0") or 0)))

PROVIDERS = ("twilio", "acs", "telesign")


@dataclass(frozen=True)
class Options:
    messages: int
    down: float
    slow: float
    pg_down: float
    lease: float
    http_timeout: float
    timeout: float

    @property
    def faulted(self) -> int:
        """How many calls a fault row spoils: a tenth of the messages, at least 3."""
        return max(3, self.messages // 10)

    @property
    def stall(self) -> float:
        """Nothing changed for this long: nothing more will (a lease, and the time a message
        recorded sent without its reports waits for its status to be asked, and more)."""
        return self.lease + STATUS_CHECK_AFTER + STATUS_CHECK_SECONDS + 10


Act = Callable[[Run, Options, "Cluster | None"], None]


@dataclass(frozen=True)
class Drill:
    name: str
    title: str
    act: Act
    providers: tuple[str, ...] = PROVIDERS
    database: str = "sqlite"
    """``sqlite``, ``postgres`` (any server) or ``cluster`` (the private one, restarted)."""
    apis: int = 1
    workers: int = 0
    target: bool = True
    fake_options: Callable[[Options, str], dict[str, Any]] = lambda _o, _p: {}
    replay: bool = False


def _fault(set_up: Callable[[Any, Options], None]) -> Act:
    def act(run: Run, options: Options, _cluster: Cluster | None) -> None:
        run.fake.call(lambda fake: set_up(fake, options))
        run.feed(options.messages)

    return act


def _kill_service(run: Run, options: Options, _cluster: Cluster | None) -> None:
    run.feed(options.messages)
    run.wait_created(0.3)
    run.service.kill_api(0)
    run.service.start_api(0)


def _kill_worker(run: Run, options: Options, _cluster: Cluster | None) -> None:
    run.feed(options.messages)
    run.wait_created(0.3)
    run.service.kill_worker(0)
    run.service.start_worker(0)


def _callbacks_lost(run: Run, options: Options, _cluster: Cluster | None) -> None:
    run.feed(options.messages)
    run.wait_status(GONE_OUT | FINAL)
    run.service.kill_api(0)
    # The reports come 3 s apart (sent, delivered): all are posted while the service is down.
    time.sleep(2 * CALLBACK_GAP + 2)
    run.service.start_api(0)


def _pg_restart(run: Run, options: Options, cluster: Cluster | None) -> None:
    assert cluster is not None
    run.feed(options.messages)
    run.wait_created(0.3)
    cluster.stop()
    time.sleep(options.pg_down)
    cluster.start()


CALLBACK_GAP = 3.0


def _slow_share(options: Options, _provider: str) -> dict[str, Any]:
    return {"slow_share": 0.1, "slow_seconds": options.slow}


def _reports_out_of_order(_options: Options, provider: str) -> dict[str, Any]:
    sequence = {"twilio": ("delivered", "sent", "delivered"), "telesign": (200, 203, 200)}
    if provider not in sequence:
        return {}  # ACS reports delivery only: the replay sends it twice
    return {"callback_sequence": sequence[provider], "callback_delay": 0.0}


DRILLS = [
    Drill(
        "kill-service",
        "kill -9 serve (SQLite, 1 process), restart",
        _kill_service,
        providers=("twilio", "acs"),
        fake_options=_slow_share,
    ),
    Drill(
        "kill-worker",
        "kill -9 1 of 2 workers (PostgreSQL), restart",
        _kill_worker,
        providers=("twilio", "acs"),
        database="postgres",
        workers=2,
        fake_options=_slow_share,
    ),
    Drill(
        "429",
        "429 + Retry-After on a tenth of the calls",
        _fault(lambda f, o: f.fail_next(o.faulted, status=429, retry_after=1)),
    ),
    Drill("500", "500 on a tenth of the calls", _fault(lambda f, o: f.fail_next(o.faulted))),
    Drill(
        "timeout",
        "timeout on a tenth of the calls (created)",
        _fault(lambda f, o: f.slow_next(o.faulted, o.http_timeout + 1)),
        target=False,
    ),
    Drill(
        "drop-before",
        "connection dropped before creating",
        _fault(lambda f, o: f.drop_next(o.faulted)),
    ),
    Drill(
        "drop-after",
        "connection dropped after creating",
        _fault(lambda f, o: f.drop_after_next(o.faulted)),
        target=False,
    ),
    Drill(
        "callbacks",
        "reports duplicated and out of order",
        _fault(lambda _f, _o: None),
        fake_options=_reports_out_of_order,
        replay=True,
    ),
    Drill("down", "provider down (503)", _fault(lambda f, o: f.down_for(o.down))),
    Drill(
        "callbacks-lost",
        "reports posted while serve is down",
        _callbacks_lost,
        fake_options=lambda _o, _p: {"callback_delay": CALLBACK_GAP},
    ),
    Drill(
        "pg-restart",
        "PostgreSQL stopped mid-run, started again",
        _pg_restart,
        providers=("twilio", "acs"),
        database="cluster",
        workers=2,
        fake_options=_slow_share,
    ),
]


@dataclass
class Row:
    drill: Drill
    provider: str
    database: str
    counts: Counts | None = None
    skipped: str | None = None

    @property
    def met(self) -> bool | None:
        """Whether the target is met (``None`` where it does not apply)."""
        if self.counts is None or not self.drill.target:
            return None
        return self.counts.lost == 0 and self.counts.duplicated == 0


def _title(drill: Drill, options: Options) -> str:
    if drill.name == "down":
        return f"provider down (503) for {options.down:g} s"
    if drill.name == "pg-restart":
        return f"PostgreSQL stopped {options.pg_down:g} s mid-run"
    if drill.name.startswith("kill"):
        return f"{drill.title}; 10% of calls +{options.slow:g} s"
    return drill.title


class Databases:
    """Where PostgreSQL rows run: a private cluster (started on first use), else ``--postgres``."""

    def __init__(self, postgres: str | None) -> None:
        self.postgres = postgres
        self._stack = contextlib.ExitStack()
        self._cluster: Cluster | None = None
        self._unavailable: str | None = None

    def cluster(self) -> Cluster:
        if self._unavailable is not None:
            raise ClusterUnavailableError(self._unavailable)
        if self._cluster is None:
            try:
                self._cluster = self._stack.enter_context(Cluster())
            except ClusterUnavailableError as exc:
                self._unavailable = str(exc)
                raise
        return self._cluster

    @contextlib.contextmanager
    def url(self, drill: Drill, data_dir: Path) -> Iterator[tuple[str, str, Cluster | None]]:
        """The database URL of a row, its label and the cluster to restart."""
        if drill.database == "sqlite":
            yield f"sqlite:///{data_dir / 'drill.db'}", "SQLite", None
            return
        cluster: Cluster | None = None
        try:
            cluster = self.cluster()
            server = cluster.url
        except ClusterUnavailableError:
            if drill.database == "cluster" or self.postgres is None:
                raise
            server = self.postgres
        with fresh_database(server) as url:
            label = "PostgreSQL (private)" if cluster is not None else "PostgreSQL"
            yield url, label, cluster

    def close(self) -> None:
        self._stack.close()


def run_row(
    drill: Drill, provider: str, options: Options, databases: Databases, logs: Path | None
) -> Row:
    label = "PostgreSQL" if drill.database != "sqlite" else "SQLite"
    with run_dir(logs, f"{drill.name}-{provider}") as data_dir:
        try:
            with databases.url(drill, data_dir) as (url, label, cluster):
                run = Run(
                    provider,
                    url,
                    data_dir,
                    drill_settings(options.lease, options.http_timeout),
                    apis=drill.apis,
                    workers=drill.workers,
                    fake_options=drill.fake_options(options, provider),
                )
                try:
                    run.setup()
                    drill.act(run, options, cluster)
                    seconds = run.wait_final(options.stall, options.timeout)
                    if drill.replay:
                        run.fake.replay_reports()
                        time.sleep(1.0)
                    counts = run.count(seconds)
                finally:
                    run.close()
        except ClusterUnavailableError as exc:
            return Row(drill, provider, label, skipped=f"skipped: no private PostgreSQL: {exc}")
        except Exception as exc:
            console.print_exception()
            return Row(drill, provider, label, skipped=f"error: {type(exc).__name__}: {exc}"[:200])
    return Row(drill, provider, label, counts)


COLUMNS = (
    "drill",
    "provider",
    "database",
    "messages",
    "final (failed)",
    "not final",
    "lost",
    "duplicated",
    "send calls",
    "s to final",
    "target",
)


def _cells(row: Row, options: Options) -> list[str]:
    head = [_title(row.drill, options), row.provider, row.database]
    counts = row.counts
    if counts is None:
        return [*head, "", "", "", "", "", "", "", str(row.skipped)]
    met = {None: "n/a", True: "met", False: "MISSED"}[row.met]
    if row.met and counts.not_final:
        met = "met; not final"  # nothing lost or sent twice, but reports missing
    return [
        *head,
        str(counts.messages),
        f"{counts.final} ({counts.failed})",
        str(counts.not_final),
        str(counts.lost),
        str(counts.duplicated),
        str(counts.send_calls),
        f"{counts.seconds:.1f}" if counts.seconds is not None else "never",
        met,
    ]


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return (
        f"{nproc or os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.drills", description=__doc__)
    parser.add_argument("--messages", type=int, default=1000, help="messages per row")
    parser.add_argument(
        "--only", default=None, help="comma-separated drills (kill-service, 429:acs...)"
    )
    parser.add_argument(
        "--providers", default=",".join(PROVIDERS), help="providers of the fault rows"
    )
    parser.add_argument("--down", type=float, default=60.0, help="provider outage (s)")
    parser.add_argument(
        "--slow",
        type=float,
        default=2.0,
        help="slow calls of the kill drills (s); under --http-timeout, or they are timeouts too",
    )
    parser.add_argument("--pg-down", type=float, default=10.0, help="PostgreSQL stopped (s)")
    parser.add_argument("--lease", type=float, default=10.0, help="OUTBOUND_LEASE_SECONDS")
    parser.add_argument("--http-timeout", type=float, default=3.0, help="OUTBOUND_HTTP_TIMEOUT (s)")
    parser.add_argument("--timeout", type=float, default=600.0, help="longest wait of a row (s)")
    parser.add_argument("--postgres", default=None, help="PostgreSQL URL if no private cluster")
    parser.add_argument(
        "--logs", type=Path, default=None, help="keep each row's logs (and duplicated.txt) here"
    )
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    args = parser.parse_args()
    options = Options(
        messages=args.messages,
        down=args.down,
        slow=args.slow,
        pg_down=args.pg_down,
        lease=args.lease,
        http_timeout=args.http_timeout,
        timeout=args.timeout,
    )
    providers = [p for p in args.providers.split(",") if p]
    wanted = [w for w in (args.only or "").split(",") if w]
    known = {d.name for d in DRILLS}
    unknown = [w for w in wanted if w.split(":")[0] not in known]
    if unknown:
        parser.error(f"--only: unknown drill(s) {', '.join(unknown)}")
    plan = [
        (drill, provider)
        for drill in DRILLS
        for provider in drill.providers
        if provider in providers
        and (not wanted or drill.name in wanted or f"{drill.name}:{provider}" in wanted)
    ]
    # A drill's processes are killed on purpose; one started by this command must not outlive
    # it if it is interrupted.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    databases = Databases(args.postgres)
    rows: list[Row] = []
    try:
        for drill, provider in plan:
            began = time.monotonic()
            row = run_row(drill, provider, options, databases, args.logs)
            rows.append(row)
            console.log(
                f"{drill.name} with {provider} ({time.monotonic() - began:.0f} s): "
                + ", ".join(
                    f"{c}={v}" for c, v in zip(COLUMNS[3:], _cells(row, options)[3:], strict=True)
                )
            )
    finally:
        databases.close()

    table = Table(title=f"Drills: {options.messages} messages a row")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in COLUMNS[:3] else "right")
    for row in rows:
        table.add_row(*_cells(row, options))
    console.print(table)
    settings = (
        f"lease {options.lease:g} s, provider timeout {options.http_timeout:g} s, retries "
        f"0.5 s doubling to 4 s, circuit cooldown 2 s, status asked after {STATUS_CHECK_AFTER:g} s"
        f" at up to {STATUS_CHECK_RATE:g}/s"
    )
    console.print(f"machine: {machine()}; service settings: {settings}")
    if args.markdown:
        print()
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "|".join(" --- " for _ in COLUMNS) + "|")
        for row in rows:
            print("| " + " | ".join(_cells(row, options)) + " |")


if __name__ == "__main__":
    main()
