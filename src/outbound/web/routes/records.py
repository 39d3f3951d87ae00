"""Records API: contacts (with CSV import), cases, and events."""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from outbound.domain.roles import Role
from outbound.errors import UnsupportedMediaTypeError
from outbound.schemas import (
    CaseCreate,
    CaseOut,
    CaseStatus,
    CaseUpdate,
    ContactCreate,
    ContactOut,
    ContactUpdate,
    ErasureIn,
    EventIn,
    EventOut,
    ImportResult,
    Page,
)
from outbound.services.auth import Principal, require_role
from outbound.services.contact_import import text_lines
from outbound.texts import N_
from outbound.web.deps import ALL_ROLES, SENDERS, container, principal_of
from outbound.web.streaming import blocking_chunks

__all__ = ["router"]

router = APIRouter(prefix="/v1")
Cursor = Query(None, description="next_cursor of the previous page")
Limit = Query(50, ge=1, le=500)
CSV_TYPES = frozenset({"text/csv", "application/csv", "text/plain"})


# --- contacts -----------------------------------------------------------------------------


@router.post("/contacts", status_code=201, tags=["contacts"])
def post_contact(
    data: ContactCreate, request: Request, who: Principal = principal_of(*SENDERS)
) -> ContactOut:
    return container(request).records.create_contact(who.org_id, data)


@router.get("/contacts", tags=["contacts"])
def list_contacts(
    request: Request,
    mobile_phone: str | None = Query(
        None, description="Any format; compared as E.164.", json_schema_extra={"pattern": r"\d"}
    ),
    external_id: str | None = None,
    cursor: str | None = Cursor,
    limit: int = Limit,
    who: Principal = principal_of(*ALL_ROLES),
) -> Page[ContactOut]:
    return container(request).records.list_contacts(
        who.org_id, cursor, limit, mobile_phone=mobile_phone, external_id=external_id
    )


def _csv_body(request: Request) -> None:
    media_type, _, params = request.headers.get("content-type", "").partition(";")
    if media_type.strip().lower() not in CSV_TYPES:
        raise UnsupportedMediaTypeError(
            N_("send the contacts as CSV (Content-Type: text/csv)"), field="Content-Type"
        )
    for param in params.split(";"):
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in {"utf-8", "utf8"}:
            raise UnsupportedMediaTypeError(
                N_("the CSV must be UTF-8 (charset=utf-8)"), field="Content-Type"
            )


@router.post(
    "/contacts/import",
    tags=["contacts"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "A header row, then one contact per row: external_id, name, "
            "mobile_phone, whatsapp_number, preferred_language, consent_sms, "
            "consent_whatsapp, time_zone; any other column (or custom.<name>) is a custom "
            "field.",
        }
    },
    responses={
        415: {"description": "Not CSV, or not UTF-8"},
        422: {"description": "No header, or a header without external_id or mobile_phone"},
    },
)
async def import_contacts(
    request: Request,
    dry_run: bool = Query(False, description="Validate and match only; write nothing."),
    who: Principal = principal_of(*SENDERS),
) -> ImportResult:
    """Create or update contacts from a CSV body, read as it arrives.

    A row updates the contact with its external_id, else the one with its mobile_phone, else
    creates one. Rows are committed by chunks; a bad row is reported (with its row number,
    the header being row 1) and the others are imported.
    """
    _csv_body(request)
    service = container(request).records
    lines = text_lines(blocking_chunks(request.stream()))
    run = partial(service.import_contacts, who.org_id, lines, dry_run=dry_run)
    return await anyio.to_thread.run_sync(run)


@router.get("/contacts/{contact_id}", tags=["contacts"])
def get_contact(
    contact_id: str, request: Request, who: Principal = principal_of(*ALL_ROLES)
) -> ContactOut:
    return container(request).records.get_contact(who.org_id, contact_id)


@router.patch("/contacts/{contact_id}", tags=["contacts"])
def patch_contact(
    contact_id: str,
    data: ContactUpdate,
    request: Request,
    who: Principal = principal_of(*SENDERS),
) -> ContactOut:
    return container(request).records.update_contact(who.org_id, contact_id, data)


