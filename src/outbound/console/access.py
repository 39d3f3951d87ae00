"""Who is looking at a console page, and what every console request goes through.

Every console route is a :class:`ConsoleRoute` (the routers of :mod:`outbound.console.routes`
are made by :func:`console_router`). Before the route runs it reads the session cookie and
chooses the language; a state-changing request (``POST``, ``PUT``, ``PATCH``, ``DELETE``)
without the session's CSRF token is refused with a 403 page. After it, the cookie is written
when the session changed, and the page is marked ``no-store`` (it shows an organisation's
data). Errors become pages: no session is a redirect to the sign-in page (``HX-Redirect`` for
htmx), a role that may not is a 403 page, an unknown object a 404 page.

A route asks for its viewer with ``who: Viewer = viewer_of(UserRole.ADMIN)``: the signed-in
user, checked to have one of the roles (none given: any role). The role decides both what
the menu shows (:mod:`outbound.console.nav`) and what the server accepts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from outbound.console.i18n import Translator, choose_locale
from outbound.console.session import (
    COOKIE_NAME,
    CSRF_FIELD,
    CSRF_HEADER,
    SessionCodec,
    SessionData,
)
from outbound.domain.roles import Role
from outbound.domain.users import UserRole
from outbound.errors import NotFoundError, PermissionDeniedError, RateLimitedError
from outbound.schemas import UserOut
from outbound.services.auth import Principal
from outbound.texts import N_

if TYPE_CHECKING:
    from outbound.app import Container

__all__ = [
    "ConsoleRoute",
    "ConsoleState",
    "LoginRequiredError",
    "Viewer",
    "console_router",
    "home_for",
    "load_viewer",
    "state_of",
    "still_signed_in",
    "viewer_of",
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CONSOLE_KEY_ID = "console"
"""The ``key_id`` of a console user's :class:`Principal` (they use no API key)."""


class LoginRequiredError(Exception):
    """The page needs a signed-in user."""


class CsrfRefusedError(Exception):
    """A state-changing request came without the session's CSRF token."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in user a page is for."""

    user: UserOut
    org_id: str

    @property
    def role(self) -> UserRole:
        return self.user.role

    @property
    def principal(self) -> Principal:
        """The user as the services know callers (what an API key of theirs would be)."""
        return Principal(
            org_id=self.org_id,
            key_id=CONSOLE_KEY_ID,
            role=Role(self.user.role.value),
            user_id=self.user.id,
        )

    def may(self, *roles: UserRole) -> bool:
        return not roles or self.role in roles


@dataclass
class ConsoleState:
    """What a console request carries from its start to its answer."""

    session: SessionData
    codec: SessionCodec
    t: Translator
    viewer: Viewer | None = None
    new_session: SessionData | None = field(default=None)

    @property
    def csrf_token(self) -> str:
        return self.codec.csrf_token((self.new_session or self.session).sid)

    def start_session(self, data: SessionData) -> None:
        """Replace the session (signing in or out); the cookie is written with the answer."""
        self.new_session = data


def _container(request: Request) -> Container:
    result: Container = request.app.state.container
    return result


def _codec(request: Request) -> SessionCodec:
    codec: SessionCodec = request.app.state.console_sessions
    return codec


def state_of(request: Request) -> ConsoleState:
    """The console state of a request (set by :class:`ConsoleRoute`)."""
    state: ConsoleState = request.state.console
    return state


def home_for(role: UserRole) -> str:
    """Where a user lands after signing in."""
    return "/workspace" if role is UserRole.AGENT else "/dashboard"


def load_viewer(request: Request, state: ConsoleState) -> Viewer:
    """The signed-in user of the session, read again (in a worker thread: it queries)."""
    session = state.session
    if session.user_id is None or session.org_id is None:
        raise LoginRequiredError
    try:
        user = _container(request).users.get(session.org_id, session.user_id)
    except NotFoundError:
        raise LoginRequiredError from None
    if not user.active:
        raise LoginRequiredError
    if not _container(request).console_sessions.alive(session.sid, user.id):
        raise LoginRequiredError  # signed out, from here or elsewhere
    viewer = Viewer(user=user, org_id=session.org_id)
    state.viewer = viewer
    language, formats = choose_locale(user.ui_language, request.headers.get("accept-language"))
    state.t = Translator(language, user.time_zone, formats)
    return viewer


