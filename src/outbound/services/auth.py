"""Organisations, API keys and the caller's identity.

Keys are 256-bit random secrets; only their SHA-256 digest is stored (a slow hash buys nothing
for secrets of that entropy and would cost every request). A key may belong to a user: it then
acts as that user (:attr:`Principal.user_id`), never with a role above the user's, and stops
working while the user is deactivated.

Every request reads its key from the database, so a revoked key is refused at once by every
process. Recording use costs no write on most requests: a key's ``last_used_at`` is written at
most once a minute, and its user's ``last_seen_at`` (presence) at most every ``seen_every``
seconds, each by an ``UPDATE`` that compares the stored time, so several processes do not
write it twice.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import ApiKey, Organization, User
from outbound.clock import Clock
from outbound.domain.roles import Role
from outbound.domain.users import key_roles_for
from outbound.errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
)
from outbound.schemas import ApiKeyOut, Page
from outbound.services.audit import record_audit
from outbound.services.pagination import fetch_page
from outbound.texts import N_

__all__ = [
    "KEY_PREFIX",
    "KEY_USE_WRITE_SECONDS",
    "SEEN_WRITE_SECONDS",
    "Principal",
    "authenticate",
    "create_api_key",
    "create_organization",
    "get_organization",
    "hash_key",
    "list_api_keys",
    "require_role",
    "revoke_api_key",
    "set_limits",
]

log = logging.getLogger(__name__)

KEY_PREFIX = "ob_"
KEY_USE_WRITE_SECONDS = 60.0
SEEN_WRITE_SECONDS = 15.0


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key of one organisation with one role, and the user the key
    belongs to (``None`` for a key of the organisation itself, such as an integration's)."""

    org_id: str
    key_id: str
    role: Role
    user_id: str | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_organization(db: Database, clock: Clock, name: str) -> Organization:
    name = name.strip()
    if not name:
        raise ValueError(N_("organisation name must not be empty"))
    org = Organization(name=name, created_at=clock.now())
    with db.transaction() as session:
        session.add(org)
    return org


def get_organization(db: Database, org_id: str) -> Organization:
    with db.read() as session:
        org = session.get(Organization, org_id)
    if org is None:
        raise NotFoundError(
            N_("no organisation %(organisation)r", organisation=org_id), field="org_id"
        )
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
            raise NotFoundError(
                N_("no organisation %(organisation)r", organisation=org_id), field="org_id"
            )
        if max_contacts_per_request is not None:
            org.max_contacts_per_request = max_contacts_per_request
        if hourly_request_quota is not None:
            org.hourly_request_quota = hourly_request_quota
    return org


def create_api_key(
    db: Database,
    clock: Clock,
    org_id: str,
    role: Role,
    name: str = "api key",
    *,
    user_id: str | None = None,
    by: Principal | None = None,
) -> tuple[ApiKey, str]:
    """Create a key, of the organisation or of one of its users (its role no higher than the
    user's); returns the row and the secret, which is never stored nor shown again."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    with db.transaction() as session:
        if session.get(Organization, org_id) is None:
            raise NotFoundError(
                N_("no organisation %(organisation)r", organisation=org_id), field="org_id"
            )
        if user_id is not None:
            user = session.execute(
                sa.select(User).where(User.id == user_id, User.org_id == org_id).with_for_update()
            ).scalar_one_or_none()
            if user is None:
                raise InvalidRequestError(N_("no user %(user)r", user=user_id), field="user_id")
            if not user.active:
                raise InvalidRequestError(N_("the user is deactivated"), field="user_id")
            allowed = key_roles_for(user.role)
            if role not in allowed:
                raise InvalidRequestError(
                    N_(
                        "the user's role is %(role)r: their keys may have the role %(roles)s only",
                        role=user.role,
                        roles=" or ".join(sorted(allowed)),
                    ),
                    field="role",
                    code="role_above_user",
                )
        key = ApiKey(
            org_id=org_id,
            name=name,
            role=role.value,
            key_hash=hash_key(secret),
            prefix=secret[:10],
            user_id=user_id,
            created_at=clock.now(),
        )
        session.add(key)
        session.flush()
        record_audit(
            session,
            org_id,
            by,
            "api_key.created",
            "api_key",
            key.id,
            key.created_at,
            changes={
                "name": key.name,
                "role": key.role,
                "user_id": key.user_id,
                "prefix": key.prefix,
            },
        )
    return key, secret


def list_api_keys(
    db: Database, org_id: str, cursor: str | None, limit: int, *, user_id: str | None = None
) -> Page[ApiKeyOut]:
    """The organisation's keys, revoked ones included, newest first; never their secrets."""
    query: sa.Select[Any] = sa.select(ApiKey).where(ApiKey.org_id == org_id)
    if user_id is not None:
        query = query.where(ApiKey.user_id == user_id)
    return fetch_page(
        db, query, ApiKey.created_at, ApiKey.id, cursor, limit, ApiKeyOut.model_validate
    )


