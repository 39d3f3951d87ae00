"""``outbound serve`` as an operator runs it: what its access log and its answers reveal."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import SECRET

TOKEN = "s3cret-webhook-token"
NUMBER = "33612345678"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    """A running ``outbound serve`` and the files its output goes to."""

    base: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def get(self, target: str, method: str = "GET") -> tuple[int, dict[str, str]]:
        request = urllib.request.Request(self.base + target, method=method, data=None)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers)

    def logs(self, until: str = "", timeout: float = 10) -> str:
        """What it has logged so far, once ``until`` is in it (each line is flushed)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.stdout.read_text() + self.stderr.read_text()
            if until in text or time.monotonic() > deadline:
                return text
            time.sleep(0.05)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("serve")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")}
    env.update(
        OUTBOUND_DATA_DIR=str(directory),
        OUTBOUND_SECRET_KEY=SECRET,
        OUTBOUND_PORT=str(port),
        OUTBOUND_WORKER_ENABLED="false",
    )
    stdout, stderr = directory / "stdout.log", directory / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "outbound", "serve"], env=env, stdout=out, stderr=err
        )
    served = Served(f"http://127.0.0.1:{port}", process, stdout, stderr)
    deadline = time.monotonic() + 60
    while True:
        try:
            served.get("/healthz")
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("outbound serve did not start:\n" + served.logs(timeout=0))
            time.sleep(0.1)
    yield served
    process.terminate()
    process.wait(timeout=30)


def test_the_access_log_shows_no_webhook_token_nor_number(served: Served) -> None:
    served.get(f"/webhooks/no-such-channel?token={TOKEN}", method="POST")
    served.get(f"/v1/messages?to=%2B{NUMBER}&limit=5")
    served.get(f"/v1/messages?to=+{NUMBER}&done")
    logs = served.logs(until="&done")
    assert "/webhooks/no-such-channel?token=***" in logs
    assert "/v1/messages?to=+33*******78&limit=5" in logs
    assert TOKEN not in logs
    assert NUMBER not in logs


def test_no_server_banner(served: Served) -> None:
    status, headers = served.get("/healthz")
    assert status == 200
    assert "server" not in {name.lower() for name in headers}


def test_an_idle_connection_outlives_the_callers_idle_pools(served: Served) -> None:
    """A provider's callback client keeps its idle connections (aiohttp: 15 s) and sends the
    next report on one: the server must not be closing it at that moment (uvicorn's own
    keep-alive is 5 s), or the report is lost -- providers do not retry status callbacks."""
    port = int(served.base.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for pause in (0, 6):  # then idle past uvicorn's default keep-alive
            time.sleep(pause)
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            assert response.getheader("connection", "").lower() != "close"
        assert connection.sock is not None  # one connection, never reopened
    finally:
        connection.close()
