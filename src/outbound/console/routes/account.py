"""The signed-in user's own page: their live console sessions, and signing the others out."""

from __future__ import annotations

from fastapi import Form, Request, Response
from fastapi.responses import RedirectResponse

from outbound.console.access import Viewer, console_router, state_of, viewer_of
from outbound.console.rendering import render
from outbound.services.console_sessions import session_key

__all__ = ["describe_browser", "router"]

router = console_router()

_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"))
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def describe_browser(user_agent: str | None) -> str | None:
    """ "Firefox on Windows" from a User-Agent header, or None when it says nothing known."""
    if not user_agent:
        return None
    browser = next((name for mark, name in _BROWSERS if mark in user_agent), None)
    if browser is None and "Safari/" in user_agent:
        browser = "Safari"
    system = next((name for mark, name in _SYSTEMS if mark in user_agent), None)
    if browser and system:
        return f"{browser} · {system}"
    return browser or system


@router.get("/account")
def account(request: Request, ended: int | None = None, who: Viewer = viewer_of()) -> Response:
    c = request.app.state.container
    sessions = c.console_sessions.list(who.user.id)
    return render(
        request,
        "account.html",
        {
            "sessions": [(describe_browser(s.user_agent), s) for s in sessions],
            "current": session_key(state_of(request).session.sid),
            "ended": ended,
        },
    )


@router.post("/account/sessions/end")
def end_session(
    request: Request, key: str = Form(..., max_length=64), who: Viewer = viewer_of()
) -> Response:
    """Sign out one of the user's other sessions (their own is signed out with "Sign out")."""
    c = request.app.state.container
    ended = 0
    if key != session_key(state_of(request).session.sid):
        ended = int(c.console_sessions.end_one(who.user.id, key))
    return RedirectResponse(f"/account?ended={ended}", status_code=303)


@router.post("/account/sessions/end-others")
def end_other_sessions(request: Request, who: Viewer = viewer_of()) -> Response:
    c = request.app.state.container
    ended = c.console_sessions.end_others(who.user.id, state_of(request).session.sid)
    return RedirectResponse(f"/account?ended={ended}", status_code=303)