def revoke_api_key(
    db: Database, clock: Clock, org_id: str, key_id: str, *, by: Principal | None = None
) -> ApiKeyOut:
    """Revoke a key (again: no change); every process refuses it from the next request on."""
    with db.transaction() as session:
        key = session.execute(
            sa.select(ApiKey).where(ApiKey.id == key_id, ApiKey.org_id == org_id)
        ).scalar_one_or_none()
        if key is None:
            raise NotFoundError(N_("no API key %(key)r", key=key_id))
        if key.revoked_at is None:
            key.revoked_at = clock.now()
            record_audit(
                session,
                org_id,
                by,
                "api_key.revoked",
                "api_key",
                key.id,
                key.revoked_at,
                changes={"name": key.name, "role": key.role, "prefix": key.prefix},
            )
    return ApiKeyOut.model_validate(key)


def authenticate(
    db: Database,
    authorization: str | None,
    clock: Clock,
    *,
    seen_every: float = SEEN_WRITE_SECONDS,
) -> Principal:
    """Resolve an ``Authorization: Bearer <key>`` header to a principal (401 otherwise), and
    record that the key (and its user) was used."""
    if not authorization:
        raise AuthenticationError(N_("missing Authorization header (expected 'Bearer <api key>')"))
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise AuthenticationError(N_("Authorization header must be 'Bearer <api key>'"))
    with db.read() as session:
        row = session.execute(
            sa.select(
                ApiKey.id,
                ApiKey.org_id,
                ApiKey.role,
                ApiKey.user_id,
                ApiKey.last_used_at,
                User.active,
                User.last_seen_at,
            )
            .outerjoin(User, User.id == ApiKey.user_id)
            .where(ApiKey.key_hash == hash_key(secret.strip()), ApiKey.revoked_at.is_(None))
        ).one_or_none()
    if row is None:
        raise AuthenticationError(N_("unknown or revoked API key"))
    if row.user_id is not None and not row.active:
        raise AuthenticationError(N_("the user this API key belongs to is deactivated"))
    _record_use(db, row, clock.now(), seen_every)
    return Principal(org_id=row.org_id, key_id=row.id, role=Role(row.role), user_id=row.user_id)


def _due(last: datetime | None, now: datetime, every: float) -> bool:
    return last is None or now - last >= timedelta(seconds=every)


def _record_use(db: Database, row: Any, now: datetime, seen_every: float) -> None:
    """Write when the key was last used and its user last seen, each only when due."""
    key_due = _due(row.last_used_at, now, KEY_USE_WRITE_SECONDS)
    seen_due = row.user_id is not None and _due(row.last_seen_at, now, seen_every)
    if not (key_due or seen_due):
        return
    try:
        with db.transaction(urgent=True) as session:
            if key_due:
                _stamp(session, ApiKey.last_used_at, ApiKey.id, row.id, now, KEY_USE_WRITE_SECONDS)
            if seen_due:
                _stamp(session, User.last_seen_at, User.id, row.user_id, now, seen_every)
    except sa.exc.OperationalError as exc:
        # Bookkeeping: the request itself may still be served.
        log.warning("could not record the use of API key %s: %s", row.id, exc.orig)


def _stamp(
    session: Session, column: Any, id_column: Any, row_id: str, now: datetime, every: float
) -> None:
    """Set ``column`` to ``now`` unless another process did so less than ``every`` s ago."""
    before = now - timedelta(seconds=every)
    session.execute(
        sa.update(column.class_)
        .where(id_column == row_id, sa.or_(column.is_(None), column <= before))
        .values({column.key: now})
    )


def require_role(principal: Principal, roles: Iterable[Role]) -> None:
    allowed = set(roles)
    if principal.role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise PermissionDeniedError(
            N_(
                "role %(role)r may not do this (needs one of: %(roles)s)",
                role=principal.role.value,
                roles=names,
            )
        )
