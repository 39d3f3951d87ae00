"""The console's screens: one module per screen, each with a ``router`` (see ``docs/console.md``).

:data:`ROUTERS` lists them in the order they are mounted; a new screen adds its module here
and its menu entry in :mod:`outbound.console.nav`.
"""

from __future__ import annotations

from fastapi import APIRouter

from outbound.console.routes import (
    account,
    auth,
    channels,
    configurations,
    contacts,
    dashboard,
    flows,
    messages,
    reports,
    routing,
    settings,
    supervision,
    templates,
    users,
    workspace,
)

__all__ = ["ROUTERS"]

ROUTERS: list[APIRouter] = [
    auth.router,
    account.router,
    dashboard.router,
    messages.router,
    reports.router,
    templates.router,
    channels.router,
    configurations.router,
    users.router,
    settings.router,
    routing.router,
    flows.router,
    contacts.router,
    workspace.router,
    supervision.router,
]
