"""Contacts and cases: the contacts (found by mobile number or external ID), one contact's
form with their cases, a CSV import with its counts and refused rows, and the cases (by
status or number). The same services as ``/v1/contacts`` and ``/v1/cases``; editing and
importing are for admins (as the API's ``sender`` keys)."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import IO, Any

import anyio
from fastapi import Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from outbound.console.access import Viewer, console_router, state_of, viewer_of
from outbound.console.i18n import validation_text
from outbound.console.nav import ADMINS, MANAGERS
from outbound.console.rendering import render
from outbound.domain.cases import CaseStatus
from outbound.domain.users import UserRole
from outbound.errors import ConflictError, InvalidRequestError
from outbound.schemas import ContactOut, ContactUpdate, ImportResult

__all__ = ["router"]

router = console_router()

PAGE = 50
FIELDS = (
    "name",
    "mobile_phone",
    "whatsapp_number",
    "external_id",
    "preferred_language",
    "time_zone",
)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _lines(stream: IO[bytes]) -> Iterator[str]:
    """The uploaded file's lines, decoded as UTF-8 (a byte-order mark dropped) as read."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    while chunk := stream.read(64 * 1024):
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        for line in lines:
            yield line + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def _contacts_page(
    request: Request,
    who: Viewer,
    q: str,
    cursor: str | None,
    *,
    result: ImportResult | None = None,
    import_error: str | None = None,
    status: int = 200,
) -> Response:
    records = request.app.state.container.records
    if q:
        # A number is looked up as a mobile number, anything else as an external ID.
        try:
            page = records.list_contacts(who.org_id, cursor, PAGE, mobile_phone=q)
        except InvalidRequestError:
            page = records.list_contacts(who.org_id, cursor, PAGE, external_id=q)
    else:
        page = records.list_contacts(who.org_id, cursor, PAGE)
    return render(
        request,
        "contacts.html",
        {
            "q": q,
            "contacts": page.data,
            "next_cursor": page.next_cursor,
            "can_edit": who.may(UserRole.ADMIN),
            "result": result,
            "import_error": import_error,
        },
        status=status,
    )


@router.get("/contacts")
def list_contacts(
    request: Request,
    q: str = Query("", max_length=200),
    cursor: str | None = Query(None, max_length=500),
    who: Viewer = viewer_of(*MANAGERS),
) -> Response:
    return _contacts_page(request, who, q.strip(), cursor)


@router.post("/contacts/import")
async def import_contacts(request: Request, who: Viewer = viewer_of(*ADMINS)) -> Response:
    records = request.app.state.container.records
    form = await request.form()
    upload = form.get("file")
    dry_run = form.get("dry_run") == "1"
    t = state_of(request).t
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _contacts_page(
            request, who, "", None, import_error=t.gettext("Choose a CSV file."), status=422
        )
    try:
        lines = _lines(upload.file)
        result: ImportResult = await anyio.to_thread.run_sync(
            lambda: records.import_contacts(who.org_id, lines, dry_run=dry_run)
        )
    except InvalidRequestError as exc:
        return _contacts_page(request, who, "", None, import_error=exc.message, status=422)
    finally:
        await upload.close()
    return _contacts_page(request, who, "", None, result=result)


def _contact_page(
    request: Request,
    who: Viewer,
    contact: ContactOut,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    records = request.app.state.container.records
    cases = records.list_cases(who.org_id, None, 100, contact_id=contact.id).data
    if values is None:
        values = {name: getattr(contact, name) or "" for name in FIELDS}
        values["consent_sms"] = contact.consent.sms
        values["consent_whatsapp"] = contact.consent.whatsapp
    return render(
        request,
        "contact.html",
        {
            "contact": contact,
            "values": values,
            "errors": errors or {},
            "cases": cases,
            "can_edit": who.may(UserRole.ADMIN),
            "notice": notice,
        },
        status=status,
    )


@router.get("/contacts/{contact_id}")
def contact_page(
    request: Request, contact_id: str, saved: bool = False, who: Viewer = viewer_of(*MANAGERS)
) -> Response:
    contact = request.app.state.container.records.get_contact(who.org_id, contact_id)
    notice = state_of(request).t.gettext("Contact saved.") if saved else None
    return _contact_page(request, who, contact, notice=notice)


@router.post("/contacts/{contact_id}")
async def save_contact(
    request: Request, contact_id: str, who: Viewer = viewer_of(*ADMINS)
) -> Response:
    records = request.app.state.container.records
    contact = records.get_contact(who.org_id, contact_id)
    form = await request.form()
    values: dict[str, Any] = {name: _text(form, name) for name in FIELDS}
    values["consent_sms"] = form.get("consent_sms") == "1"
    values["consent_whatsapp"] = form.get("consent_whatsapp") == "1"
    payload: dict[str, Any] = {name: values[name] or None for name in FIELDS}
    payload["consent"] = {"sms": values["consent_sms"], "whatsapp": values["consent_whatsapp"]}
    errors: dict[str, str] = {}
    try:
        records.update_contact(who.org_id, contact_id, ContactUpdate.model_validate(payload))
    except ValidationError as exc:
        for error in exc.errors():
            loc = error.get("loc") or ("",)
            errors[str(loc[0])] = validation_text(error)
    except (InvalidRequestError, ConflictError) as exc:
        errors[(exc.field or "").split(".")[0]] = exc.message
    else:
        return RedirectResponse(f"/contacts/{contact_id}?saved=1", status_code=303)
    return _contact_page(request, who, contact, values=values, errors=errors, status=422)


@router.get("/cases")
def list_cases(
    request: Request,
    status: str = Query("", max_length=20),
    number: str = Query("", max_length=200),
    cursor: str | None = Query(None, max_length=500),
    who: Viewer = viewer_of(*MANAGERS),
) -> Response:
    records = request.app.state.container.records
    chosen = CaseStatus(status) if status in set(CaseStatus) else None
    page = records.list_cases(
        who.org_id, cursor, PAGE, status=chosen, number=number.strip() or None
    )
    return render(
        request,
        "cases.html",
        {
            "cases": page.data,
            "next_cursor": page.next_cursor,
            "status": chosen.value if chosen else "",
            "number": number.strip(),
            "statuses": [s.value for s in CaseStatus],
            "can_edit": who.may(UserRole.ADMIN),
            "here": str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
        },
    )


@router.post("/cases/{case_id}/status")
async def set_case_status(
    request: Request, case_id: str, who: Viewer = viewer_of(*ADMINS)
) -> Response:
    """Resolve, cancel or reactivate a case (as ``POST /v1/cases/{id}/resolve`` and the
    others); a case already in that state is left as it is."""
    form = await request.form()
    wanted = _text(form, "status")
    if wanted in set(CaseStatus):
        try:
            request.app.state.container.records.set_case_status(
                who.org_id, case_id, CaseStatus(wanted)
            )
        except ConflictError:
            pass
    back = _text(form, "back")
    return RedirectResponse(back if back.startswith("/cases") else "/cases", status_code=303)
