"""Request dependencies: the container, the caller and their role."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from outbound.domain.roles import Role
from outbound.errors import InvalidRequestError
from outbound.services.auth import Principal, authenticate, require_role
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
            raise InvalidRequestError("must not contain the NUL character (U+0000)", field=name)


# Declares the scheme in the OpenAPI description (so that Swagger UI's "Authorize" sends the
# key); the header itself is read as it came, so that a malformed one gets our 401.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    bearerFormat="ob_…",
    description="An API key: `Authorization: Bearer ob_…` (`outbound admin create-key`).",
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
        return principal

    return dependency


def principal_of(*roles: Role) -> Principal:
    """Typed shorthand: ``principal: Principal = principal_of(Role.ADMIN)``."""
    result: Principal = Depends(requires(*roles))
    return result
