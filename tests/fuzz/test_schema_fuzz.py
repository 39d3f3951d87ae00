"""Schemathesis against ``outbound serve``: every operation of /openapi.json, every check.

A fixed seed and a small budget keep this run part of ``make test``; ``make fuzz`` runs the
same with more examples (``OUTBOUND_FUZZ_EXAMPLES``). It ends at 0 failures: an answer the
description does not declare, a 5xx, a schema-valid request refused where the schema could have
said so, an ``Allow`` header that misses a method, and so on.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from outbound.adapters.db.engine import Database, create_engine
from outbound.adapters.db.migrate import upgrade
from outbound.clock import SystemClock
from outbound.domain.roles import Role
from outbound.services.auth import create_api_key, create_organization
from tests.helpers import SECRET

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("OUTBOUND_FUZZ_EXAMPLES", "5"))
SEED = os.environ.get("OUTBOUND_FUZZ_SEED", "1")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _schemathesis() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")
    if found is None:
        pytest.skip(
            "schemathesis is not installed (it is in the dev extras: make test installs it)"
        )
    return found


def test_the_description_says_what_the_server_does(database_url: str, tmp_path: Path) -> None:
    st = _schemathesis()
    db = Database(create_engine(database_url))
    upgrade(db.engine)
    org = create_organization(db, SystemClock(), "Fuzz")
    _key, secret = create_api_key(db, SystemClock(), org.id, Role.ADMIN)
    db.dispose()

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")}
    env.update(
        OUTBOUND_DATA_DIR=str(tmp_path),
        OUTBOUND_DATABASE_URL=database_url,
        OUTBOUND_SECRET_KEY=SECRET,
        OUTBOUND_PORT=str(port),
        OUTBOUND_WORKER_ENABLED="false",
        # Requests without a key on purpose, thousands of them: each must get its 401.
        OUTBOUND_AUTH_FAILURE_LIMIT="1000000",
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "outbound", "serve"], env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=5).close()
                break
            except OSError:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "outbound serve did not answer in 60 s"
                time.sleep(0.2)
        run = subprocess.run(
            [
                st,
                "--config-file",
                str(CONFIG),
                "run",
                f"{base}/openapi.json",
                "--checks",
                "all",
                "--seed",
                SEED,
                "--max-examples",
                str(EXAMPLES),
                "--header",
                f"Authorization: Bearer {secret}",
                # One worker: Python 3.11's ast.parse is not safe across threads (CPython
                # gh-106905), and Hypothesis parses a lambda's source to describe a strategy;
                # two workers now and then end in "AST constructor recursion depth mismatch".
                "--workers",
                "1",
                "--no-color",
            ],
            env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
            cwd=tmp_path,  # its cache of past failures stays out of the checkout
            capture_output=True,
            text=True,
            timeout=1800,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
