"""Users, their API keys and their presence.

Only admins manage users and keys; supervisors read users and see and set everyone's presence;
any key that belongs to a user reads that user (``/v1/users/me``) and sets their own presence.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from outbound.domain.roles import Role
from outbound.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    Page,
    PresenceIn,
    PresenceOut,
    UserCreate,
    UserOut,
    UserUpdate,
)
from outbound.services.auth import Principal, create_api_key, list_api_keys, revoke_api_key
from outbound.services.users import require_user
from outbound.web.deps import ALL_ROLES, container, principal_of

__all__ = ["router"]

router = APIRouter(prefix="/v1")
ADMIN = (Role.ADMIN,)
OVERSEERS = (Role.ADMIN, Role.SUPERVISOR)
Cursor = Query(None, description="next_cursor of the previous page")
Limit = Query(50, ge=1, le=500)


# --- users --------------------------------------------------------------------------------


@router.post("/users", status_code=201, tags=["users"])
def post_user(data: UserCreate, request: Request, who: Principal = principal_of(*ADMIN)) -> UserOut:
    return container(request).users.create(who.org_id, data, by=who)


@router.get("/users", tags=["users"])
def list_users(
    request: Request,
    role: str | None = Query(
        None,
        description="admin, supervisor or agent",
        json_schema_extra={"pattern": r"^\s*(admin|supervisor|agent)\s*$"},
    ),
    active: bool | None = None,
    cursor: str | None = Cursor,
    limit: int = Limit,
    who: Principal = principal_of(*OVERSEERS),
) -> Page[UserOut]:
    return container(request).users.list(who.org_id, cursor, limit, role=role, active=active)


# /users/me... before /users/{user_id}, so that "me" is not taken for an id.


@router.get("/users/me", tags=["users"])
def get_me(request: Request, who: Principal = principal_of(*ALL_ROLES)) -> UserOut:
    """The user the calling key belongs to (404 ``no_user`` for a key of the organisation)."""
    return container(request).users.me(who)


@router.get("/users/me/presence", tags=["presence"])
def get_my_presence(request: Request, who: Principal = principal_of(*ALL_ROLES)) -> PresenceOut:
    return container(request).presence.get(who.org_id, require_user(who))


@router.put("/users/me/presence", tags=["presence"])
def put_my_presence(
    data: PresenceIn, request: Request, who: Principal = principal_of(*ALL_ROLES)
) -> PresenceOut:
    return container(request).presence.set(who.org_id, require_user(who), data.status, by=who)


@router.post("/users/me/heartbeat", tags=["presence"])
def heartbeat(request: Request, who: Principal = principal_of(*ALL_ROLES)) -> PresenceOut:
    """Keeps the caller seen (as any request with their key does) and answers their presence."""
    return container(request).presence.get(who.org_id, require_user(who))


@router.get("/users/{user_id}", tags=["users"])
def get_user(user_id: str, request: Request, who: Principal = principal_of(*OVERSEERS)) -> UserOut:
    return container(request).users.get(who.org_id, user_id)


@router.patch("/users/{user_id}", tags=["users"])
def patch_user(
    user_id: str, data: UserUpdate, request: Request, who: Principal = principal_of(*ADMIN)
) -> UserOut:
    return container(request).users.update(who.org_id, user_id, data, by=who)


@router.delete("/users/{user_id}", status_code=204, tags=["users"])
def delete_user(user_id: str, request: Request, who: Principal = principal_of(*ADMIN)) -> Response:
    """Removes the user, or deactivates them if anything names them (see docs/api.md)."""
    container(request).users.delete(who.org_id, user_id, by=who)
    return Response(status_code=204)


# --- presence -----------------------------------------------------------------------------


@router.get("/users/{user_id}/presence", tags=["presence"])
def get_presence(
    user_id: str, request: Request, who: Principal = principal_of(*OVERSEERS)
) -> PresenceOut:
    return container(request).presence.get(who.org_id, user_id)


@router.put("/users/{user_id}/presence", tags=["presence"])
def put_presence(
    user_id: str, data: PresenceIn, request: Request, who: Principal = principal_of(*OVERSEERS)
) -> PresenceOut:
    return container(request).presence.set(who.org_id, user_id, data.status, by=who)


@router.get("/presence", tags=["presence"])
def list_presence(
    request: Request,
    status: str | None = Query(
        None,
        description="available, busy, dnd, away or offline",
        json_schema_extra={"pattern": r"^\s*(available|busy|dnd|away|offline)\s*$"},
    ),
    online: bool | None = None,
    cursor: str | None = Cursor,
    limit: int = Limit,
    who: Principal = principal_of(*OVERSEERS),
) -> Page[PresenceOut]:
    """Every active user's presence."""
    return container(request).presence.list(who.org_id, cursor, limit, status=status, online=online)


# --- API keys -----------------------------------------------------------------------------


@router.post("/api-keys", status_code=201, tags=["api keys"])
def post_api_key(
    data: ApiKeyCreate, request: Request, who: Principal = principal_of(*ADMIN)
) -> ApiKeyCreated:
    c = container(request)
    key, secret = create_api_key(
        c.db, c.clock, who.org_id, data.role, data.name, user_id=data.user_id, by=who
    )
    return ApiKeyCreated(
        id=key.id,
        org_id=key.org_id,
        name=key.name,
        role=Role(key.role),
        user_id=key.user_id,
        prefix=key.prefix,
        key=secret,
        created_at=key.created_at,
    )


@router.get("/api-keys", tags=["api keys"])
def get_api_keys(
    request: Request,
    user_id: str | None = None,
    cursor: str | None = Cursor,
    limit: int = Limit,
    who: Principal = principal_of(*ADMIN),
) -> Page[ApiKeyOut]:
    return list_api_keys(container(request).db, who.org_id, cursor, limit, user_id=user_id)


@router.delete("/api-keys/{key_id}", status_code=204, tags=["api keys"])
def delete_api_key(
    key_id: str, request: Request, who: Principal = principal_of(*ADMIN)
) -> Response:
    """Revokes the key: every process refuses it from the next request on."""
    c = container(request)
    revoke_api_key(c.db, c.clock, who.org_id, key_id, by=who)
    return Response(status_code=204)
