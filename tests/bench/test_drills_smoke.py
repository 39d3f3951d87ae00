"""The reliability drills run, small (``python -m bench.drills``), and count nothing lost or
sent twice where the target applies (counts only: no timing is asserted)."""

from __future__ import annotations

from tests.bench.test_bench_smoke import _cells, _run

MESSAGES = 50
ROWS = [
    # (drill, provider), in the order the drills run: where the provider never created a
    # message it did not report, and one where it did (a timeout).
    ("kill-service", "twilio"),  # its earlier send looked up once it cannot be on its way
    ("kill-service", "acs"),
    ("429", "twilio"),
    ("timeout", "twilio"),  # created although the answer timed out: found before the retry
    ("drop-before", "twilio"),
    ("callbacks", "twilio"),
    ("down", "acs"),
    ("callbacks-lost", "twilio"),  # Twilio posts each report once: found by asking it
]
# Rows outside the target (the provider created a message it did not report): still counted.
OUTSIDE_TARGET = {("timeout", "twilio")}


def test_drills_lose_nothing_and_send_nothing_twice() -> None:
    only = ",".join(f"{drill}:{provider}" for drill, provider in ROWS)
    args = ["bench.drills", "--messages", str(MESSAGES), "--only", only]
    args += ["--down", "2", "--slow", "1", "--lease", "3", "--providers", "twilio,acs"]
    result = _run(args, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rows = _cells(result.stdout)
    assert [row[1] for row in rows] == [provider for _drill, provider in ROWS], output
    for row, key in zip(rows, ROWS, strict=True):
        messages, final, _not_final, lost, duplicated, calls = row[3:9]
        assert messages == str(MESSAGES), row
        assert lost == "0", row
        assert final == f"{MESSAGES} (0)", row  # every message delivered
        assert int(calls) >= MESSAGES, row
        assert duplicated == "0", row
        if key not in OUTSIDE_TARGET:
            assert row[10] == "met", row
