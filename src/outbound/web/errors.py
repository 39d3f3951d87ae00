"""One JSON error shape everywhere: ``{"error": {"code", "message", "field", ...}}``."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from outbound.domain.texts import storable
from outbound.errors import (
    AuthenticationError,
    FlowDefinitionError,
    RateLimitedError,
    RequestError,
    WebhookSignatureError,
)
from outbound.web.openapi import allowed_methods
from outbound.web.security import NO_STORE, SECURITY_HEADERS

__all__ = [
    "AUTHENTICATE_CHALLENGE",
    "error_body",
    "error_response",
    "field_path",
    "install_error_handlers",
]

log = logging.getLogger(__name__)

AUTHENTICATE_CHALLENGE = 'Bearer realm="outbound"'
"""The ``WWW-Authenticate`` header of every 401: the API takes bearer API keys."""

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


class SafeJSONResponse(JSONResponse):
    """A JSON answer that cannot fail on a value: what UTF-8 or JSON cannot hold (half of a
    surrogate pair quoted back from a refused field, a value stored before such input was
    refused, a NaN) is rendered as :func:`~outbound.domain.texts.storable` makes it, instead
    of turning the whole answer into a 500. The default response class of the API."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except (UnicodeEncodeError, ValueError):
            return json.dumps(
                storable(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")
            ).encode("utf-8")


ErrorJSONResponse = SafeJSONResponse


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    """The body of every error answer: ``{"error": {"code", "message", "field", ...}}``."""
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


def error_response(exc: Exception) -> JSONResponse:
    """The HTTP answer for an exception, in the one JSON error shape.

    The application's exception handlers and the webhook fast path (which runs outside them)
    both answer with it. An exception it does not know is a 500 that tells nothing of it.
    """
    if isinstance(exc, RequestError):
        headers = {}
        extra = dict(exc.details)
        if isinstance(exc, AuthenticationError):
            headers["WWW-Authenticate"] = AUTHENTICATE_CHALLENGE
        if isinstance(exc, RateLimitedError):
            headers["Retry-After"] = str(exc.retry_after)
            extra["retry_after"] = exc.retry_after
        return ErrorJSONResponse(
            error_body(exc.code, exc.message, exc.field, **extra),
            status_code=exc.status_code,
            headers=headers,
        )
    if isinstance(exc, FlowDefinitionError):
        errors = [error._asdict() for error in exc.errors]
        return ErrorJSONResponse(
            error_body("invalid_flow", str(exc), exc.field, errors=errors), status_code=422
        )
    if isinstance(exc, WebhookSignatureError):
        return ErrorJSONResponse(error_body("invalid_signature", str(exc)), status_code=403)
    if isinstance(exc, RequestValidationError):
        return _validation_response(exc)
    if isinstance(exc, StarletteHTTPException) and exc.status_code == 400:
        # FastAPI's answer to a body it could not decode (not UTF-8, say): a field error.
        return ErrorJSONResponse(
            error_body("invalid_request", "the body is not valid JSON in UTF-8", "body"),
            status_code=422,
        )
    if isinstance(exc, StarletteHTTPException):
        return ErrorJSONResponse(
            error_body(_HTTP_CODES.get(exc.status_code, "error"), str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
    return ErrorJSONResponse(
        error_body("internal_error", "internal error; the request was not completed"),
        status_code=500,
    )


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    problems = [
        {"field": _error_field(e), "message": str(e.get("msg", "invalid"))} for e in exc.errors()
    ]
    first = problems[0] if problems else {"field": None, "message": "invalid request"}
    message = f"{first['field']}: {first['message']}" if first["field"] else str(first["message"])
    return ErrorJSONResponse(
        error_body("invalid_request", message, first["field"], errors=problems),
        status_code=422,
    )


# Errors with an answer of their own; any other exception is logged, then answered with a 500.
_MAPPED: tuple[type[Exception], ...] = (
    RequestError,
    FlowDefinitionError,
    WebhookSignatureError,
    RequestValidationError,
    StarletteHTTPException,
)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error raised by a route with :func:`error_response`."""

    async def _mapped(request: Request, exc: Exception) -> JSONResponse:
        response = error_response(exc)
        if response.status_code == 405:
            # Starlette names the methods of the first route at this path only.
            allow = allowed_methods(request.app, request.url.path)
            response.headers["Allow"] = ", ".join(allow)
        return response

    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        response = error_response(exc)
        # Sent from outside every middleware (Starlette's ServerErrorMiddleware): add here what
        # web/security.py adds to every other answer.
        response.raw_headers.extend([*SECURITY_HEADERS, NO_STORE])
        return response

    for kind in _MAPPED:
        app.add_exception_handler(kind, _mapped)
    app.add_exception_handler(Exception, _unexpected)
