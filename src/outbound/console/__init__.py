"""The web console: server-rendered pages for the people who run the service.

Served by the same application as the API, under ``/`` (the API stays under ``/v1``). Pages
are Jinja2 templates rendered on the server and made live with htmx; the few front-end files
are vendored in ``static/vendor`` (see its ``VENDOR.md``), nothing is loaded from elsewhere.
Screens call the same services as the API.

- :mod:`~outbound.console.access`: the session, CSRF, roles and error pages of every request
- :mod:`~outbound.console.session`: the signed session cookie and CSRF tokens
- :mod:`~outbound.console.i18n`: English and French catalogs, dates in the user's zone
- :mod:`~outbound.console.rendering`: the templates' environment and :func:`render`
- :mod:`~outbound.console.nav`: the menu, per role
- :mod:`~outbound.console.routes`: one module per screen

``docs/console.md`` says how to add a screen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from outbound.console.routes import ROUTERS
from outbound.console.routes.auth import sign_in_throttle
from outbound.console.session import KEY_PURPOSE, SessionCodec

if TYPE_CHECKING:
    from outbound.app import Container

__all__ = ["STATIC_PATH", "install_console"]

STATIC_PATH = "/static"


def install_console(app: FastAPI, container: Container) -> None:
    """Mount the console's pages and static files on ``app``."""
    app.state.console_sessions = SessionCodec(container.secrets.derived_keys(KEY_PURPOSE))
    app.state.console_sign_in_throttle = sign_in_throttle()
    for router in ROUTERS:
        app.include_router(router)
    app.mount(
        STATIC_PATH,
        StaticFiles(packages=[("outbound.console", "static")]),
        name="static",
    )
