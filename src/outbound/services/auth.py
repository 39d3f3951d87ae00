"""Organisations, API keys and the caller's identity.

Keys are 256-bit random secrets; only their SHA-256 digest is stored (a slow hash buys nothing
for secrets of that entropy and would cost every request).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import ApiKey, Organization
from outbound.clock import Clock
from outbound.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from outbound.schemas import Role

__all__ = [
    "KEY_PREFIX",
    "Principal",
    "authenticate",
    "create_api_key",
    "create_organization",
    "get_organization",
    "hash_key",
    "require_role",
    "set_limits",
]

KEY_PREFIX = "ob_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key of one organisation with one role."""

    org_id: str
    key_id: str
    role: Role


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_organization(db: Database, clock: Clock, name: str) -> Organization:
    name = name.strip()
    if not name:
        raise ValueError("organisation name must not be empty")
    org = Organization(name=name, created_at=clock.now())
    with db.transaction() as session:
        session.add(org)
    return org


def get_organization(db: Database, org_id: str) -> Organization:
    with db.read() as session:
        org = session.get(Organization, org_id)
    if org is None:
        raise NotFoundError(f"no organisation {org_id!r}", field="org_id")
    return org


def set_limits(
    db: Database,
    org_id: str,
    *,
    max_contacts_per_request: int | None = None,
    hourly_request_quota: int | None = None,
) -> Organization:
    """Override the service-wide limits for one organisation."""
    with db.transaction() as session:
        org = session.get(Organization, org_id)
        if org is None:
            raise NotFoundError(f"no organisation {org_id!r}", field="org_id")
        if max_contacts_per_request is not None:
            org.max_contacts_per_request = max_contacts_per_request
        if hourly_request_quota is not None:
            org.hourly_request_quota = hourly_request_quota
    return org


def create_api_key(
    db: Database, clock: Clock, org_id: str, role: Role, name: str = "api key"
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the secret, which is never stored nor shown again."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    with db.transaction() as session:
        if session.get(Organization, org_id) is None:
            raise NotFoundError(f"no organisation {org_id!r}", field="org_id")
        key = ApiKey(
            org_id=org_id,
            name=name,
            role=role.value,
            key_hash=hash_key(secret),
            prefix=secret[:10],
            created_at=clock.now(),
        )
        session.add(key)
    return key, secret


def authenticate(db: Database, authorization: str | None) -> Principal:
    """Resolve an ``Authorization: Bearer <key>`` header to a principal (401 otherwise)."""
    if not authorization:
        raise AuthenticationError("missing Authorization header (expected 'Bearer <api key>')")
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise AuthenticationError("Authorization header must be 'Bearer <api key>'")
    with db.read() as session:
        row = session.execute(
            sa.select(ApiKey.id, ApiKey.org_id, ApiKey.role).where(
                ApiKey.key_hash == hash_key(secret.strip()), ApiKey.revoked_at.is_(None)
            )
        ).one_or_none()
    if row is None:
        raise AuthenticationError("unknown or revoked API key")
    return Principal(org_id=row.org_id, key_id=row.id, role=Role(row.role))


def require_role(principal: Principal, roles: Iterable[Role]) -> None:
    allowed = set(roles)
    if principal.role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise PermissionDeniedError(
            f"role {principal.role.value!r} may not do this (needs one of: {names})"
        )
