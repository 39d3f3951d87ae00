"""Flows and their runs: the list, a flow's document in an editor (its faults shown with
their lines, from the same parser as ``POST /v1/flows``), enabling and disabling, running it
now (over its records or an uploaded CSV list), a run's progress refreshed every second while
it goes, cancelling it, and the past runs with their counts and errors."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import IO, Any

import anyio
from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData, UploadFile

from outbound.console.access import Viewer, console_router, state_of, viewer_of
from outbound.console.i18n import N_
from outbound.console.nav import ADMINS
from outbound.console.rendering import render
from outbound.errors import (
    ConflictError,
    FieldError,
    FlowDefinitionError,
    InvalidRequestError,
)
from outbound.schemas import FlowOut, FlowRunIn, FlowRunOut

__all__ = ["router"]

router = console_router()

MAX_DOCUMENT_CHARS = 256 * 1024
ACTIVE = ("pending", "running")
NOTICES = {
    "saved": N_("Flow saved."),
    "valid": N_("The document is valid."),
    "enabled": N_("Flow enabled."),
    "disabled": N_("Flow disabled."),
}
NEW_FLOW = """\
name: my-flow
description: What this flow is for
configuration: {configuration}
trigger:
  type: instant
source:
  records: contacts
conditions:
  - field: contact.custom.city
    op: eq
    value: Lyon
