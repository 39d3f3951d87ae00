"""Reports: messages by stage, the funnel, agents; as JSON or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from outbound.domain.roles import Role
from outbound.errors import InvalidRequestError
from outbound.schemas.reports import AgentReport, FunnelReport, MessageReport
from outbound.services.auth import Principal
from outbound.services.reports import ReportQuery, parse_group_by, parse_range, parse_zone
from outbound.texts import N_
from outbound.web.deps import container, principal_of

__all__ = ["csv_rows", "router", "wants_csv"]

router = APIRouter(prefix="/v1/reports", tags=["reports"])
REPORTERS = (Role.ADMIN, Role.SUPERVISOR, Role.SENDER)
_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}
_FILTERS = ("configuration_id", "template_id", "channel_id", "flow_run_id", "locale", "country")


def wants_csv(request: Request, fmt: str | None) -> bool:
    """``?format=csv``, or an ``Accept`` header that prefers ``text/csv``."""
    if fmt is not None:
        if fmt not in ("json", "csv"):
            raise InvalidRequestError(N_("json or csv"), field="format")
        return fmt == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


def _query(
    request: Request,
    since: str | None,
    until: str | None,
    group_by: str | None,
    time_zone: str | None,
) -> ReportQuery:
    zone = parse_zone(time_zone)
    start, end = parse_range(since, until, zone, container(request).clock.now())
    filters = {
        name: value for name in _FILTERS if (value := request.query_params.get(name)) is not None
    }
    return ReportQuery(start, end, parse_group_by(group_by), zone, filters)


def _flatten(group: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in group.items():
        if isinstance(value, dict) and name.endswith("_by_reason"):
            kind = name.removesuffix("_by_reason")
            for code, n in value.items():
                flat[f"{kind}:{code}"] = n
        elif isinstance(value, dict):
            for part, n in value.items():
                flat[f"{name}_{part}"] = n
        elif isinstance(value, list):
            for entry in value:
                flat[f"failed:{entry['provider'] or ''}:{entry['code'] or ''}"] = entry["count"]
        else:
            flat[name] = value
    return flat


def csv_rows(rows: list[dict[str, Any]]) -> Iterator[str]:
    """The rows as CSV lines; the header is every key any row has, in order of appearance."""
    flat = [_flatten(row) for row in rows]
    header = list(dict.fromkeys(key for row in flat for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, restval="", lineterminator="\n")
    writer.writeheader()
    for row in flat:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    yield buffer.getvalue()


def _answer(
    request: Request, report: dict[str, Any], rows_key: str, fmt: str | None, name: str
) -> Response:
    if not wants_csv(request, fmt):
        return JSONResponse(report)
    rows = list(report[rows_key])
    if "totals" in report:
        rows.append({**dict.fromkeys(report["group_keys"], "total"), **report["totals"]})
    return StreamingResponse(
        csv_rows(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get("/messages", response_model=MessageReport, responses=_CSV)
def message_report(
    request: Request,
    since: str | None = Query(None, description="date or time; a date is local midnight"),
    until: str | None = Query(None, description="date or time (excluded); default now"),
    group_by: str | None = Query(
        None,
        description="comma-separated: configuration, template, channel, provider, "
        "channel_type, flow_run, locale, country, day, hour",
    ),
    time_zone: str | None = Query(None, description="IANA zone for days and hours (UTC)"),
    format: str | None = Query(None, description="json (default) or csv"),
    who: Principal = principal_of(*REPORTERS),
) -> Response:
    """Messages accepted in the range: requested, skipped and rejected by reason, sent,
    delivered, undelivered, failed by error code, rates, latencies, segments and cost."""
    query = _query(request, since, until, group_by, time_zone)
    report = container(request).reports.messages(who.org_id, query)
    return _answer(request, report, "groups", format, "message-report")


@router.get("/funnel", response_model=FunnelReport, responses=_CSV)
def funnel_report(
    request: Request,
    by: str = Query("configuration", description="configuration or flow_run"),
    since: str | None = None,
    until: str | None = None,
    time_zone: str | None = None,
    format: str | None = None,
    who: Principal = principal_of(*REPORTERS),
) -> Response:
    """sent → delivered → replied → answered → closed, per configuration or flow run."""
    query = _query(request, since, until, None, time_zone)
    report = container(request).reports.funnel(who.org_id, query, by)
    return _answer(request, report, "groups", format, "funnel")


@router.get("/agents", response_model=AgentReport, responses=_CSV)
def agent_report(
    request: Request,
    since: str | None = None,
    until: str | None = None,
    time_zone: str | None = None,
    format: str | None = None,
    who: Principal = principal_of(Role.ADMIN, Role.SUPERVISOR),
) -> Response:
    """Conversations opened in the range by agent and by queue: counts, first wait, first
    response and resolution times."""
    query = _query(request, since, until, None, time_zone)
    report = container(request).reports.agents(who.org_id, query)
    if wants_csv(request, format):
        rows = [{"by": "agent", **row} for row in report["agents"]] + [
            {"by": "queue", **row} for row in report["queues"]
        ]
        return _answer(request, {"rows": rows}, "rows", "csv", "agents")
    return JSONResponse(report)
