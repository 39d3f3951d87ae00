"""Reports: the message report by a chosen group (and a second one within it) with a chart
over time, the funnel and the agents report, each downloadable as the API's CSV.

Every figure comes from :class:`~outbound.services.reports.ReportService`, as for
``GET /v1/reports/messages|funnel|agents``, in the user's time zone; the CSV files are written
by the API's own writer, so both give the same columns.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import Query, Request, Response
from fastapi.responses import StreamingResponse

from outbound.console.access import Viewer, console_router, state_of, viewer_of
from outbound.console.i18n import N_, Translator
from outbound.console.nav import MANAGERS
from outbound.console.rendering import render
from outbound.console.routes.dashboard import STATUS_COLOURS
from outbound.errors import InvalidRequestError, NotFoundError
from outbound.services.reports import ReportQuery, parse_range
from outbound.web.routes.reports import csv_rows

__all__ = ["GROUP_CHOICES", "router"]

GROUP_CHOICES = (
    "day",
    "hour",
    "configuration",
    "template",
    "channel",
    "provider",
    "flow_run",
    "locale",
    "country",
)
"""What the screen may group the message report by (as the API's ``group_by``)."""
CHART_STAGES = {
    "requested": N_("Requested"),
    "sent": N_("Sent"),
    "delivered": N_("Delivered"),
    "failed": N_("Failed"),
}
"""The stages the chart draws, with their labels."""
HOURLY_CHART_DAYS = 3
"""Ranges up to this many days are charted by hour, longer ones by day."""
FILTERS = ("configuration_id", "channel_id", "flow_run_id")
NAMES_LIMIT = 500
RUN_LOOKUPS = 50

router = console_router()


class _Form:
    """The report form's values as given, and the query they make."""

    def __init__(
        self,
        request: Request,
        since: str | None,
        until: str | None,
        group_by: str | None,
        funnel_by: str | None,
        filters: dict[str, str],
        then_by: str | None = None,
    ) -> None:
        c = request.app.state.container
        t = state_of(request).t
        self.zone = t.zone
        now: datetime = c.clock.now()
        today = now.astimezone(self.zone).date()
        self.since = since or (today - timedelta(days=6)).isoformat()
        self.until = until or today.isoformat()
        self.group_by = group_by if group_by in GROUP_CHOICES else "day"
        # A second grouping within the first; none when it repeats it or mixes day and hour.
        self.then_by = then_by if then_by in GROUP_CHOICES else ""
        if self.then_by == self.group_by or {self.group_by, self.then_by} == {"day", "hour"}:
            self.then_by = ""
        self.funnel_by = funnel_by if funnel_by == "flow_run" else "configuration"
        self.filters = filters
        # The form's "to" day is included: the range ends at the next local midnight.
        until_value = self.until
        if len(until_value) == 10:
            try:
                until_value = (date.fromisoformat(until_value) + timedelta(days=1)).isoformat()
            except ValueError:
                pass
        self.start, self.end = parse_range(self.since, until_value, self.zone, now)

    @property
    def groups(self) -> list[str]:
        """The message report's grouping: the first, then the second when one is chosen."""
        return [self.group_by, self.then_by] if self.then_by else [self.group_by]

    def query(self, group_by: list[str]) -> ReportQuery:
        return ReportQuery(self.start, self.end, group_by, self.zone, self.filters)

    def params(self, **changes: str) -> str:
        values = {
            "since": self.since,
            "until": self.until,
            "group_by": self.group_by,
            "then_by": self.then_by,
            "funnel_by": self.funnel_by,
            **self.filters,
            **changes,
        }
        return urlencode({k: v for k, v in values.items() if v})


def _filters(request: Request) -> dict[str, str]:
    return {
        name: value[:64]
        for name in FILTERS
        if (value := request.query_params.get(name, "").strip())
    }


def _names(request: Request, org_id: str, runs: set[str]) -> dict[str, dict[str, str]]:
    """What each id of a group is called: configurations, templates, channels, flow runs."""
    c = request.app.state.container
    t = state_of(request).t
    names: dict[str, dict[str, str]] = {
        "configuration_id": {
            x.id: x.name for x in c.configurations.list(org_id, None, NAMES_LIMIT).data
        },
        "template_id": {x.id: x.name for x in c.templates.list(org_id, None, NAMES_LIMIT).data},
        "channel_id": {x.id: x.name for x in c.channels.list(org_id, None, NAMES_LIMIT).data},
        "flow_run_id": {},
    }
    if runs:
        flows = {f.id: f.name for f in c.flows.list(org_id, None, NAMES_LIMIT).data}
        for run_id in sorted(runs)[:RUN_LOOKUPS]:
            try:
                run = c.flows.get_run(org_id, run_id)
            except NotFoundError:
                continue
            started = t.datetime(run.started_at or run.due_at, "short")
            names["flow_run_id"][run_id] = f"{flows.get(run.flow_id, run.flow_id)} · {started}"
    return names


def _label(key: str, value: Any, names: dict[str, dict[str, str]], t: Translator) -> str:
    if value is None or value == "":
        return t.gettext("(none)")
    if key in names:
        return names[key].get(value, str(value)[:8])
    if key == "locale":
        return f"{t.language_name(value)} ({value})"
    if key == "hour":
        return t.datetime(datetime.fromisoformat(value), "short")
    if key == "day":
        return t.date(date.fromisoformat(value))
    return str(value)


def _stage(group: dict[str, Any] | None, stage: str) -> int:
    if group is None:
        return 0
    value = int(group[stage])
    return value + int(group["undelivered"]) if stage == "failed" else value


def _chart(request: Request, form: _Form, org_id: str) -> dict[str, Any]:
    """Requested, sent, delivered and failed over the range, by hour or by day."""
    c = request.app.state.container
    t = state_of(request).t
    period = "hour" if form.end - form.start <= timedelta(days=HOURLY_CHART_DAYS) else "day"
    report = c.reports.messages(org_id, form.query([period]))
    by_label = {g[period]: g for g in report["groups"]}
    slots: list[tuple[int, str]] = []
    moment = form.start
    step = timedelta(hours=1)
    while moment < form.end:
        local = moment.astimezone(form.zone)
        if period == "hour":
            slots.append((int(moment.timestamp()), local.isoformat()))
        else:
            day = local.date().isoformat()
            if not slots or slots[-1][1] != day:
                midnight = datetime.fromisoformat(day).replace(tzinfo=form.zone)
                slots.append((int(midnight.timestamp()), day))
        moment += step
    return {
        "x": [x for x, _ in slots],
        "series": [
            {
                "label": t.gettext(label_of),
                "color": STATUS_COLOURS.get(stage, "#627d98"),
                "values": [_stage(by_label.get(label), stage) for _, label in slots],
            }
            for stage, label_of in CHART_STAGES.items()
        ],
        "empty": not report["groups"],
        "zone": form.zone.key,
        "time_label": t.gettext("When"),
        "locale": (t.locale or t.language).replace("_", "-"),
    }


def _agent_names(request: Request, org_id: str) -> tuple[dict[str, str], dict[str, str]]:
    c = request.app.state.container
    users = {u.id: u.name or u.email for u in c.users.list(org_id, None, NAMES_LIMIT).data}
    queues = {q.id: q.name for q in c.queues.list_queues(org_id)}
    return users, queues


@router.get("/reports")
def reports(
    request: Request,
    since: str | None = Query(None, max_length=32),
    until: str | None = Query(None, max_length=32),
    group_by: str | None = Query(None, max_length=20),
    then_by: str | None = Query(None, max_length=20),
    funnel_by: str | None = Query(None, max_length=20),
    who: Viewer = viewer_of(*MANAGERS),
) -> Response:
    c = request.app.state.container
    t = state_of(request).t
    errors: dict[str, str] = {}
    context: dict[str, Any] = {}
    try:
        form = _Form(request, since, until, group_by, funnel_by, _filters(request), then_by)
    except InvalidRequestError as exc:
        errors[exc.field or ""] = exc.message
        form = _Form(request, None, None, group_by, funnel_by, _filters(request), then_by)
        form.since, form.until = since or form.since, until or form.until
    if not errors:
        report = c.reports.messages(who.org_id, form.query(form.groups))
        funnel = c.reports.funnel(who.org_id, form.query([]), form.funnel_by)
        agents = c.reports.agents(who.org_id, form.query([]))
        runs = {g["flow_run_id"] for g in report["groups"] if g.get("flow_run_id")} | {
            g["flow_run_id"] for g in funnel["groups"] if g.get("flow_run_id")
        }
        names = _names(request, who.org_id, runs)
        keys = report["group_keys"]
        users, queues = _agent_names(request, who.org_id)
        context = {
            "report": report,
            "rows": [([_label(k, g[k], names, t) for k in keys], g) for g in report["groups"]],
            "funnel_rows": [
                (_label(form.funnel_by + "_id", g[form.funnel_by + "_id"], names, t), g)
                for g in funnel["groups"]
            ],
            "agents": [(users.get(a["user_id"] or "", ""), a) for a in agents["agents"]],
            "queues": [(queues.get(q["queue_id"] or "", ""), q) for q in agents["queues"]],
            "chart": _chart(request, form, who.org_id),
        }
    configurations = c.configurations.list(who.org_id, None, NAMES_LIMIT).data
    channels = c.channels.list(who.org_id, None, NAMES_LIMIT).data
    return render(
        request,
        "reports.html",
        {
            "form": form,
            "errors": errors,
            "groups": GROUP_CHOICES,
            "configurations": configurations,
            "channels": channels,
            **context,
        },
    )


def _csv(rows: list[dict[str, Any]], name: str) -> Response:
    return StreamingResponse(
        csv_rows(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get("/reports/{name}.csv")
def report_csv(
    request: Request,
    name: str,
    since: str | None = Query(None, max_length=32),
    until: str | None = Query(None, max_length=32),
    group_by: str | None = Query(None, max_length=20),
    then_by: str | None = Query(None, max_length=20),
    funnel_by: str | None = Query(None, max_length=20),
    who: Viewer = viewer_of(*MANAGERS),
) -> Response:
    """The report of the screen as the API's CSV (``?format=csv``)."""
    c = request.app.state.container
    try:
        form = _Form(request, since, until, group_by, funnel_by, _filters(request), then_by)
    except InvalidRequestError as exc:
        raise NotFoundError(exc.message) from exc
    if name == "messages":
        report = c.reports.messages(who.org_id, form.query(form.groups))
        total = {**dict.fromkeys(report["group_keys"], "total"), **report["totals"]}
        return _csv([*report["groups"], total], "message-report")
    if name == "funnel":
        return _csv(
            c.reports.funnel(who.org_id, form.query([]), form.funnel_by)["groups"], "funnel"
        )
    if name == "agents":
        agents = c.reports.agents(who.org_id, form.query([]))
        rows = [{"by": "agent", **row} for row in agents["agents"]] + [
            {"by": "queue", **row} for row in agents["queues"]
        ]
        return _csv(rows, "agents")
    raise NotFoundError(N_("no such report"))
