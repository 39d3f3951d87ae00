"""Reading the service's metrics as a scraper does."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

__all__ = ["scrape_metrics"]


def scrape_metrics(client: TestClient) -> Any:
    """GET /metrics as a scraper on this machine does (the test client's address is no IP)."""
    return TestClient(client.app, client=("127.0.0.1", 50000)).get("/metrics")
