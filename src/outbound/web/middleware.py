"""The application's own ASGI middleware: request timing, and the webhook fast path.

Both are pure ASGI (Starlette's function middleware costs a task per request), and both sit on
the path of every provider callback, which is most of a busy service's requests.
"""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from outbound.adapters.metrics import Metrics
from outbound.services.webhooks import WEBHOOK_PATH_PREFIX
from outbound.web.errors import error_response
from outbound.web.routes.webhooks import WEBHOOK_ROUTE, handle_webhook, router
from outbound.web.security import SECURITY_HEADERS

__all__ = ["WebhookFastPath", "install_metrics", "install_webhook_fast_path"]

log = logging.getLogger(__name__)


class WebhookFastPath:
    """Provider calls go straight to :func:`handle_webhook`, past the framework's routing.

    A busy service receives two of them per message it sends (``sent``, then ``delivered``):
    they are most of its requests, and matching them against every route and resolving
    dependencies cost more than handling them. Everything else goes on to the application.
    """

    def __init__(self, app: ASGIApp, route: BaseRoute | None = None) -> None:
        self._app = app
        self._route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(WEBHOOK_PATH_PREFIX):
                channel_id = path[len(WEBHOOK_PATH_PREFIX) :]
                if channel_id and "/" not in channel_id:
                    if self._route is not None:
                        scope["route"] = self._route  # the route template labels the metrics
                    try:
                        response = await handle_webhook(channel_id, Request(scope, receive))
                    except Exception as exc:
                        log.exception("webhook for channel %s failed", channel_id)
                        response = error_response(exc)
                    response.raw_headers.extend(SECURITY_HEADERS)
                    await response(scope, receive, send)
                    return
        await self._app(scope, receive, send)


def install_webhook_fast_path(app: FastAPI) -> None:
    """Send provider calls past the routing (see :class:`WebhookFastPath`)."""
    route = next((r for r in router.routes if getattr(r, "path", None) == WEBHOOK_ROUTE), None)
    app.add_middleware(WebhookFastPath, route=route)


class _TimingMiddleware:
    """Times every HTTP request, labelled by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            if template != "/metrics":
                self._metrics.http_latency.labels(scope["method"], template, str(status)).observe(
                    time.perf_counter() - started
                )


def install_metrics(app: FastAPI, registry: Metrics) -> None:
    """Time every API request, labelled by its route template (not its raw path)."""
    app.add_middleware(_TimingMiddleware, metrics=registry)
