"""Flows API: apply flow documents, run flows, follow and cancel their runs."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from outbound.domain.roles import Role
from outbound.errors import InvalidRequestError, UnsupportedMediaTypeError
from outbound.schemas import FlowOut, FlowRunIn, FlowRunOut, Page
from outbound.services.auth import Principal
from outbound.services.contact_import import text_lines
from outbound.texts import N_
from outbound.web.deps import READERS, container, principal_of
from outbound.web.streaming import blocking_chunks

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["flows"])
ADMIN = (Role.ADMIN,)
RUNNERS = (Role.ADMIN, Role.SENDER)
Cursor = Query(None, description="next_cursor of the previous page")
Limit = Query(50, ge=1, le=500)
MAX_DOCUMENT_BYTES = 256 * 1024
_DOCUMENT_TYPES = {
    "application/yaml": "yaml",
    "application/x-yaml": "yaml",
    "text/yaml": "yaml",
    "text/x-yaml": "yaml",
    "application/json": "json",
    "text/plain": "yaml",
    "": "yaml",
}
_DOCUMENT_BODY = {
    "requestBody": {
        "required": True,
        "description": "A flow document (YAML or JSON); see docs/flows.md.",
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _document(request: Request) -> tuple[str, str]:
    media = _media_type(request)
    if media not in _DOCUMENT_TYPES:
        raise UnsupportedMediaTypeError(
            N_(
                "unsupported Content-Type %(media)r: send the flow as application/yaml or "
                "application/json",
                media=media,
            ),
            field="Content-Type",
        )
    raw = await request.body()
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InvalidRequestError(
            N_("a flow document may be at most %(limit)s KiB", limit=MAX_DOCUMENT_BYTES // 1024),
            field="body",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(N_("the document must be UTF-8 text"), field="body") from exc
    if "\x00" in text:
        raise InvalidRequestError(N_("must not contain the NUL character (U+0000)"), field="body")
    return text, _DOCUMENT_TYPES[media]


@router.post("/flows", status_code=201, openapi_extra=_DOCUMENT_BODY)
async def apply_flow(
    request: Request,
    response: Response,
    dry_run: bool = Query(False, description="Validate only; save nothing."),
    who: Principal = principal_of(*ADMIN),
) -> FlowOut | dict[str, Any]:
    """Create a flow, or update the flow of the same name (200)."""
    c = container(request)
    text, fmt = await _document(request)
    if dry_run:
        definition = await asyncio.to_thread(c.flows.validate, who.org_id, text)
        response.status_code = 200
        return {"valid": True, "definition": definition.to_dict()}
    flow, created = await asyncio.to_thread(c.flows.apply, who.org_id, text, source_format=fmt)
    if not created:
        response.status_code = 200
    return flow


@router.get("/flows")
def list_flows(
    request: Request,
    cursor: str | None = Cursor,
    limit: int = Limit,
    trigger_type: str | None = Query(None, pattern="^(automatic|instant|scheduled)$"),
    who: Principal = principal_of(*READERS),
) -> Page[FlowOut]:
    return container(request).flows.list(who.org_id, cursor, limit, trigger_type=trigger_type)


@router.get("/flows/{flow}")
def get_flow(flow: str, request: Request, who: Principal = principal_of(*READERS)) -> FlowOut:
    """A flow by its id or its name."""
    return container(request).flows.get(who.org_id, flow)


@router.post("/flows/{flow}/disable")
def disable_flow(flow: str, request: Request, who: Principal = principal_of(*ADMIN)) -> FlowOut:
    return container(request).flows.set_enabled(who.org_id, flow, False)


@router.post("/flows/{flow}/enable")
def enable_flow(flow: str, request: Request, who: Principal = principal_of(*ADMIN)) -> FlowOut:
    return container(request).flows.set_enabled(who.org_id, flow, True)


@router.delete("/flows/{flow}", status_code=204)
def delete_flow(flow: str, request: Request, who: Principal = principal_of(*ADMIN)) -> Response:
    container(request).flows.delete(who.org_id, flow)
    return Response(status_code=204)


@router.post(
    "/flows/{flow}/runs",
    status_code=202,
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {"schema": FlowRunIn.model_json_schema()},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
async def start_run(
    flow: str, request: Request, who: Principal = principal_of(*RUNNERS)
) -> FlowRunOut:
    """Run an instant or scheduled flow now: JSON (extra conditions) or a CSV list."""
    c = container(request)
    media = _media_type(request)
    if media == "text/csv":
        lines = text_lines(blocking_chunks(request.stream()))
        run = partial(c.flows.start_run, who.org_id, flow, None, csv_lines=lines)
        return await anyio.to_thread.run_sync(run)
    if media not in {"application/json", ""}:
        raise UnsupportedMediaTypeError(
            N_(
                "unsupported Content-Type %(media)r: send application/json or text/csv", media=media
            ),
            field="Content-Type",
        )
    raw = await request.body()
    try:
        data = FlowRunIn.model_validate_json(raw) if raw.strip() else FlowRunIn()
    except ValidationError as exc:
        # The same 422 shape as every other body: the field named, in the body.
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from exc
    return await asyncio.to_thread(c.flows.start_run, who.org_id, flow, data)


@router.get("/flows/{flow}/runs")
def list_runs(
    flow: str,
    request: Request,
    cursor: str | None = Cursor,
    limit: int = Limit,
    who: Principal = principal_of(*READERS),
) -> Page[FlowRunOut]:
    return container(request).flows.list_runs(who.org_id, flow, cursor, limit)


@router.get("/flow-runs/{run_id}")
def get_run(run_id: str, request: Request, who: Principal = principal_of(*READERS)) -> FlowRunOut:
    """A run's status, counts, progress and first errors."""
    return container(request).flows.get_run(who.org_id, run_id)


@router.post("/flow-runs/{run_id}/cancel")
def cancel_run(
    run_id: str, request: Request, who: Principal = principal_of(*RUNNERS)
) -> FlowRunOut:
    """Stop a run: what was sent stays sent; nothing more goes out."""
    return container(request).flows.cancel_run(who.org_id, run_id)
