"""The audit log of the organisation's administrative changes."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Request

from outbound.schemas import AuditEventOut, Page, Role
from outbound.services.auth import Principal
from outbound.web.deps import container, principal_of

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get("/audit")
def list_audit(
    request: Request,
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(50, ge=1, le=500),
    target_type: str | None = Query(None, max_length=32),
    target_id: str | None = Query(None, max_length=64),
    action: str | None = Query(None, max_length=64),
    since: datetime | None = Query(None),
    who: Principal = principal_of(Role.ADMIN),
) -> Page[AuditEventOut]:
    """Who changed which template, configuration, channel, key, user or webhook endpoint,
    when, and what changed (secrets never shown), newest first."""
    return container(request).audit.list(
        who.org_id,
        cursor,
        limit,
        target_type=target_type,
        target_id=target_id,
        action=action,
        since=since,
    )
