"""The supervisor's view: agents with their presence and the capacity they use, queues with
how many wait and for how long, and live conversations to reassign.

Reassigning is a transfer (:meth:`~outbound.services.lifecycle.LifecycleService.transfer`)
made by a supervisor: the same rules as ``POST /v1/conversations/{id}/transfer``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from outbound.console.access import Viewer, console_router, viewer_of
from outbound.console.nav import MANAGERS
from outbound.console.rendering import render
from outbound.errors import ConflictError, InvalidRequestError
from outbound.services.lifecycle import Actor
from outbound.texts import N_

if TYPE_CHECKING:
    from outbound.app import Container

__all__ = ["router"]

router = console_router()
LIVE = "open,active,waiting,wrap_up"
SHOWN = 200


def _c(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def _waited(since: datetime | None, now: datetime) -> int | None:
    if since is None:
        return None
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return max(0, int((now - since).total_seconds()))


def _page(request: Request, who: Viewer, errors: dict[str, str], status: int = 200) -> Response:
    c = _c(request)
    now = c.clock.now()
    users = c.users.list(who.org_id, None, 500, active=True).data
    used = c.assignment.workload(who.org_id)
    waits = c.assignment.longest_waits(who.org_id)
    queues = c.queues.list_queues(who.org_id)
    conversations = c.conversations.list(who.org_id, LIVE, None, SHOWN).data
    conversations.sort(key=lambda conv: conv.last_message_at, reverse=True)
    return render(
        request,
        "supervision.html",
        {
            "people": [
                {"user": u, "used": used.get(u.id, 0)}
                for u in sorted(users, key=lambda u: (u.role.value != "agent", u.name or u.email))
            ],
            "queues": [{"queue": q, "waited": _waited(waits.get(q.id), now)} for q in queues],
            "queue_names": {q.id: q.name for q in queues},
            "names": {u.id: u.name or u.email for u in users},
            "agents": users,
            "conversations": conversations,
            "errors": errors,
        },
        status=status,
    )


@router.get("/supervision")
def supervision(request: Request, who: Viewer = viewer_of(*MANAGERS)) -> Response:
    return _page(request, who, {})


@router.post("/supervision/{conversation_id}/reassign")
async def reassign(
    request: Request, conversation_id: str, who: Viewer = viewer_of(*MANAGERS)
) -> Response:
    form = await request.form()
    target = str(form.get("to") or "")
    kind, _, target_id = target.partition(":")
    c = _c(request)
    actor = Actor(org_id=who.org_id, user_id=who.user.id, supervisor=True)
    try:
        if kind not in ("user", "queue") or not target_id:
            raise InvalidRequestError(N_("choose an agent or a queue"), field="to")
        await run_in_threadpool(
            lambda: c.lifecycle.transfer(
                actor,
                conversation_id,
                to_user_id=target_id if kind == "user" else None,
                to_queue_id=target_id if kind == "queue" else None,
                reason="reassigned by a supervisor",
            )
        )
    except (InvalidRequestError, ConflictError) as exc:
        errors, status = {conversation_id: exc.message}, exc.status_code
        return await run_in_threadpool(lambda: _page(request, who, errors, status))
    return RedirectResponse("/supervision", status_code=303)
