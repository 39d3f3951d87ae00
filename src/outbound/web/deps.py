"""Request dependencies: the container, the caller and their role."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import Depends, Header, Request

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


def requires(*roles: Role) -> Callable[..., Principal]:
    """A dependency that authenticates the caller and checks their role."""

    def dependency(
        request: Request,
        authorization: str | None = Header(None, description="Bearer <api key>"),
    ) -> Principal:
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
