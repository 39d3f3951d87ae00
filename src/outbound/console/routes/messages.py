"""Messages: the list with its filters, and one message with its status history."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from urllib.parse import urlencode

from fastapi import Query, Request, Response
from fastapi.responses import RedirectResponse

from outbound.console.access import Viewer, console_router, state_of, viewer_of
from outbound.console.rendering import render
from outbound.domain.statuses import TERMINAL_STATUSES, MessageStatus
from outbound.domain.users import UserRole
from outbound.errors import ConflictError, InvalidRequestError, NotFoundError
from outbound.services.tracking import MessageFilter

__all__ = ["CANCELERS", "PAGE_SIZE", "router"]

PAGE_SIZE = 50
TIMELINE_SHOWN = 20
CANCELERS = (UserRole.ADMIN,)
"""Who may cancel a queued message: as ``POST /v1/messages/{id}/cancel``, admins (sender keys
are the API's other cancelers; the console has no senders)."""

router = console_router()


def _day(value: str | None, t_zone: object, *, end: bool = False) -> datetime | None:
    """A ``YYYY-MM-DD`` of the filter form as the start (or the end) of that day in the
    user's zone."""
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None
    moment = datetime.combine(day, time.min, tzinfo=t_zone)  # type: ignore[arg-type]
    return moment + timedelta(days=1) if end else moment


@router.get("/messages")
def messages(
    request: Request,
    status: str | None = Query(None, max_length=20),
    configuration_id: str | None = Query(None, max_length=36),
    channel_id: str | None = Query(None, max_length=36),
    error_code: str | None = Query(None, max_length=64),
    to: str | None = Query(None, max_length=40),
    since: str | None = Query(None, max_length=10),
    until: str | None = Query(None, max_length=10),
    cursor: str | None = Query(None, max_length=500),
    who: Viewer = viewer_of(),
) -> Response:
    state = state_of(request)
    c = request.app.state.container
    filters_in = {
        "status": status or "",
        "configuration_id": configuration_id or "",
        "channel_id": channel_id or "",
        "error_code": (error_code or "").strip(),
        "to": to or "",
        "since": since or "",
        "until": until or "",
    }
    errors: dict[str, str] = {}
    page = None
    try:
        filters = MessageFilter(
            configuration_id=configuration_id or None,
            channel_id=channel_id or None,
            error_code=filters_in["error_code"] or None,
            status=status or None,
            to=to or None,
            created_after=_day(since, state.t.zone),
            created_before=_day(until, state.t.zone, end=True),
            default_region=c.settings.default_region,
        )
        page = c.tracking.list(who.org_id, filters, cursor or None, PAGE_SIZE)
    except InvalidRequestError as exc:
        errors[exc.field or ""] = exc.message
    configurations = c.configurations.list(who.org_id, None, 500).data
    channels = c.channels.list(who.org_id, None, 500).data
    next_url = None
    if page is not None and page.next_cursor:
        kept = {name: value for name, value in filters_in.items() if value}
        next_url = "/messages?" + urlencode({**kept, "cursor": page.next_cursor})
    return render(
        request,
        "messages.html",
        {
            "page": page,
            "filters": filters_in,
            "errors": errors,
            "statuses": [s.value for s in MessageStatus],
            "configurations": configurations,
            "channels": channels,
            "next_url": next_url,
        },
    )


def _message_context(request: Request, who: Viewer, message_id: str) -> dict[str, object]:
    c = request.app.state.container
    message = c.tracking.get(who.org_id, message_id)
    channel = configuration = None
    try:
        channel = c.channels.get(who.org_id, message.channel_id)
        if message.configuration_id:
            configuration = c.configurations.get(who.org_id, message.configuration_id)
    except NotFoundError:
        pass
    timeline = []
    if message.regarding_object_id:
        timeline = c.tracking.timeline(
            who.org_id, message.regarding_object_id, None, TIMELINE_SHOWN
        ).data
    return {
        "m": message,
        "channel": channel,
        "configuration": configuration,
        "final": message.status in {s.value for s in TERMINAL_STATUSES},
        "cancelable": message.status == MessageStatus.QUEUED.value and who.may(*CANCELERS),
        "timeline": timeline,
        "cancel_error": None,
    }


@router.get("/messages/{message_id}")
def message_page(request: Request, message_id: str, who: Viewer = viewer_of()) -> Response:
    """One message with its status history; the page refreshes its details while the
    message is on its way."""
    return render(request, "message.html", _message_context(request, who, message_id))


@router.post("/messages/{message_id}/cancel")
def cancel_message(
    request: Request, message_id: str, who: Viewer = viewer_of(*CANCELERS)
) -> Response:
    """Cancel a queued message, as ``POST /v1/messages/{id}/cancel``; a message that has
    left the queue meanwhile is shown with the reason, unchanged."""
    c = request.app.state.container
    try:
        c.cancellation.cancel_message(who.principal, message_id)
    except ConflictError:
        context = _message_context(request, who, message_id)
        context["cancel_error"] = state_of(request).t.gettext(
            "This message can no longer be canceled: it has left the queue."
        )
        return render(request, "message.html", context, status=409)
    return RedirectResponse(f"/messages/{message_id}", status_code=303)
