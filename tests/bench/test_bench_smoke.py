"""The benchmarks run (small sizes, no timing assertions): ``python -m bench.flows``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_flow_benchmark_runs_and_prints_its_table() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")}
    result = subprocess.run(
        [sys.executable, "-m", "bench.flows", "--contacts", "150,300"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**env, "COLUMNS": "200"},
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "peak MiB" in result.stdout, output
    assert "2x the contacts" in result.stdout, output
    # 300 contacts, one in ten without consent: 270 queued, 30 skipped, in 3 batches.
    cells = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in result.stdout.splitlines()
        if line.startswith("│")
    ]
    assert [row[1] for row in cells] == ["150", "300"], output
    assert cells[1][5:8] == ["270", "30", "3"], output
