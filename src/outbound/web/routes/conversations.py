"""Conversations API: lists with filters, and one conversation with its context."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from outbound.domain.conversations import CONVERSATION_STATUSES
from outbound.domain.roles import Role
from outbound.errors import InvalidRequestError
from outbound.schemas import ConversationOut, Page
from outbound.services.auth import Principal
from outbound.texts import N_
from outbound.web.deps import container, principal_of

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["conversations"])
STAFF = (Role.ADMIN, Role.SUPERVISOR, Role.AGENT)
_STATUSES = "|".join(CONVERSATION_STATUSES)
_STATUS_LIST = rf"^\s*({_STATUSES})\s*(,\s*({_STATUSES})\s*)*$"


@router.get("/conversations")
def list_conversations(
    request: Request,
    status: str | None = Query(
        None,
        description="open, active, waiting, wrap_up or closed (comma-separated for several)",
        json_schema_extra={"pattern": _STATUS_LIST},
    ),
    queue_id: str | None = None,
    assigned_to: str | None = Query(None, description="a user id, or me"),
    channel_id: str | None = None,
    customer_number: str | None = None,
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    who: Principal = principal_of(*STAFF),
) -> Page[ConversationOut]:
    if assigned_to == "me":
        if who.user_id is None:
            raise InvalidRequestError(
                N_("this API key belongs to no user, so it has no 'me'"), field="assigned_to"
            )
        assigned_to = who.user_id
    return container(request).conversations.list(
        who.org_id,
        status,
        cursor,
        limit,
        queue_id=queue_id,
        assigned_to=assigned_to,
        channel_id=channel_id,
        customer_number=customer_number,
    )


@router.get("/conversations/{conversation_id}")
def get_conversation(
    conversation_id: str, request: Request, who: Principal = principal_of(*STAFF)
) -> ConversationOut:
    return container(request).conversations.get(who.org_id, conversation_id)
