"""Users and API keys: the users with their role and state, creating one, deactivating one;
the organisation's keys, creating one (its secret shown once, on the page that answers the
form) and revoking one. The same services as ``/v1/users`` and ``/v1/api-keys``."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from outbound.console.access import Viewer, console_router, state_of, viewer_of
from outbound.console.i18n import N_, validation_text
from outbound.console.nav import ADMINS
from outbound.console.rendering import render
from outbound.domain.roles import Role
from outbound.errors import ConflictError, InvalidRequestError
from outbound.schemas import ApiKeyCreate, UserCreate, UserUpdate
from outbound.services.auth import create_api_key, list_api_keys, revoke_api_key

__all__ = ["router"]

router = console_router()

NOTICES = {
    "created": N_("User created."),
    "deactivated": N_("User deactivated: their keys are revoked and they are signed out."),
    "activated": N_("User activated."),
    "revoked": N_("Key revoked: it is refused from the next request on."),
    "signed-out": N_("The user is signed out of every console session."),
}


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _errors(exc: Exception) -> dict[str, str]:
    if isinstance(exc, ValidationError):
        return {
            (str(error["loc"][0]) if error.get("loc") else ""): validation_text(error)
            for error in exc.errors()
        }
    if isinstance(exc, InvalidRequestError | ConflictError):
        return {(exc.field or "").split(".")[0]: exc.message}
    raise exc


def _page(
    request: Request,
    who: Viewer,
    *,
    user_values: dict[str, Any] | None = None,
    user_errors: dict[str, str] | None = None,
    key_values: dict[str, Any] | None = None,
    key_errors: dict[str, str] | None = None,
    created_key: dict[str, Any] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    c = request.app.state.container
    users = c.users.list(who.org_id, None, 500).data
    keys = list_api_keys(c.db, who.org_id, None, 500).data
    return render(
        request,
        "users.html",
        {
            "users": users,
            "names": {u.id: u.name for u in users},
            "sessions": c.console_sessions.alive_by_user(who.org_id),
            "keys": keys,
            "roles": [role.value for role in Role],
            "user_values": user_values or {"role": "agent"},
            "user_errors": user_errors or {},
            "key_values": key_values or {"role": "sender"},
            "key_errors": key_errors or {},
            "created_key": created_key,
            "notice": notice,
        },
        status=status,
    )


@router.get("/users")
def users_page(request: Request, done: str = "", who: Viewer = viewer_of(*ADMINS)) -> Response:
    notice = state_of(request).t.gettext(NOTICES[done]) if done in NOTICES else None
    return _page(request, who, notice=notice)


@router.post("/users")
async def create_user(request: Request, who: Viewer = viewer_of(*ADMINS)) -> Response:
    form = await request.form()
    values = {name: _text(form, name) for name in ("email", "name", "role")}
    password = _text(form, "password")
    try:
        data = UserCreate.model_validate({**values, "password": password or None})
        request.app.state.container.users.create(who.org_id, data, by=who.principal)
    except (ValidationError, InvalidRequestError, ConflictError) as exc:
        return _page(request, who, user_values=values, user_errors=_errors(exc), status=422)
    return RedirectResponse("/users?done=created", status_code=303)


@router.post("/users/{user_id}/active")
async def set_active(request: Request, user_id: str, who: Viewer = viewer_of(*ADMINS)) -> Response:
    form = await request.form()
    active = _text(form, "active") == "1"
    try:
        request.app.state.container.users.update(
            who.org_id, user_id, UserUpdate(active=active), by=who.principal
        )
    except ConflictError as exc:
        return _page(request, who, user_errors={"": exc.message}, status=409)
    return RedirectResponse(
        f"/users?done={'activated' if active else 'deactivated'}", status_code=303
    )


@router.post("/users/{user_id}/sessions/end")
def sign_out_everywhere(
    request: Request, user_id: str, who: Viewer = viewer_of(*ADMINS)
) -> Response:
    """End every console session of a user (their keys are another matter)."""
    request.app.state.container.console_sessions.end_all(who.org_id, user_id)
    return RedirectResponse("/users?done=signed-out", status_code=303)


@router.post("/users/api-keys")
async def create_key(request: Request, who: Viewer = viewer_of(*ADMINS)) -> Response:
    c = request.app.state.container
    form = await request.form()
    values = {name: _text(form, name) for name in ("name", "role", "user_id")}
    try:
        data = ApiKeyCreate.model_validate(
            {"name": values["name"], "role": values["role"], "user_id": values["user_id"] or None}
        )
        key, secret = create_api_key(
            c.db, c.clock, who.org_id, data.role, data.name, user_id=data.user_id, by=who.principal
        )
    except (ValidationError, InvalidRequestError, ConflictError) as exc:
        return _page(request, who, key_values=values, key_errors=_errors(exc), status=422)
    # The secret is in this answer only: never stored, never shown again.
    return _page(request, who, created_key={"name": key.name, "secret": secret})


@router.post("/users/api-keys/{key_id}/revoke")
def revoke_key(request: Request, key_id: str, who: Viewer = viewer_of(*ADMINS)) -> Response:
    c = request.app.state.container
    revoke_api_key(c.db, c.clock, who.org_id, key_id, by=who.principal)
    return RedirectResponse("/users?done=revoked", status_code=303)
