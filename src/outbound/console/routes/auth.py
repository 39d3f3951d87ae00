"""Signing in and out, and ``/``: the sign-in page or the user's home.

A failed sign-in is answered after :data:`FAILED_SIGN_IN_DELAY_SECONDS`, and counted twice:
per address (the API's throttle of failed authentications, so guessing through the console
costs the same as through the API) and per e-mail address (:data:`ACCOUNT_FAILURE_LIMIT`
failures within :data:`ACCOUNT_LOCK_SECONDS` lock the account's sign-in for that long, from
every address). Neither says whether the address exists.
"""

from __future__ import annotations

import asyncio

from fastapi import Form, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from outbound.console.access import (
    LoginRequiredError,
    console_router,
    home_for,
    load_viewer,
    state_of,
)
from outbound.console.rendering import render
from outbound.console.session import SessionData
from outbound.errors import RateLimitedError
from outbound.web.throttle import FailureThrottle, client_address

__all__ = [
    "ACCOUNT_FAILURE_LIMIT",
    "ACCOUNT_LOCK_SECONDS",
    "FAILED_SIGN_IN_DELAY_SECONDS",
    "router",
    "sign_in_throttle",
]

FAILED_SIGN_IN_DELAY_SECONDS = 1.0
ACCOUNT_FAILURE_LIMIT = 5
ACCOUNT_LOCK_SECONDS = 15 * 60.0
MAX_EMAIL_FIELD = 320
MAX_PASSWORD_FIELD = 1024

router = console_router()


def sign_in_throttle() -> FailureThrottle:
    """The per-account count of failed sign-ins of one process."""
    return FailureThrottle(ACCOUNT_FAILURE_LIMIT, ACCOUNT_LOCK_SECONDS)


def _safe_next(value: str | None) -> str | None:
    """A local path to go back to after signing in; nothing that leaves the site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    return value


@router.get("/")
async def home(request: Request) -> Response:
    state = state_of(request)
    if state.session.user_id is None:
        return RedirectResponse("/login", status_code=303)
    try:
        viewer = await run_in_threadpool(load_viewer, request, state)
    except LoginRequiredError:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(home_for(viewer.role), status_code=303)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", {"next": _safe_next(next), "email": "", "error": None})


@router.post("/login")
async def login(
    request: Request,
    email: str = Form("", max_length=MAX_EMAIL_FIELD),
    password: str = Form("", max_length=MAX_PASSWORD_FIELD),
    next: str | None = Form(None),
) -> Response:
    state = state_of(request)
    t = state.t
    c = request.app.state.container
    address = client_address(request, trust_forwarded=c.settings.trust_forwarded_headers)
    by_address: FailureThrottle = request.app.state.auth_throttle
    by_account: FailureThrottle = request.app.state.console_sign_in_throttle
    account = email.strip().lower()
    context = {"next": _safe_next(next), "email": email}
    try:
        by_address.check(address)
        by_account.check(account)
    except RateLimitedError as exc:
        minutes = max(1, round(exc.retry_after / 60))
        error = t.ngettext(
            "Too many failed sign-ins. Try again in %(num)s minute.",
            "Too many failed sign-ins. Try again in %(num)s minutes.",
            minutes,
        )
        return render(
            request,
            "login.html",
            {**context, "error": error},
            status=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    signed = await run_in_threadpool(c.users.sign_in, email, password) if email else None
    if signed is None:
        by_address.failed(address)
        by_account.failed(account)
        await asyncio.sleep(FAILED_SIGN_IN_DELAY_SECONDS)
        error = t.gettext("The e-mail address or the password is wrong.")
        return render(request, "login.html", {**context, "error": error}, status=400)
    org_id, user = signed
    started = SessionData.signed_in(user.id, org_id)
    await run_in_threadpool(
        c.console_sessions.start, org_id, user.id, started.sid, request.headers.get("user-agent")
    )
    state.start_session(started)
    return RedirectResponse(_safe_next(next) or home_for(user.role), status_code=303)


@router.post("/logout")
def logout(request: Request) -> Response:
    """Sign out: the session ends everywhere (a copy of its cookie is worth nothing)."""
    state = state_of(request)
    if state.session.user_id is not None:
        request.app.state.container.console_sessions.end(state.session.sid)
    state.start_session(SessionData.anonymous())
    return RedirectResponse("/login", status_code=303)
