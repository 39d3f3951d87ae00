"""The benchmarks run (small sizes, no timing assertions): ``python -m bench.flows``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")}
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**env, "COLUMNS": "400"},
        check=False,
    )


def _cells(stdout: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in stdout.splitlines()
        if line.startswith("│")
    ]


def test_flow_benchmark_runs_and_prints_its_table() -> None:
    result = _run(["bench.flows", "--contacts", "150,300"], timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "peak MiB" in result.stdout, output
    assert "2x the contacts" in result.stdout, output
    # 300 contacts, one in ten without consent: 270 queued, 30 skipped, in 3 batches.
    cells = _cells(result.stdout)
    assert [row[1] for row in cells] == ["150", "300"], output
    assert cells[1][5:8] == ["270", "30", "3"], output


def test_send_benchmark_runs_and_prints_its_tables() -> None:
    args = ["bench", "--messages", "300", "--naive-messages", "10"]
    args += ["--latency", "0.05"]
    scenarios = ["outbound SQLite, 1 process", "outbound SQLite, 1 API + 1 worker"]
    postgres = os.environ.get("OUTBOUND_TEST_POSTGRES_URL")
    if postgres:
        args += ["--postgres", postgres, "--only", "sqlite,sqlite-split,pg-2"]
        scenarios.append("outbound PostgreSQL, 2 API + 2 workers")
    result = _run(args, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    cells = _cells(result.stdout)
    rows = [row for row in cells if len(row) > 11]
    stage_rows = [row for row in cells if len(row) == 11]
    expected = [
        "limit (bare aiohttp)",
        "limit + callbacks (bare receiver)",
        "naive (twilio SDK loop)",
        *scenarios,
    ]
    assert [row[0] for row in rows] == expected * 2, output  # at 0 ms and at 50 ms
    # The database work per message, by stage: statements / transactions / CPU ms.
    assert [row[0] for row in stage_rows] == scenarios * 2, output
    for row in stage_rows:
        assert float(row[1]) > 0 and float(row[2]) > 0, row
        for stage in row[3:8]:  # accept, claim, record, dispatch, report
            statements, transactions, cpu = (float(v) for v in stage.split(" / "))
            assert statements > 0 and transactions > 0 and cpu > 0, row
        if "PostgreSQL" in row[0]:
            assert float(row[10]) > 0, row  # the server's write-ahead log per message
        else:
            assert row[10] == "-", row
    floor = 0.0
    for row in rows:
        assert float(row[1]) > 0, row  # messages per second sent
        if row[0].startswith("limit + callbacks"):
            assert float(row[2]) > 0, row  # every callback reached the bare receiver
            receiver, _db, fake, client = row[8].split(" / ")
            assert float(receiver) > 0 and float(fake) > 0 and float(client) > 0, row
            # The HTTP floor: the client's send and the receiver's two callbacks.
            assert row[12].startswith("floor "), row
            floor = float(row[12].removeprefix("floor "))
            assert abs(floor - (float(receiver) + float(client))) <= 0.011, row
        if row[0].startswith("outbound"):
            assert float(row[2]) > 0, row  # every callback recorded: a rate, not a share
            accept_p50, accept_p99 = (float(v) for v in row[5].split(" / "))
            assert 0 < accept_p50 <= accept_p99, row
            service, database, fake, _load = (float(v) for v in row[8].split(" / "))
            assert service > 0 and fake > 0, row
            assert (database > 0) == ("PostgreSQL" in row[0]), row  # the server's own CPU
            assert row[10].count("/") == 2, row  # database writes: busy / mean / wait
            assert float(row[11]) > 0, row  # delivered against the bare lifecycle
            assert abs(float(row[12]) - (service - floor)) <= 0.011, row  # above the HTTP floor


def test_accept_benchmark_runs_and_prints_its_table() -> None:
    result = _run(["bench.accept", "--requests", "15"], timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rows = _cells(result.stdout)
    assert [row[:2] for row in rows] == [["new numbers", "5"], ["same numbers again", "15"]]
    for row in rows:
        assert 0 < float(row[2]) and 0 < float(row[3]) and 0 < float(row[5]), row


def test_console_benchmark_runs_and_prints_its_table() -> None:
    result = _run(["bench.console", "--messages", "500"], timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rows = {row[0]: row for row in _cells(result.stdout)}
    for what in ("GET /dashboard", "DashboardService.summary", "GET /messages"):
        assert what in rows, output


def test_inbox_benchmark_runs_and_lists_the_live_conversations() -> None:
    result = _run(["bench.inbox", "--conversations", "2000"], timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rows = {row[0]: row[1] for row in _cells(result.stdout)}
    # 10 open, 5 active and 3 waiting among 2,000 (the last two assigned to one agent).
    assert rows["unassigned in a queue"].endswith("(10)"), output
    assert rows["every live one"].endswith("(18)"), output
    assert rows["one agent's"].endswith("(8)"), output


def test_status_checks_benchmark_runs_and_claims_every_due_check() -> None:
    result = _run(["bench.status_checks", "--messages", "2000", "--due", "25"], timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "ix_messages_status_check" in result.stdout, output  # the partial index is read
    assert "claimed 25 in " in result.stdout, output
