"""The API documentation page (``/docs``, Swagger UI), with a content policy of its own.

``/redoc`` sends browsers there: the ReDoc bundles (2.x and 3.x) fail to render this service's
OpenAPI 3.1 description (its ``$defs`` references), so they are not shipped.

It is FastAPI's page, served here rather than by FastAPI so that it loads its scripts
and styles from the files vendored with the console (``/static/vendor``, see its
``VENDOR.md``: nothing comes from the internet, so it works on an isolated network) and
carries a ``Content-Security-Policy`` that lets it work and nothing more: scripts from this
service only, its one inline script by hash (computed from the page this module generates,
never from anything a request brings), styles inline as the renderers insert them, and
requests to this service only. Swagger UI's "Authorize" button takes an API key: the
OpenAPI description declares the bearer scheme (``web/deps.py``).
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse

__all__ = ["REDOC_URL", "SWAGGER_URL", "VENDOR", "content_policy", "router"]

SWAGGER_URL = "/docs"
REDOC_URL = "/redoc"
VENDOR = "/static/vendor"
SWAGGER_JS = f"{VENDOR}/swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS = f"{VENDOR}/swagger-ui/swagger-ui.css"
FAVICON = "/static/favicon.svg"

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
        swagger_js_url=SWAGGER_JS,
        swagger_css_url=SWAGGER_CSS,
        swagger_favicon_url=FAVICON,
        swagger_ui_parameters={
            "persistAuthorization": False,
            **(request.app.swagger_ui_parameters or {}),
        },
    )
    return _page(bytes(page.body).decode(), style_src="'unsafe-inline'", img_src="data:")


@router.get(REDOC_URL)
def redoc() -> RedirectResponse:
    """The API reference is Swagger UI's page."""
    return RedirectResponse(SWAGGER_URL, status_code=308)
