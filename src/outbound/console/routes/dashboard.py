"""The dashboard: how sending went over the last days, and what needs attention now."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from outbound.console.access import Viewer, console_router, state_of, viewer_of
from outbound.console.i18n import N_
from outbound.console.nav import MANAGERS
from outbound.console.rendering import render
from outbound.services.dashboard import FAILURE_WARNING_RATE, SUMMARY_DAYS

__all__ = ["STAGE_LABELS", "STATUS_COLOURS", "router"]

STATUS_COLOURS = {
    "queued": "#627d98",
    "sending": "#2563eb",
    "sent": "#0d9488",
    "delivered": "#15803d",
    "undelivered": "#dc2626",
    "failed": "#991b1b",
    "skipped": "#d97706",
    "rejected": "#7c2d12",
    "canceled": "#a16207",
}
"""The status colours of console.css, for the chart."""
STAGE_LABELS = {
    "requested": N_("Requested"),
    "sent": N_("Sent"),
    "delivered": N_("Delivered"),
    "failed": N_("Failed"),
}

router = console_router()


@router.get("/dashboard")
async def dashboard(request: Request, who: Viewer = viewer_of(*MANAGERS)) -> Response:
    c = request.app.state.container
    t = state_of(request).t
    summary = await run_in_threadpool(c.dashboard.summary, who.org_id)
    now: datetime = c.clock.now()
    chart = {
        "x": [int(hour.timestamp()) for hour in summary.hourly.hours],
        "series": [
            {
                "label": t.gettext(STAGE_LABELS.get(stage, stage)),
                "color": STATUS_COLOURS.get(stage, "#627d98"),
                "values": values,
            }
            for stage, values in summary.hourly.counts.items()
        ],
        "zone": t.zone.key,
        "time_label": t.gettext("When"),
        "locale": (t.locale or t.language).replace("_", "-"),
    }
    return render(
        request,
        "dashboard.html",
        {
            "summary": summary,
            "totals": summary.totals,
            "chart": chart,
            "days": SUMMARY_DAYS,
            "warning_rate": FAILURE_WARNING_RATE,
            "oldest_wait": (now - summary.oldest_due) if summary.oldest_due else None,
        },
    )