@router.delete(
    "/contacts/{contact_id}",
    status_code=204,
    tags=["contacts"],
    responses={409: {"description": "The contact is the customer of cases"}},
)
def delete_contact(
    contact_id: str,
    request: Request,
    erase: bool = Query(
        False,
        description="Also erase the contact's numbers everywhere: messages to them (with "
        "their text), customers' messages from them, consent, conversations (admin keys)",
    ),
    who: Principal = principal_of(*SENDERS),
) -> Response:
    if erase:
        require_role(who, (Role.ADMIN,))
        return JSONResponse(container(request).retention.erase_contact(who.org_id, contact_id))
    container(request).records.delete_contact(who.org_id, contact_id)
    return Response(status_code=204)


@router.post("/erasures", tags=["contacts"])
def erase_number(
    data: ErasureIn, request: Request, who: Principal = principal_of(Role.ADMIN)
) -> JSONResponse:
    """Erase every trace of a phone number in the organisation, and any contact with it."""
    return JSONResponse(container(request).retention.erase_number(who.org_id, data.phone_number))


# --- cases --------------------------------------------------------------------------------


@router.post("/cases", status_code=201, tags=["cases"])
def post_case(
    data: CaseCreate, request: Request, who: Principal = principal_of(*SENDERS)
) -> CaseOut:
    return container(request).records.create_case(who.org_id, data)


@router.get("/cases", tags=["cases"])
def list_cases(
    request: Request,
    status: CaseStatus | None = None,
    contact_id: str | None = None,
    number: str | None = None,
    cursor: str | None = Cursor,
    limit: int = Limit,
    who: Principal = principal_of(*ALL_ROLES),
) -> Page[CaseOut]:
    return container(request).records.list_cases(
        who.org_id, cursor, limit, status=status, contact_id=contact_id, number=number
    )


@router.get("/cases/{case_id}", tags=["cases"])
def get_case(case_id: str, request: Request, who: Principal = principal_of(*ALL_ROLES)) -> CaseOut:
    return container(request).records.get_case(who.org_id, case_id)


@router.patch("/cases/{case_id}", tags=["cases"])
def patch_case(
    case_id: str, data: CaseUpdate, request: Request, who: Principal = principal_of(*SENDERS)
) -> CaseOut:
    return container(request).records.update_case(who.org_id, case_id, data)


@router.delete("/cases/{case_id}", status_code=204, tags=["cases"])
def delete_case(
    case_id: str, request: Request, who: Principal = principal_of(*SENDERS)
) -> Response:
    container(request).records.delete_case(who.org_id, case_id)
    return Response(status_code=204)


_STATUS_CHANGE: dict[int | str, dict[str, Any]] = {
    409: {"description": "The case's status does not allow this change"}
}


@router.post("/cases/{case_id}/resolve", tags=["cases"], responses=_STATUS_CHANGE)
def resolve_case(
    case_id: str, request: Request, who: Principal = principal_of(*SENDERS)
) -> CaseOut:
    """Resolve an active case (raises ``case.resolved``)."""
    return container(request).records.resolve_case(who.org_id, case_id)


@router.post("/cases/{case_id}/cancel", tags=["cases"], responses=_STATUS_CHANGE)
def cancel_case(case_id: str, request: Request, who: Principal = principal_of(*SENDERS)) -> CaseOut:
    """Cancel an active case (raises ``case.canceled``)."""
    return container(request).records.cancel_case(who.org_id, case_id)


@router.post("/cases/{case_id}/reactivate", tags=["cases"], responses=_STATUS_CHANGE)
def reactivate_case(
    case_id: str, request: Request, who: Principal = principal_of(*SENDERS)
) -> CaseOut:
    """Make a resolved or canceled case active again (raises ``case.reactivated``)."""
    return container(request).records.reactivate_case(who.org_id, case_id)


# --- events -------------------------------------------------------------------------------


@router.post("/events", status_code=202, tags=["events"])
def post_event(
    data: EventIn, request: Request, who: Principal = principal_of(*SENDERS)
) -> EventOut:
    """Tell flows that something happened in another system (``order.delayed``)."""
    return container(request).records.post_event(who.org_id, data)


@router.get("/events", tags=["events"])
def list_events(
    request: Request,
    type: str | None = Query(None, description="Only events of this type."),
    record_id: str | None = Query(None, description="Only events about this record."),
    cursor: str | None = Cursor,
    limit: int = Limit,
    who: Principal = principal_of(*SENDERS),
) -> Page[EventOut]:
    """Events, newest first."""
    return container(request).records.list_events(
        who.org_id, cursor, limit, type=type, record_id=record_id
    )
