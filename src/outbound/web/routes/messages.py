"""The send API and tracking."""

from __future__ import annotations

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from outbound.domain.roles import Role
from outbound.errors import InvalidRequestError
from outbound.schemas import CancelIn, CancelOut, IsoDateTime, MessageOut, Page, SendIn, SendOut
from outbound.services.auth import Principal
from outbound.services.exports import MessageExport
from outbound.services.tracking import MessageFilter
from outbound.texts import N_
from outbound.web.deps import ALL_ROLES, READERS, SENDERS, container, principal_of

__all__ = ["router"]

router = APIRouter(prefix="/v1")
MAX_IDEMPOTENCY_KEY = 255


@router.post(
    "/outbound/send",
    status_code=202,
    tags=["send"],
    response_model=SendOut,
    responses={
        409: {"description": "Same Idempotency-Key still processing, or inactive configuration"},
        422: {"description": "Invalid body, too many contacts, or Idempotency-Key reused"},
        429: {"description": "Hourly request quota used up; see Retry-After"},
    },
)
def send(
    data: SendIn,
    request: Request,
    idempotency_key: str | None = Header(
        None,
        alias="Idempotency-Key",
        json_schema_extra={"minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY},
    ),
    who: Principal = principal_of(*SENDERS),
) -> JSONResponse:
    """Queue one message per contact; answers once every message is durably stored."""
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
        raise InvalidRequestError(
            N_("must be 1 to %(limit)s characters", limit=MAX_IDEMPOTENCY_KEY),
            field="Idempotency-Key",
        )
    result = container(request).sending.send(
        who.org_id,
        data,
        idempotency_key=idempotency_key,
        urgent=True,
    )
    return JSONResponse(result.model_dump(mode="json"), status_code=202)


@router.get(
    "/messages/export",
    tags=["messages"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "The messages as CSV"}},
)
def export_messages(
    request: Request,
    configuration_id: str | None = None,
    status: str | None = None,
    to: str | None = Query(None, description="recipient, any format"),
    request_id: str | None = None,
    created_after: IsoDateTime | None = None,
    created_before: IsoDateTime | None = None,
    who: Principal = principal_of(*READERS, Role.SUPERVISOR),
) -> StreamingResponse:
    """Every message the filters of ``GET /v1/messages`` keep, as CSV, oldest first, streamed:
    its fields, the first time of each status and the error."""
    c = container(request)
    filters = MessageFilter(
        configuration_id=configuration_id,
        status=status,
        to=to,
        request_id=request_id,
        created_after=created_after,
        created_before=created_before,
        default_region=c.settings.default_region,
    )
    return StreamingResponse(
        MessageExport(c.db).csv(who.org_id, filters),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="messages.csv"'},
    )


@router.post(
    "/outbound/cancel",
    tags=["send"],
    responses={404: {"description": "No such send request, flow run or configuration"}},
)
def cancel_queued(
    data: CancelIn, request: Request, who: Principal = principal_of(*SENDERS)
) -> CancelOut:
    """Cancel every message still queued of a send request, a flow run or a configuration."""
    return container(request).cancellation.cancel_queued(who, data)


@router.post(
    "/messages/{message_id}/cancel",
    tags=["messages"],
    response_model_by_alias=True,
    responses={409: {"description": "The message is no longer queued (names its status)"}},
)
def cancel_message(
    message_id: str, request: Request, who: Principal = principal_of(*SENDERS)
) -> MessageOut:
    """Cancel a message not yet handed to a worker (``queued``)."""
    return container(request).cancellation.cancel_message(who, message_id)


@router.get("/messages/{message_id}", tags=["messages"], response_model_by_alias=True)
def get_message(
    message_id: str, request: Request, who: Principal = principal_of(*ALL_ROLES)
) -> MessageOut:
    return container(request).tracking.get(who.org_id, message_id)


@router.get("/messages", tags=["messages"])
def list_messages(
    request: Request,
    configuration_id: str | None = None,
    status: str | None = None,
    to: str | None = Query(
        None, description="recipient, any format", json_schema_extra={"pattern": r"\d"}
    ),
    request_id: str | None = None,
    created_after: IsoDateTime | None = None,
    created_before: IsoDateTime | None = None,
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    who: Principal = principal_of(*ALL_ROLES),
) -> Page[MessageOut]:
    c = container(request)
    filters = MessageFilter(
        configuration_id=configuration_id,
        status=status,
        to=to,
        request_id=request_id,
        created_after=created_after,
        created_before=created_before,
        default_region=c.settings.default_region,
    )
    return c.tracking.list(who.org_id, filters, cursor, limit)


@router.get("/timeline/{regarding_object_id}", tags=["messages"])
def timeline(
    regarding_object_id: str,
    request: Request,
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    who: Principal = principal_of(*ALL_ROLES),
) -> Page[MessageOut]:
    return container(request).tracking.timeline(who.org_id, regarding_object_id, cursor, limit)