"""


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _faults(exc: Exception) -> list[FieldError]:
    if isinstance(exc, FlowDefinitionError):
        return list(exc.errors)
    if isinstance(exc, InvalidRequestError | ConflictError):
        return [FieldError(exc.field or "", None, exc.message)]
    raise exc


def _editor(
    request: Request,
    who: Viewer,
    flow: FlowOut | None,
    source: str,
    *,
    faults: list[FieldError] | None = None,
    notice: str | None = None,
    run_error: str | None = None,
    status: int = 200,
) -> Response:
    c = request.app.state.container
    runs = c.flows.list_runs(who.org_id, flow.id, None, 20).data if flow else []
    faults = faults or []
    lines = {fault.line for fault in faults if fault.line is not None}
    return render(
        request,
        "flow.html",
        {
            "flow": flow,
            "source": source,
            "faults": sorted(faults, key=lambda f: (f.line is None, f.line or 0)),
            "numbered": list(enumerate(source.splitlines(), start=1)) if lines else [],
            "fault_lines": lines,
            "runs": runs,
            "notice": notice,
            "run_error": run_error,
        },
        status=status,
    )


@router.get("/flows")
def list_flows(request: Request, who: Viewer = viewer_of(*ADMINS)) -> Response:
    flows = request.app.state.container.flows.list(who.org_id, None, 500).data
    return render(request, "flows.html", {"flows": flows})


@router.get("/flows/new")
def new_flow(request: Request, who: Viewer = viewer_of(*ADMINS)) -> Response:
    c = request.app.state.container
    configs = c.configurations.list(who.org_id, None, 1).data
    name = configs[0].name if configs else "the name or ID of an outbound configuration"
    return _editor(request, who, None, NEW_FLOW.format(configuration=name))


@router.post("/flows/new")
async def save_new_flow(request: Request, who: Viewer = viewer_of(*ADMINS)) -> Response:
    return await _save(request, who, None)


@router.get("/flows/{flow_id}")
def flow_page(
    request: Request, flow_id: str, done: str = "", who: Viewer = viewer_of(*ADMINS)
) -> Response:
    flow = request.app.state.container.flows.get(who.org_id, flow_id)
    notice = state_of(request).t.gettext(NOTICES[done]) if done in NOTICES else None
    return _editor(request, who, flow, flow.source, notice=notice)


@router.post("/flows/{flow_id}")
async def save_flow(request: Request, flow_id: str, who: Viewer = viewer_of(*ADMINS)) -> Response:
    flow = request.app.state.container.flows.get(who.org_id, flow_id)
    return await _save(request, who, flow)


async def _save(request: Request, who: Viewer, flow: FlowOut | None) -> Response:
    c = request.app.state.container
    form = await request.form()
    source = _text(form, "source").replace("\r\n", "\n")
    check_only = _text(form, "action") == "check"
    t = state_of(request).t
    try:
        if len(source) > MAX_DOCUMENT_CHARS:
            raise InvalidRequestError(
                t.gettext("A flow document may be at most 256 KiB."), field="source"
            )
        if "\x00" in source:
            raise InvalidRequestError(N_("must not contain the NUL character"), field="source")
        if check_only:
            await anyio.to_thread.run_sync(c.flows.validate, who.org_id, source)
            return _editor(request, who, flow, source, notice=t.gettext(NOTICES["valid"]))
        saved, _created = await anyio.to_thread.run_sync(c.flows.apply, who.org_id, source)
    except (FlowDefinitionError, InvalidRequestError, ConflictError) as exc:
        return _editor(request, who, flow, source, faults=_faults(exc), status=422)
    return RedirectResponse(f"/flows/{saved.id}?done=saved", status_code=303)


@router.post("/flows/{flow_id}/enabled")
async def set_enabled(request: Request, flow_id: str, who: Viewer = viewer_of(*ADMINS)) -> Response:
    form = await request.form()
    enabled = _text(form, "enabled") == "1"
    flow = request.app.state.container.flows.set_enabled(who.org_id, flow_id, enabled)
    done = "enabled" if enabled else "disabled"
    return RedirectResponse(f"/flows/{flow.id}?done={done}", status_code=303)


def _csv_lines(stream: IO[bytes]) -> Iterator[str]:
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


@router.post("/flows/{flow_id}/runs")
async def run_now(request: Request, flow_id: str, who: Viewer = viewer_of(*ADMINS)) -> Response:
    c = request.app.state.container
    flow = c.flows.get(who.org_id, flow_id)
    form = await request.form()
    upload = form.get("list")
    try:
        if isinstance(upload, UploadFile) and upload.filename:
            lines = _csv_lines(upload.file)
            run: FlowRunOut = await anyio.to_thread.run_sync(
                lambda: c.flows.start_run(who.org_id, flow.id, None, csv_lines=lines)
            )
        else:
            run = await anyio.to_thread.run_sync(
                lambda: c.flows.start_run(who.org_id, flow.id, FlowRunIn())
            )
    except (InvalidRequestError, ConflictError) as exc:
        return _editor(request, who, flow, flow.source, run_error=exc.message, status=422)
    finally:
        if isinstance(upload, UploadFile):
            await upload.close()
    return RedirectResponse(f"/flows/runs/{run.id}", status_code=303)


def _run_context(request: Request, who: Viewer, run_id: str) -> dict[str, Any]:
    c = request.app.state.container
    run = c.flows.get_run(who.org_id, run_id)
    return {"run": run, "active": run.status.value in ACTIVE}


@router.get("/flows/runs/{run_id}")
def run_page(request: Request, run_id: str, who: Viewer = viewer_of(*ADMINS)) -> Response:
    context = _run_context(request, who, run_id)
    flow = request.app.state.container.flows.get(who.org_id, context["run"].flow_id)
    return render(request, "flow_run.html", {**context, "flow": flow})


@router.get("/flows/runs/{run_id}/progress")
def run_progress(request: Request, run_id: str, who: Viewer = viewer_of(*ADMINS)) -> Response:
    """The run's progress, which htmx swaps in every second while the run goes."""
    return render(request, "_flow_run_progress.html", _run_context(request, who, run_id))


@router.post("/flows/runs/{run_id}/cancel")
def cancel_run(request: Request, run_id: str, who: Viewer = viewer_of(*ADMINS)) -> Response:
    request.app.state.container.flows.cancel_run(who.org_id, run_id)
    return RedirectResponse(f"/flows/runs/{run_id}", status_code=303)
