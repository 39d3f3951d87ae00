"""Request dependencies: the container, the caller and their role.

Every route that authenticates its caller also refuses NUL in its path and query parameters,
and, when it reads (GET), a query parameter it does not declare: 422 naming the parameter and
the allowed ones, from the route's own declaration, so no route lists them by hand. A route
that reads a JSON body refuses another ``Content-Type`` with 415.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import Depends, Request, Security, params
from fastapi.dependencies.utils import get_flat_params
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from outbound.domain.roles import Role
from outbound.errors import InvalidRequestError, UnsupportedMediaTypeError
from outbound.services.auth import Principal, authenticate, require_role
from outbound.texts import N_
from outbound.web.body_limit import is_json_media_type
from outbound.web.throttle import FailureThrottle, client_address

if TYPE_CHECKING:
    from outbound.app import Container

__all__ = ["ALL_ROLES", "READERS", "SENDERS", "auth_throttle", "container", "requires"]

ALL_ROLES = (Role.ADMIN, Role.SENDER, Role.SUPERVISOR, Role.AGENT)
SENDERS = (Role.ADMIN, Role.SENDER)
READERS = (Role.ADMIN, Role.SENDER)


def container(request: Request) -> Container:
    result: Container = request.app.state.container
    return result


def auth_throttle(request: Request) -> FailureThrottle:
    """The application's count of failed authentications per address."""
    throttle: FailureThrottle = request.app.state.auth_throttle
    return throttle


def _reject_nul(request: Request) -> None:
    """Refuse NUL in path and query parameters: PostgreSQL cannot even compare with it."""
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if "\x00" in str(value):
            raise InvalidRequestError(N_("must not contain the NUL character (U+0000)"), field=name)


# Declares the scheme in the OpenAPI description (so that Swagger UI's "Authorize" sends the
# key); the header itself is read as it came, so that a malformed one gets our 401.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    bearerFormat="ob_…",
    description="An API key: `Authorization: Bearer ob_…` (`outbound admin create-key`).",
)


_QUERY_METHODS = frozenset({"GET", "HEAD"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


# route id → (the route, its query parameters); APIRoute is not hashable.
_DECLARED: dict[int, tuple[APIRoute, frozenset[str]]] = {}


def _declared_query(route: APIRoute) -> frozenset[str]:
    """The query parameters a route declares (its own and its dependencies')."""
    cached = _DECLARED.get(id(route))
    if cached is not None and cached[0] is route:
        return cached[1]
    names = frozenset(
        field.alias
        for field in get_flat_params(route.dependant)
        if isinstance(field.field_info, params.Query)
    )
    _DECLARED[id(route)] = (route, names)
    return names


def _reject_unknown_query(request: Request) -> None:
    """Refuse a query parameter a reading route does not declare (``?statuss=`` or
    ``?recipient=``), which would otherwise be ignored and answer with everything."""
    if request.method not in _QUERY_METHODS or not request.query_params:
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    allowed = _declared_query(route)
    for name in request.query_params:
        if name not in allowed:
            choices = ", ".join(sorted(allowed)) or "none"
            raise InvalidRequestError(
                N_(
                    "unknown query parameter %(name)r; allowed: %(choices)s",
                    name=name,
                    choices=choices,
                ),
                field=name,
                code="unknown_query_parameter",
                details={"allowed": sorted(allowed)},
            )


def _reject_wrong_media_type(request: Request) -> None:
    """Refuse a body that is not JSON on a route that reads a JSON body (415): the framework
    would otherwise try it as JSON text and answer with a validation error."""
    if request.method not in _BODY_METHODS:
        return
    content_type = request.headers.get("content-type")
    if content_type is None or is_json_media_type(content_type):
        return
    route = request.scope.get("route")
    if isinstance(route, APIRoute) and route.body_field is not None:
        media = content_type.split(";", 1)[0].strip() or "none"
        raise UnsupportedMediaTypeError(
            N_(
                "the body must be JSON (Content-Type: application/json), not %(media)s", media=media
            ),
            field="Content-Type",
        )


def requires(*roles: Role) -> Callable[..., Principal]:
    """A dependency that authenticates the caller and checks their role."""

    def dependency(
        request: Request,
        _credentials: HTTPAuthorizationCredentials | None = Security(bearer_scheme),
    ) -> Principal:
        authorization = request.headers.get("authorization")
        c = container(request)
        address = client_address(request, trust_forwarded=c.settings.trust_forwarded_headers)
        principal = auth_throttle(request).attempt(
            address,
            lambda: authenticate(c.db, authorization, c.clock, seen_every=c.presence.seen_every),
        )
        require_role(principal, roles)
        _reject_nul(request)
        _reject_unknown_query(request)
        _reject_wrong_media_type(request)
        return principal

    return dependency


def principal_of(*roles: Role) -> Principal:
    """Typed shorthand: ``principal: Principal = principal_of(Role.ADMIN)``."""
    result: Principal = Depends(requires(*roles))
    return result
