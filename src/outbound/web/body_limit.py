"""The size of JSON request bodies: refused with 413 past a limit, before any route reads them.

A pure ASGI middleware: the body is read here, at most ``max_bytes`` of it, and handed on to
the application as it came; past the limit (by ``Content-Length`` or by what arrives) the answer
is ``413 payload_too_large`` in the JSON error shape, and nothing reaches a route. Only JSON
bodies (and bodies without a ``Content-Type``, which the framework reads as JSON) are limited:
CSV uploads stream to their importers, which read them piece by piece.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from outbound.errors import PayloadTooLargeError
from outbound.texts import N_
from outbound.web.errors import error_response

__all__ = ["JsonBodyLimit", "install_body_limit", "is_json_media_type"]

_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_json_media_type(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` is JSON (``application/json``, ``application/*+json``)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class JsonBodyLimit:
    """Refuses JSON bodies larger than ``max_bytes`` with 413 (see the module docstring)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY:
            await self._app(scope, receive, send)
            return
        content_type: str | None = None
        length: str | None = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"content-length":
                length = value.decode("latin-1")
        if content_type is not None and not is_json_media_type(content_type):
            await self._app(scope, receive, send)
            return
        if length is not None and length.strip().isdigit() and int(length) > self._max:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away: let the application see it.
                await self._app(scope, _replay(chunks, message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self._app(scope, _replay(chunks, None, receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            PayloadTooLargeError(
                N_("the request body is larger than %(limit)s bytes", limit=self._max), field="body"
            )
        )
        await response(scope, receive, send)


def _replay(chunks: list[bytes], last: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that gives the body read here as one message (or ``last``, a disconnect
    that came instead), then goes on with the real one."""
    first: Message = last or {"type": "http.request", "body": b"".join(chunks), "more_body": False}
    pending = [first]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay


def install_body_limit(app: FastAPI, max_bytes: int) -> None:
    """Limit the JSON bodies the application reads to ``max_bytes``."""
    app.add_middleware(JsonBodyLimit, max_bytes=max_bytes)
