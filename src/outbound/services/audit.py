"""The audit log: who changed what in an organisation's set-up, when, and what changed.

Every administrative change (templates, outbound configurations, channels and their
credentials, API keys, users, webhook endpoints, the secret key) writes one ``audit_events``
row in the transaction of the change, so the log holds exactly the changes that were
committed. Who: the API key (and the user it acts as) from the request, the console's user,
or the command line.
What changed: each field's value before and after; secrets (credentials, passwords, signing
secrets) only as ``"(changed)"``, never their values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import AuditEvent
from outbound.domain.public_ids import IdKind, encode_public_id
from outbound.errors import InvalidRequestError
from outbound.schemas import AuditEventOut, Page
from outbound.services.pagination import MAX_PAGE_SIZE
from outbound.services.public_ids import org_id_key, parse_public_id
from outbound.texts import N_

if TYPE_CHECKING:
    from outbound.services.auth import Principal

__all__ = ["CHANGED", "CONSOLE_KEY_ID", "AuditService", "diff", "record_audit", "snapshot"]

CHANGED = "(changed)"
"""What the log shows of a secret that changed."""

CONSOLE_KEY_ID = "console"
"""The ``key_id`` the web console's callers carry (they use no API key)."""


def _plain(value: Any) -> Any:
    """A value as JSON keeps it."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def snapshot(row: object, fields: Iterable[str]) -> dict[str, Any]:
    """The ``fields`` of a row (or model) as JSON keeps them."""
    return {name: _plain(getattr(row, name, None)) for name in fields}


def diff(
    before: Mapping[str, Any], after: Mapping[str, Any], *, secrets: Iterable[str] = ()
) -> dict[str, Any]:
    """``{field: {"from": old, "to": new}}`` for each field that changed; a secret field
    shows only that it changed."""
    hidden = set(secrets)
    changes: dict[str, Any] = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if name in hidden:
            changes[name] = CHANGED
        else:
            changes[name] = {"from": old, "to": new}
    return changes


def record_audit(
    session: Session,
    org_id: str,
    by: Principal | None,
    action: str,
    target_type: str,
    target_id: str | None,
    now: datetime,
    *,
    changes: Mapping[str, Any] | None = None,
    key_id: str | None = None,
    user_id: str | None = None,
) -> None:
    """Write one audit row in the caller's transaction.

    ``by``: the caller; else ``key_id`` and ``user_id`` when the service was given only those;
    neither: the command line.
    """
    role = None
    if by is not None:
        key_id, user_id, role = by.key_id, by.user_id, by.role.value
    if key_id == CONSOLE_KEY_ID:
        via, key_id = "console", None
    else:
        via = "api" if key_id is not None else "cli"
    session.add(
        AuditEvent(
            org_id=org_id,
            occurred_at=now,
            action=action,
            target_type=target_type,
            target_id=target_id,
            via=via,
            actor_key_id=key_id,
            actor_user_id=user_id,
            actor_role=role,
            changes=_plain(dict(changes)) if changes else None,
        )
    )


class AuditService:
    """Reading the audit log."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def list(
        self,
        org_id: str,
        cursor: str | None,
        limit: int,
        *,
        target_type: str | None = None,
        target_id: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
    ) -> Page[AuditEventOut]:
        """The organisation's audit rows, newest first; ``cursor`` is the last id of a page."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidRequestError(
                N_("limit must be between 1 and %(limit)s", limit=MAX_PAGE_SIZE), field="limit"
            )
        query = sa.select(AuditEvent).where(AuditEvent.org_id == org_id)
        if target_type:
            query = query.where(AuditEvent.target_type == target_type)
        if target_id:
            query = query.where(AuditEvent.target_id == target_id)
        if action:
            query = query.where(AuditEvent.action == action)
        if since is not None:
            query = query.where(AuditEvent.occurred_at >= since)
        with self._db.read() as session:
            if cursor:
                before = parse_public_id(session, org_id, IdKind.AUDIT, cursor)
                query = query.where(AuditEvent.id < before)
            rows = list(
                session.execute(query.order_by(AuditEvent.id.desc()).limit(limit + 1)).scalars()
            )
            more = len(rows) > limit
            rows = rows[:limit]
            key = org_id_key(session, org_id)
        return Page[AuditEventOut](
            data=[_audit_out(key, r) for r in rows],
            next_cursor=encode_public_id(key, IdKind.AUDIT, rows[-1].id) if more else None,
        )


def _audit_out(key: str, row: AuditEvent) -> AuditEventOut:
    data = {c: getattr(row, c) for c in AuditEventOut.model_fields if c != "id"}
    return AuditEventOut(id=encode_public_id(key, IdKind.AUDIT, row.id), **data)
