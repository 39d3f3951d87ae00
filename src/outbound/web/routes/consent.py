"""Consent: a number's state per channel with its history, and an admin's record of it."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from outbound.domain.roles import Role
from outbound.schemas import ConsentOut, ConsentRecordIn
from outbound.services.auth import Principal
from outbound.services.cancellation import actor_of
from outbound.web.deps import ALL_ROLES, container, principal_of

__all__ = ["router"]

router = APIRouter(prefix="/v1")


@router.get("/consent", tags=["consent"])
def get_consent(
    request: Request,
    number: str = Query(min_length=1, max_length=100, description="the number, any format"),
    who: Principal = principal_of(*ALL_ROLES),
) -> ConsentOut:
    """The number's consent on every channel of the organisation, with its history."""
    return container(request).consent.get(who.org_id, number)


@router.put("/consent", tags=["consent"], responses={404: {"description": "No such channel"}})
def put_consent(
    data: ConsentRecordIn, request: Request, who: Principal = principal_of(Role.ADMIN)
) -> ConsentOut:
    """Record consent given or withdrawn elsewhere, on one channel or on all of them."""
    return container(request).consent.record(who.org_id, data, actor=actor_of(who))
