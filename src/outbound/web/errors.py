"""One JSON error shape everywhere: ``{"error": {"code", "message", "field", ...}}``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from outbound.errors import RateLimitedError, RequestError

__all__ = ["error_body", "field_path", "install_error_handlers"]

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
}


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, **extra}}


def field_path(loc: Sequence[int | str]) -> str | None:
    """``("body", "contacts", 0, "optin")`` → ``contacts[0].optin``."""
    parts = list(loc)
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path or None


def _error_field(error: Mapping[str, Any]) -> str | None:
    """The field a validation error names; ``body`` for a body that is unreadable or absent."""
    loc = tuple(error.get("loc", ()))
    if error.get("type") == "json_invalid":
        # FastAPI puts the character offset of the JSON fault where the field would be.
        return "body"
    path = field_path(loc)
    if path is None and loc:
        return str(loc[0])
    return path


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def _request_error(_request: Request, exc: RequestError) -> JSONResponse:
        headers = {}
        if isinstance(exc, RateLimitedError):
            headers["Retry-After"] = str(exc.retry_after)
        extra = dict(exc.details)
        if isinstance(exc, RateLimitedError):
            extra["retry_after"] = exc.retry_after
        return JSONResponse(
            error_body(exc.code, exc.message, exc.field, **extra),
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        problems = [
            {"field": _error_field(e), "message": str(e.get("msg", "invalid"))} for e in errors
        ]
        first = problems[0] if problems else {"field": None, "message": "invalid request"}
        message = (
            f"{first['field']}: {first['message']}" if first["field"] else str(first["message"])
        )
        return JSONResponse(
            error_body("invalid_request", message, first["field"], errors=problems),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return JSONResponse(
            error_body("internal_error", "internal error; the request was not completed"),
            status_code=500,
        )