def still_signed_in(request: Request, state: ConsoleState) -> bool:
    """Whether the session of a long request (the live stream) is still signed in as when the
    request began: not ended, not expired, its user active (it queries: call it in a thread)."""
    session = state.session
    if session.issued_at and time.time() - session.issued_at >= state.codec.max_age:
        return False
    try:
        viewer = load_viewer(request, state)
    except LoginRequiredError:
        return False
    return viewer.user.id == session.user_id


def viewer_of(*roles: UserRole) -> Any:
    """A dependency: the signed-in user, who must have one of ``roles`` (any, if none).

    ``who: Viewer = viewer_of(UserRole.ADMIN)``.
    """

    async def dependency(request: Request) -> Viewer:
        state = state_of(request)
        viewer = await run_in_threadpool(load_viewer, request, state)
        if not viewer.may(*roles):
            raise PermissionDeniedError(N_("your role may not open this page"))
        return viewer

    return Depends(dependency)


def _secure(request: Request) -> bool:
    settings = _container(request).settings
    if request.url.scheme == "https":
        return True
    if settings.trust_forwarded_headers:
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
        if proto == "https":
            return True
    return bool(settings.public_base_url and settings.public_base_url.startswith("https://"))


def _language(request: Request) -> tuple[str, None, str]:
    language, formats = choose_locale(None, request.headers.get("accept-language"))
    return language, None, formats


def _begin(request: Request) -> ConsoleState:
    codec = _codec(request)
    session = codec.loads(request.cookies.get(COOKIE_NAME))
    state = ConsoleState(
        session=session or SessionData.anonymous(),
        codec=codec,
        t=Translator(*_language(request)),
    )
    if session is None:
        state.new_session = state.session
    request.state.console = state
    return state


async def _check_csrf(request: Request, state: ConsoleState) -> None:
    token = request.headers.get(CSRF_HEADER)
    if token is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            token = value if isinstance(value, str) else None
    if not state.codec.check_csrf(state.session.sid, token):
        raise CsrfRefusedError


def _finish(request: Request, state: ConsoleState, response: Response) -> Response:
    if state.new_session is not None:
        response.set_cookie(
            COOKIE_NAME,
            state.codec.dumps(state.new_session),
            max_age=state.codec.max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=_secure(request),
        )
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["Vary"] = "Cookie, Accept-Language"
    return response


def _login_redirect(request: Request) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    location = "/login" + ("" if target == "/" else "?next=" + quote(target, safe=""))
    if request.headers.get("hx-request"):
        return Response(status_code=200, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def _error_page(request: Request, status: int, message: str) -> Response:
    from outbound.console.rendering import render  # rendering imports this module

    response = render(request, "error.html", {"status": status, "message": message}, status=status)
    return response


class ConsoleRoute(APIRoute):
    """A console route: session, language and CSRF before it, cookie and error pages after."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            state = _begin(request)
            t = state.t
            try:
                if request.method not in SAFE_METHODS:
                    await _check_csrf(request, state)
                response = await handler(request)
            except LoginRequiredError:
                response = _login_redirect(request)
            except CsrfRefusedError:
                response = _error_page(
                    request,
                    403,
                    t.gettext(
                        "This form has expired or did not come from the console. "
                        "Reload the page and try again."
                    ),
                )
            except PermissionDeniedError:
                response = _error_page(
                    request, 403, state.t.gettext("Your role does not give access to this page.")
                )
            except NotFoundError:
                response = _error_page(
                    request, 404, state.t.gettext("This page or object does not exist.")
                )
            except RateLimitedError as exc:
                response = _error_page(
                    request,
                    429,
                    state.t.gettext(
                        "Too many attempts. Try again in %(seconds)s seconds.",
                        seconds=exc.retry_after,
                    ),
                )
                response.headers["Retry-After"] = str(exc.retry_after)
            except RequestValidationError:
                response = _error_page(
                    request,
                    400,
                    state.t.gettext("The form was incomplete or malformed. Go back and try again."),
                )
            return _finish(request, state, response)

        return route


def console_router() -> APIRouter:
    """A router for console pages: every route a :class:`ConsoleRoute`, none in the OpenAPI."""
    return APIRouter(route_class=ConsoleRoute, include_in_schema=False)
