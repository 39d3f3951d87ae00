"""Liveness and readiness probes."""

from __future__ import annotations

import time

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from outbound.adapters.db.migrate import current_revision, head_revision
from outbound.adapters.metrics import CONTENT_TYPE, Metrics
from outbound.web.deps import container
from outbound.web.errors import error_body

__all__ = ["install_metrics", "router"]

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """The database is reachable and its schema is current."""
    engine = container(request).db.engine
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        current = current_revision(engine)
    except sa.exc.SQLAlchemyError as exc:
        return JSONResponse(
            error_body("database_unreachable", f"database unreachable: {type(exc).__name__}"),
            status_code=503,
        )
    head = head_revision()
    if current != head:
        return JSONResponse(
            error_body(
                "migrations_pending",
                f"database schema at {current}, expected {head}; run `outbound migrate`",
            ),
            status_code=503,
        )
    return JSONResponse({"status": "ready", "schema": current})


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process, and outbox figures from the database."""
    body = await run_in_threadpool(container(request).metrics.render)
    return Response(content=body, media_type=CONTENT_TYPE)


class _TimingMiddleware:
    """Pure ASGI middleware (Starlette's function middleware costs a task per request)."""

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
