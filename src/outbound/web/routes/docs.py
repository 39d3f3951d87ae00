"""The API documentation pages (``/docs``, ``/redoc``), each with a content policy of its own.

They are FastAPI's pages, served here rather than by FastAPI so that each carries a
``Content-Security-Policy`` that lets it work and nothing more: its scripts from the CDN that
FastAPI loads them from, its one inline script by hash (computed from the page this module
generates, never from anything a request brings), styles inline as the renderers insert them,
and requests to this service only.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

__all__ = ["REDOC_URL", "SWAGGER_URL", "content_policy", "router"]

SWAGGER_URL = "/docs"
REDOC_URL = "/redoc"
CDN = "https://cdn.jsdelivr.net"
FAVICON_HOST = "https://fastapi.tiangolo.com"

router = APIRouter(include_in_schema=False)

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def content_policy(html: str, **sources: str) -> str:
    """A policy for ``html``: its own origin, ``sources`` per directive, its inline scripts.

    ``content_policy(page, style_src="'unsafe-inline'")`` →
    ``default-src 'self'; script-src 'self' 'sha256-…'; style-src 'self' 'unsafe-inline'; …``
    """
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    ]
    directives: dict[str, list[str]] = {"default-src": ["'self'"], "script-src": ["'self'"]}
    for name, value in sources.items():
        directives.setdefault(name.replace("_", "-"), ["'self'"]).append(value)
    directives["script-src"].extend(hashes)
    directives.update(
        {"base-uri": ["'none'"], "form-action": ["'self'"], "frame-ancestors": ["'none'"]}
    )
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def _page(html: str, **sources: str) -> HTMLResponse:
    return HTMLResponse(html, headers={"Content-Security-Policy": content_policy(html, **sources)})


def _openapi_url(request: Request) -> str:
    root_path = str(request.scope.get("root_path", "")).rstrip("/")
    return root_path + str(request.app.openapi_url)


@router.get(SWAGGER_URL)
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI: try the API from the browser."""
    page = get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - Swagger UI",
        swagger_ui_parameters=request.app.swagger_ui_parameters,
    )
    return _page(
        bytes(page.body).decode(),
        script_src=CDN,
        style_src=f"{CDN} 'unsafe-inline'",
        img_src=f"data: {FAVICON_HOST}",
    )


@router.get(REDOC_URL)
def redoc(request: Request) -> HTMLResponse:
    """ReDoc: the API reference."""
    page = get_redoc_html(openapi_url=_openapi_url(request), title=f"{request.app.title} - ReDoc")
    return _page(
        bytes(page.body).decode(),
        script_src=CDN,
        style_src="'unsafe-inline' https://fonts.googleapis.com",
        font_src="https://fonts.gstatic.com",
        img_src=f"data: {FAVICON_HOST} https://cdn.redoc.ly",
        worker_src="blob:",
    )
