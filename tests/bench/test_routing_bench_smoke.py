"""The routing benchmark runs (small sizes, no timing assertions): ``python -m bench.routing``."""

from __future__ import annotations

from tests.bench.test_bench_smoke import _cells, _run


def _pair(cell: str) -> tuple[float, float]:
    first, second = (float(value) for value in cell.split(" / "))
    return first, second


def test_routing_benchmark_runs_and_prints_its_table() -> None:
    result = _run(["bench.routing", "--replies", "24", "--agents", "3"], timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "machine: " in result.stdout, output
    rows = _cells(result.stdout)
    assert [row[:3] for row in rows] == [["outbound SQLite, 1 process", "24", "3"]], output
    row = rows[0]
    assert float(row[3]) > 0, row  # replies accepted per second
    webhook_p50, webhook_p99 = _pair(row[4])
    assert 0 < webhook_p50 <= webhook_p99, row
    # Every reply routed and assigned: rates, not the share seen on the stream.
    assert float(row[5]) > 0 and float(row[6]) > 0, row
    stream_p50, stream_p99 = _pair(row[7])
    assert 0 < stream_p50 <= stream_p99, row
    database_p50, database_p99 = _pair(row[8])
    assert 0 <= database_p50 <= database_p99 <= stream_p99, row
    assert row[9] == "24", row  # assignments recorded in the database
    assert float(row[10]) > 0, row  # peak MB
    service, database = _pair(row[11])
    assert service > 0 and database == 0, row  # no PostgreSQL server in this run
