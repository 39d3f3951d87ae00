"""Liveness and readiness probes, and the Prometheus metrics endpoint (see :func:`_check_scraper`
for who may read it)."""

from __future__ import annotations

import hmac

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from outbound.adapters.db.migrate import current_revision, head_revision
from outbound.adapters.metrics import CONTENT_TYPE
from outbound.config import Settings
from outbound.errors import AuthenticationError, PermissionDeniedError
from outbound.texts import N_
from outbound.web.deps import auth_throttle, container
from outbound.web.errors import error_body
from outbound.web.throttle import client_address, is_local_request

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


def _check_scraper(request: Request, settings: Settings) -> None:
    """Metrics go to whoever holds ``OUTBOUND_METRICS_TOKEN``, or, without one, to this machine.

    They name channels and organisations and tell how much each sends: not for everyone who
    can reach the API.
    """
    token = settings.metrics_token
    if not token:
        if not is_local_request(request):
            raise PermissionDeniedError(
                N_(
                    "/metrics answers only this machine; set OUTBOUND_METRICS_TOKEN to scrape it "
                    "from elsewhere"
                )
            )
        return

    def authenticate() -> None:
        scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            raise AuthenticationError(N_("/metrics needs 'Authorization: Bearer <metrics token>'"))

    address = client_address(request, trust_forwarded=settings.trust_forwarded_headers)
    auth_throttle(request).attempt(address, authenticate)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process, and outbox figures from the database."""
    _check_scraper(request, container(request).settings)
    body = await run_in_threadpool(container(request).metrics.render)
    return Response(content=body, media_type=CONTENT_TYPE)
