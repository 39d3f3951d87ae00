"""The dashboard: how sending went over the last days, and what needs attention now."""

from __future__ import annotations

from fastapi import Request, Response

from outbound.console.access import Viewer, console_router, viewer_of
from outbound.console.nav import MANAGERS
from outbound.console.rendering import render

__all__ = ["router"]

router = console_router()


@router.get("/dashboard")
def dashboard(request: Request, who: Viewer = viewer_of(*MANAGERS)) -> Response:
    return render(request, "dashboard.html", {})
