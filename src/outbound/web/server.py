"""How the ``outbound`` command serves the application with uvicorn.

One place, so that ``outbound serve`` and ``outbound demo`` serve it alike: no ``Server``
banner (it tells an attacker which versions to try); the client address as the connection
gives it (the application reads forwarded headers only where it is told to trust them); and an
access log that shows neither webhook tokens nor phone numbers
(:class:`~outbound.web.access_log.AccessLogRedactor`).
"""

from __future__ import annotations

import copy
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from outbound.web.access_log import AccessLogRedactor

__all__ = ["log_config", "server_config"]


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration, with the redacting filter on its access log."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {
        "()": f"{AccessLogRedactor.__module__}.{AccessLogRedactor.__qualname__}"
    }
    config["loggers"]["uvicorn.access"]["filters"] = ["redact"]
    return config


def server_config(app: Any, *, host: str, port: int, log_level: str) -> uvicorn.Config:
    """The uvicorn configuration every process of the service is served with."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        log_config=log_config(),
        proxy_headers=False,
        server_header=False,
    )
