"""``outbound demo`` runs end to end as a user would start it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("provider", ["sandbox", "twilio"])
def test_demo_runs_end_to_end(provider: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")}
    result = subprocess.run(
        [sys.executable, "-m", "outbound", "demo", "--provider", provider],
        capture_output=True,
        text=True,
        timeout=180,
        env={**env, "COLUMNS": "200"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo complete" in result.stdout
    assert "delivered" in result.stdout
    assert "opted_out" in result.stdout
    assert "invalid_number" in result.stdout
    # The sample flows: case-created on each new case, case-resolved run by hand.
    assert "case-created" in result.stdout
    assert "case-resolved" in result.stdout
    assert f"(provider {provider})" in result.stdout
    # Provider ids: the sandbox's start with SBX, Twilio's message SIDs with SM.
    assert ("SBX" if provider == "sandbox" else "SM") in result.stdout
    # The console's address and a login to it.
    assert "console: http://127.0.0.1:" in result.stdout
    assert "admin@example.com" in result.stdout and "demo-password-1" in result.stdout
