"""Conversations API."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from outbound.schemas import Page, Role
from outbound.services.auth import Principal
from outbound.services.conversations import ConversationOut
from outbound.web.deps import container, principal_of

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["conversations"])
AGENTS = (Role.ADMIN, Role.SUPERVISOR, Role.AGENT)


@router.get("/conversations")
def list_conversations(
    request: Request,
    status: str | None = Query(None, description="open or closed"),
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    who: Principal = principal_of(*AGENTS),
) -> Page[ConversationOut]:
    return container(request).conversations.list(who.org_id, status, cursor, limit)


@router.get("/conversations/{conversation_id}")
def get_conversation(
    conversation_id: str, request: Request, who: Principal = principal_of(*AGENTS)
) -> ConversationOut:
    return container(request).conversations.get(who.org_id, conversation_id)
