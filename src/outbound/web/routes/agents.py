"""What agents and supervisors do: act on conversations, answer, take notes, use canned
responses, ask routing why, and follow everything live (``GET /v1/stream``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from outbound.domain.roles import Role
from outbound.schemas import (
    CannedResponseCreate,
    CannedResponseOut,
    CannedResponseUpdate,
    CloseIn,
    DeclineIn,
    NoteIn,
    NoteOut,
    RenderedCanned,
    ReplyIn,
    ReplyOut,
    SimulateIn,
    SnoozeIn,
    TransferIn,
)
from outbound.services.auth import Principal
from outbound.services.lifecycle import Actor
from outbound.services.public_ids import IdKind, parse_public_id
from outbound.services.stream import Subscriber
from outbound.web.deps import container, principal_of

__all__ = ["actor_of", "router"]

router = APIRouter(prefix="/v1")
STAFF = (Role.ADMIN, Role.SUPERVISOR, Role.AGENT)
SUPERVISORS = (Role.ADMIN, Role.SUPERVISOR)


def actor_of(who: Principal) -> Actor:
    return Actor(
        org_id=who.org_id,
        user_id=who.user_id,
        supervisor=who.role in (Role.ADMIN, Role.SUPERVISOR),
    )


def _conversation(request: Request, who: Principal, conversation_id: str) -> Any:
    return container(request).conversations.get(who.org_id, conversation_id)


# --- actions ------------------------------------------------------------------------------


@router.post("/conversations/{conversation_id}/accept", tags=["conversations"])
def accept(conversation_id: str, request: Request, who: Principal = principal_of(*STAFF)) -> Any:
    container(request).lifecycle.accept(actor_of(who), conversation_id)
    return _conversation(request, who, conversation_id)


@router.post("/conversations/{conversation_id}/decline", tags=["conversations"])
def decline(
    conversation_id: str,
    request: Request,
    data: DeclineIn | None = None,
    who: Principal = principal_of(*STAFF),
) -> Any:
    reason = data.reason if data else None
    container(request).lifecycle.decline(actor_of(who), conversation_id, reason)
    return _conversation(request, who, conversation_id)


@router.post("/conversations/{conversation_id}/transfer", tags=["conversations"])
def transfer(
    conversation_id: str, data: TransferIn, request: Request, who: Principal = principal_of(*STAFF)
) -> Any:
    container(request).lifecycle.transfer(
        actor_of(who),
        conversation_id,
        to_user_id=data.user_id,
        to_queue_id=data.queue_id,
        reason=data.reason,
    )
    return _conversation(request, who, conversation_id)


@router.post("/conversations/{conversation_id}/snooze", tags=["conversations"])
def snooze(
    conversation_id: str, data: SnoozeIn, request: Request, who: Principal = principal_of(*STAFF)
) -> Any:
    container(request).lifecycle.snooze(actor_of(who), conversation_id, data.until)
    return _conversation(request, who, conversation_id)


@router.post("/conversations/{conversation_id}/close", tags=["conversations"])
def close(
    conversation_id: str,
    request: Request,
    data: CloseIn | None = None,
    who: Principal = principal_of(*STAFF),
) -> Any:
    wrap_up = data.wrap_up if data else True
    container(request).lifecycle.close(actor_of(who), conversation_id, wrap_up=wrap_up)
    return _conversation(request, who, conversation_id)


@router.post("/conversations/{conversation_id}/reopen", tags=["conversations"])
def reopen(conversation_id: str, request: Request, who: Principal = principal_of(*STAFF)) -> Any:
    container(request).lifecycle.reopen(actor_of(who), conversation_id)
    return _conversation(request, who, conversation_id)


# --- answers and notes --------------------------------------------------------------------


@router.post("/conversations/{conversation_id}/messages", status_code=202, tags=["conversations"])
def reply(
    conversation_id: str, data: ReplyIn, request: Request, who: Principal = principal_of(*STAFF)
) -> ReplyOut:
    result = container(request).agent_replies.reply(
        actor_of(who),
        conversation_id,
        body=data.body,
        template_id=data.template_id,
        parameters=dict(data.parameters) if data.parameters else None,
    )
    return ReplyOut.model_validate(result, from_attributes=True)


@router.post("/conversations/{conversation_id}/notes", status_code=201, tags=["conversations"])
def add_note(
    conversation_id: str, data: NoteIn, request: Request, who: Principal = principal_of(*STAFF)
) -> NoteOut:
    note = container(request).agent_replies.add_note(actor_of(who), conversation_id, data.body)
    return NoteOut.model_validate(note)


@router.get("/conversations/{conversation_id}/routing", tags=["conversations"])
def explain_routing(
    conversation_id: str, request: Request, who: Principal = principal_of(*STAFF)
) -> dict[str, Any]:
    return container(request).routing.explain(who.org_id, conversation_id)


@router.post("/routing/simulate", tags=["queues"])
def simulate_routing(
    data: SimulateIn, request: Request, who: Principal = principal_of(*SUPERVISORS)
) -> dict[str, Any]:
    return container(request).routing.simulate(
        who.org_id,
        channel_id=data.channel_id,
        number=data.from_,
        text=data.text,
        replied_message_id=data.message_id,
    )


# --- canned responses ---------------------------------------------------------------------


@router.post("/canned-responses", status_code=201, tags=["canned responses"])
def post_canned(
    data: CannedResponseCreate, request: Request, who: Principal = principal_of(*SUPERVISORS)
) -> CannedResponseOut:
    row = container(request).agent_replies.create_canned(
        who.org_id, data.shortcode, data.body, data.title
    )
    return CannedResponseOut.model_validate(row)


@router.get("/canned-responses", tags=["canned responses"])
def list_canned(request: Request, who: Principal = principal_of(*STAFF)) -> dict[str, Any]:
    rows = container(request).agent_replies.list_canned(who.org_id)
    return {"data": [CannedResponseOut.model_validate(r) for r in rows]}


@router.patch("/canned-responses/{canned_id}", tags=["canned responses"])
def patch_canned(
    canned_id: str,
    data: CannedResponseUpdate,
    request: Request,
    who: Principal = principal_of(*SUPERVISORS),
) -> CannedResponseOut:
    row = container(request).agent_replies.update_canned(
        who.org_id,
        canned_id,
        shortcode=data.shortcode,
        body=data.body,
        title=data.title,
        title_given="title" in data.model_fields_set,
    )
    return CannedResponseOut.model_validate(row)


@router.delete("/canned-responses/{canned_id}", status_code=204, tags=["canned responses"])
def delete_canned(
    canned_id: str, request: Request, who: Principal = principal_of(*SUPERVISORS)
) -> Response:
    container(request).agent_replies.delete_canned(who.org_id, canned_id)
    return Response(status_code=204)


@router.get(
    "/conversations/{conversation_id}/canned-responses/{shortcode}", tags=["canned responses"]
)
def render_canned(
    conversation_id: str, shortcode: str, request: Request, who: Principal = principal_of(*STAFF)
) -> RenderedCanned:
    text = container(request).agent_replies.render_canned(actor_of(who), conversation_id, shortcode)
    return RenderedCanned(shortcode=shortcode.lstrip("/").lower(), text=text)


# --- the live stream ----------------------------------------------------------------------


@router.get(
    "/stream",
    tags=["stream"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    last_event_id: str | None = Header(
        None,
        alias="Last-Event-ID",
        description="The id of the last event received: the stream goes on after it.",
        json_schema_extra={"pattern": r"^\s*(upd_[a-z2-7]{26})?\s*$"},
    ),
    after: str | None = Query(
        None,
        description="Same as the Last-Event-ID header.",
        pattern=r"^upd_[a-z2-7]{26}$",
    ),
    who: Principal = principal_of(*STAFF),
) -> StreamingResponse:
    """Server-Sent Events for the caller: conversations, messages, presence, queues."""
    db = container(request).db
    since: int | None = None
    if after is not None:
        since = await run_in_threadpool(
            parse_public_id, db, who.org_id, IdKind.UPDATE, after, field="after"
        )
    if last_event_id is not None and last_event_id.strip():
        since = await run_in_threadpool(
            parse_public_id, db, who.org_id, IdKind.UPDATE, last_event_id, field="Last-Event-ID"
        )
    subscriber = Subscriber(
        org_id=who.org_id,
        user_id=who.user_id,
        sees_all=who.role in (Role.ADMIN, Role.SUPERVISOR),
    )
    hub = container(request).stream
    return StreamingResponse(
        hub.events(subscriber, since),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
