"""How the ``outbound`` command serves the application with uvicorn.

One place, so that ``outbound serve`` and ``outbound demo`` serve it alike: no ``Server``
banner (it tells an attacker which versions to try); the client address as the connection
gives it (the application reads forwarded headers only where it is told to trust them); an
access log that shows neither webhook tokens nor phone numbers
(:class:`~outbound.web.access_log.AccessLogRedactor`); and idle connections kept open 75 s
(``OUTBOUND_HTTP_KEEP_ALIVE_SECONDS``), not uvicorn's 5 s: a client that keeps its idle
connections longer (a provider's callback client, a proxy) would otherwise send on a
connection the server is closing, and lose that request.
"""

from __future__ import annotations

import copy
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from outbound.config import DEFAULT_HTTP_KEEP_ALIVE_SECONDS
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


def server_config(
    app: Any,
    *,
    host: str,
    port: int,
    log_level: str,
    keep_alive: int = DEFAULT_HTTP_KEEP_ALIVE_SECONDS,
) -> uvicorn.Config:
    """The uvicorn configuration every process of the service is served with."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        log_config=log_config(),
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=keep_alive,
    )
