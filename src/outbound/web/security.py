"""Response headers that every answer of the service carries, and the pages' content policy.

- ``X-Content-Type-Options: nosniff`` on every response: a browser must not read a JSON error
  that echoes input as HTML or script.
- ``Cache-Control: no-store`` on every ``/v1`` response: several carry secrets (a new API key,
  a channel's webhook URL with its token) or customers' data, and none is worth keeping in a
  shared cache. One rule for the whole API is simpler to trust than a list of routes.
- ``Content-Security-Policy`` on HTML: :data:`DEFAULT_CSP` (the page's own origin only) unless
  the page sets a policy of its own, as the API documentation pages do
  (:mod:`outbound.web.routes.docs`).

The webhook fast path answers outside this middleware; it appends :data:`SECURITY_HEADERS`
itself (:class:`~outbound.web.middleware.WebhookFastPath`), and so does the handler of
unexpected errors, whose answer is sent from outside every middleware.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "API_PREFIX",
    "DEFAULT_CSP",
    "NO_STORE",
    "SECURITY_HEADERS",
    "SecurityHeaders",
    "install_security_headers",
]

API_PREFIX = "/v1/"

NOSNIFF = (b"x-content-type-options", b"nosniff")
NO_STORE = (b"cache-control", b"no-store")
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [NOSNIFF]
"""The headers every response carries, as raw ASGI header pairs."""

DEFAULT_CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
"""The content policy of an HTML page that sets none of its own."""

_CSP = b"content-security-policy"
_CACHE_CONTROL = b"cache-control"
_CONTENT_TYPE = b"content-type"


class SecurityHeaders:
    """Adds the headers of the module docstring to the application's responses."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        api = scope["path"].startswith(API_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), *SECURITY_HEADERS]
                names = {name.lower(): value for name, value in headers}
                if api and _CACHE_CONTROL not in names:
                    headers.append(NO_STORE)
                if _CSP not in names and names.get(_CONTENT_TYPE, b"").startswith(b"text/html"):
                    headers.append((_CSP, DEFAULT_CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, send_with_headers)


def install_security_headers(app: FastAPI) -> None:
    """Add :class:`SecurityHeaders` (before the webhook fast path, which answers outside it)."""
    app.add_middleware(SecurityHeaders)
