"""Liveness and readiness probes, and the Prometheus metrics endpoint."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from outbound.adapters.db.migrate import current_revision, head_revision
from outbound.adapters.metrics import CONTENT_TYPE
from outbound.web.deps import container
from outbound.web.errors import error_body

__all__ = ["router"]

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
