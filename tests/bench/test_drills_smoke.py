"""The reliability drills run, small (``python -m bench.drills``), and count nothing lost or
sent twice where the target applies (counts only: no timing is asserted)."""

from __future__ import annotations

from tests.bench.test_bench_smoke import _cells, _run

MESSAGES = 50
ROWS = [
    # (drill, provider): where the provider never created a message it did not report.
    ("kill-service", "twilio"),  # its earlier send looked up, not sent again
    ("kill-service", "acs"),
    ("429", "twilio"),
    ("drop-before", "twilio"),
    ("callbacks", "twilio"),
    ("down", "acs"),
    ("callbacks-lost", "twilio"),  # Twilio posts each report once: found by asking it
]


def test_drills_lose_nothing_and_send_nothing_twice() -> None:
    only = ",".join(f"{drill}:{provider}" for drill, provider in ROWS)
    args = ["bench.drills", "--messages", str(MESSAGES), "--only", only]
    args += ["--down", "2", "--slow", "1", "--lease", "3", "--providers", "twilio,acs"]
    result = _run(args, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rows = _cells(result.stdout)
    assert [row[1] for row in rows] == [provider for _drill, provider in ROWS], output
    for row in rows:
        messages, final, _not_final, lost, duplicated, calls = row[3:9]
        assert messages == str(MESSAGES), row
        assert (lost, duplicated) == ("0", "0"), row
        assert final == f"{MESSAGES} (0)", row  # every message delivered
        assert int(calls) >= MESSAGES, row
        assert row[10] == "met", row
