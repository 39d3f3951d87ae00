"""The worker's metrics port: guarded as the API's /metrics is, with no Server banner."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from outbound.adapters.metrics import _guarded, serve_metrics


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("outbound_example_total", "An example", registry=registry).inc()
    return registry


def _get(port: int, token: str | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read().decode()


@pytest.fixture
def served(registry: CollectorRegistry) -> Iterator[Any]:
    servers = []

    def serve(token: str | None) -> int:
        port = _free_port()
        servers.append(serve_metrics(port, "127.0.0.1", registry, token=token))
        return port

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_with_a_token_the_port_needs_it(served: Any) -> None:
    port = served("metrics-" + "x" * 24)
    status, headers, _ = _get(port)
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
    assert _get(port, "wrong")[0] == 401
    status, headers, body = _get(port, "metrics-" + "x" * 24)
    assert status == 200 and "outbound_example_total 1.0" in body
    assert "Server" not in headers


def test_without_a_token_only_this_machine_reads_it(served: Any) -> None:
    status, headers, body = _get(served(None))
    assert status == 200 and "outbound_example_total" in body
    assert "Server" not in headers

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"metrics"]

    seen: list[str] = []
    guarded = _guarded(app, None)
    for address in (
        "203.0.113.9",
        "::ffff:198.51.100.1",
        "",
        "127.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
    ):
        guarded({"REMOTE_ADDR": address}, lambda status, headers, seen=seen: seen.append(status))
    assert seen == ["403 Forbidden"] * 3 + ["200 OK"] * 3
