"""Organisation settings: the fallback queue and what a customer's message after a closed
conversation does (as ``PATCH /v1/organization``), and the sending limits that apply, which
the service's operator sets (``outbound admin set-limits``)."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from outbound.console.access import Viewer, console_router, state_of, viewer_of
from outbound.console.i18n import validation_text
from outbound.console.nav import ADMINS
from outbound.console.rendering import render
from outbound.errors import InvalidRequestError
from outbound.schemas import OrganizationRoutingUpdate
from outbound.services.auth import get_organization

__all__ = ["router"]

router = console_router()


def _page(
    request: Request,
    who: Viewer,
    *,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    c = request.app.state.container
    org = get_organization(c.db, who.org_id)
    return render(
        request,
        "settings.html",
        {
            "org": org,
            "queues": c.queues.list_queues(who.org_id),
            "max_contacts": org.max_contacts_per_request or c.settings.max_contacts_per_request,
            "hourly_quota": org.hourly_request_quota or c.settings.hourly_request_quota,
            "errors": errors or {},
            "notice": notice,
        },
        status=status,
    )


@router.get("/settings")
def settings_page(
    request: Request, saved: bool = False, who: Viewer = viewer_of(*ADMINS)
) -> Response:
    notice = state_of(request).t.gettext("Settings saved.") if saved else None
    return _page(request, who, notice=notice)


@router.post("/settings")
async def save_settings(request: Request, who: Viewer = viewer_of(*ADMINS)) -> Response:
    c = request.app.state.container
    form = await request.form()
    fallback = form.get("fallback_queue_id")
    payload: dict[str, object] = {"reopen_closed": form.get("reopen_closed") == "1"}
    if isinstance(fallback, str) and fallback:
        payload["fallback_queue_id"] = fallback
    try:
        c.queues.update_organization(who.org_id, OrganizationRoutingUpdate.model_validate(payload))
    except ValidationError as exc:
        errors = {
            str(e["loc"][0]) if e.get("loc") else "": validation_text(e) for e in exc.errors()
        }
        return _page(request, who, errors=errors, status=422)
    except InvalidRequestError as exc:
        return _page(request, who, errors={exc.field or "": exc.message}, status=422)
    return RedirectResponse("/settings?saved=1", status_code=303)
