"""The agent workspace: the inbox, one conversation with its context, answering, and the
live stream that keeps both current.

Every action calls the service the API calls (lifecycle, agent replies, presence), as the
signed-in user: the rules (who may act, which status allows what, the WhatsApp window,
consent) are theirs. The page listens to ``/workspace/stream`` (the event stream of
:class:`~outbound.services.stream.StreamHub`, authenticated by the session cookie) and asks
for its inbox and its conversation again when something changed.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from outbound.console.access import (
    Viewer,
    console_router,
    state_of,
    still_signed_in,
    viewer_of,
)
from outbound.console.rendering import render
from outbound.console.routes.templates import Counter
from outbound.domain.encoding import sms_info
from outbound.domain.users import PresenceStatus, UserRole
from outbound.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
)
from outbound.schemas import ConversationOut
from outbound.services.consent import WHATSAPP_WINDOW
from outbound.services.lifecycle import Actor
from outbound.services.stream import Subscriber
from outbound.texts import N_

if TYPE_CHECKING:
    from outbound.app import Container

__all__ = ["VIEWS", "counter_of", "inbox", "router", "whatsapp_window_end"]

router = console_router()

VIEWS = ("mine", "unassigned", "all")
MINE_STATUSES = "active,waiting,wrap_up"
LIVE = "open,active,waiting,wrap_up"
INBOX_SIZE = 200
SNOOZE_CHOICES = (1, 4, 24)
_EVENT_LINE = re.compile(r"^event: (?!reset$).*$", re.MULTILINE)
SIGNED_OUT = "event: signed-out\ndata: {}\n\n"
"""The stream's last event once its session is over: the page closes it and reloads."""


def _c(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def _actor(who: Viewer) -> Actor:
    return Actor(
        org_id=who.org_id,
        user_id=who.user.id,
        supervisor=who.role in (UserRole.ADMIN, UserRole.SUPERVISOR),
    )


def _supervises(who: Viewer) -> bool:
    return who.role in (UserRole.ADMIN, UserRole.SUPERVISOR)


def _views(who: Viewer) -> tuple[str, ...]:
    return VIEWS if _supervises(who) else VIEWS[:2]


@dataclass(frozen=True)
class InboxItem:
    conversation: ConversationOut
    offered_to_me: bool


def inbox(c: Container, who: Viewer, view: str) -> list[InboxItem]:
    """The conversations of one tab: ``mine`` (assigned or offered to the viewer),
    ``unassigned`` (waiting in a queue, not offered to someone else; an agent sees their
    queues'), ``all`` (every live one, for supervisors and admins)."""
    me = who.user.id
    items: list[ConversationOut] = []
    if view == "mine":
        items = c.conversations.list(who.org_id, "open", None, INBOX_SIZE, offered_to=me).data
        items += c.conversations.list(
            who.org_id, MINE_STATUSES, None, INBOX_SIZE, assigned_to=me
        ).data
    elif view == "unassigned":
        mine_queues = None
        if not _supervises(who):
            mine_queues = [q.id for q in c.queues.list_queues(who.org_id) if me in q.members]
        items = c.conversations.list(
            who.org_id, "open", None, INBOX_SIZE, available_to=me, queue_ids=mine_queues
        ).data
    elif view == "all" and _supervises(who):
        items = c.conversations.list(who.org_id, LIVE, None, INBOX_SIZE).data
    items.sort(key=lambda conv: conv.last_message_at, reverse=True)
    return [InboxItem(conv, conv.offered_to == me) for conv in items]


def _names(c: Container, org_id: str) -> dict[str, str]:
    users = c.users.list(org_id, None, 500, active=True).data
    return {u.id: u.name or u.email for u in users}


def _view_of(who: Viewer, view: str | None) -> str:
    return view if view in _views(who) else "mine"


def _inbox_context(request: Request, who: Viewer, view: str, current: str | None) -> dict[str, Any]:
    c = _c(request)
    return {
        "view": view,
        "views": _views(who),
        "items": inbox(c, who, view),
        "names": _names(c, who.org_id),
        "current_id": current,
    }


def whatsapp_window_end(conv: ConversationOut, channel_type: str) -> datetime | None:
    """When WhatsApp stops taking free-form text (24 hours after the customer's last
    message); None on other channels."""
    if channel_type != "whatsapp":
        return None
    last = (conv.consent or {}).get("last_inbound_at")
    if last is None:
        inbound = [m.at for m in conv.messages or [] if m.direction == "inbound"]
        last = max(inbound) if inbound else None
    if last is None:
        return None
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return last + WHATSAPP_WINDOW


def counter_of(text: str) -> Counter:
    """The live count under the reply box (the domain's SMS encoding rules)."""
    info = sms_info(text)
    return Counter(encoding=info.encoding.value, characters=info.characters, segments=info.segments)


def _conversation_context(
    request: Request, who: Viewer, conversation_id: str, *, body: str = ""
) -> dict[str, Any]:
    c = _c(request)
    conv = c.conversations.get(who.org_id, conversation_id)
    if not _supervises(who) and who.user.id not in (conv.assigned_to, conv.offered_to):
        member_of = {q.id for q in c.queues.list_queues(who.org_id) if who.user.id in q.members}
        if conv.status != "open" or conv.offered_to or conv.queue_id not in member_of:
            raise PermissionDeniedError(N_("not your conversation"))
    channel = c.channels.get(who.org_id, conv.channel_id)
    window_ends = whatsapp_window_end(conv, channel.type.value)
    now = c.clock.now()
    templates = []
    if window_ends is not None and window_ends <= now:
        templates = [
            t
            for t in c.templates.list(who.org_id, None, 500).data
            if t.channel_type.value == "whatsapp" and t.content_sid
        ]
    configuration = None
    if conv.configuration_id:
        configuration = c.configurations.get(who.org_id, conv.configuration_id)
    mine = conv.assigned_to == who.user.id or _supervises(who)
    entries: list[tuple[str, Any]] = [("message", m) for m in conv.messages or []]
    entries += [("note", n) for n in conv.notes or []]
    entries.sort(key=lambda entry: entry[1].at if entry[0] == "message" else entry[1].created_at)
    return {
        "conv": conv,
        "entries": entries,
        "channel": channel,
        "configuration": configuration,
        "window_ends": window_ends,
        "window_open": window_ends is None or window_ends > now,
        "templates": templates,
        "canned": c.agent_replies.list_canned(who.org_id),
        "queues": c.queues.list_queues(who.org_id),
        "agents": [
            u
            for u in c.users.list(who.org_id, None, 500, active=True).data
            if u.id != conv.assigned_to
        ],
        "may_answer": mine and conv.status in ("active", "waiting", "wrap_up"),
        "offered_to_me": conv.offered_to == who.user.id,
        "body": body,
        "count": counter_of(body),
        "snooze_choices": SNOOZE_CHOICES,
    }


def _presence_context(request: Request, who: Viewer) -> dict[str, Any]:
    presence = _c(request).presence.get(who.org_id, who.user.id)
    return {"presence": presence, "presence_choices": [s.value for s in PresenceStatus]}


@router.get("/workspace")
def workspace(
    request: Request, view: str | None = Query(None, max_length=20), who: Viewer = viewer_of()
) -> Response:
    c = _c(request)
    c.presence.seen(who.org_id, who.user.id)
    chosen = _view_of(who, view)
    return render(
        request,
        "workspace.html",
        {
            **_inbox_context(request, who, chosen, None),
            **_presence_context(request, who),
            "errors": {},
        },
    )


@router.get("/workspace/inbox")
def inbox_fragment(
    request: Request,
    view: str | None = Query(None, max_length=20),
    current: str | None = Query(None, max_length=36),
    who: Viewer = viewer_of(),
) -> Response:
    """The inbox list alone, asked again by the page when the stream says something changed."""
    return render(
        request, "_inbox.html", _inbox_context(request, who, _view_of(who, view), current)
    )


@router.get("/workspace/stream")
async def stream(request: Request, who: Viewer = viewer_of()) -> StreamingResponse:
    """The viewer's live updates as ``event: update`` (what changed is in the data; the page
    only needs to know that something did), keeping them seen while it is open.

    The stream ends with :data:`SIGNED_OUT` once its session is over (signed out in another
    tab, ended from the account page or by an admin, expired, the user deactivated): the
    session is checked again at each heartbeat, and at least as often while updates keep
    coming."""
    c = _c(request)
    state = state_of(request)
    subscriber = Subscriber(org_id=who.org_id, user_id=who.user.id, sees_all=_supervises(who))
    seen_every = c.presence.seen_every

    async def events() -> AsyncIterator[str]:
        last_seen = c.clock.now()
        checked = time.monotonic()
        updates = c.stream.events(subscriber, None, heartbeat=seen_every)
        async with aclosing(updates):
            async for chunk in updates:
                heartbeat = chunk.startswith(": keep-alive")
                if heartbeat or time.monotonic() - checked >= seen_every:
                    checked = time.monotonic()
                    if not await run_in_threadpool(still_signed_in, request, state):
                        yield SIGNED_OUT
                        return
                now = c.clock.now()
                if now - last_seen >= timedelta(seconds=seen_every):
                    last_seen = now
                    await run_in_threadpool(c.presence.seen, who.org_id, who.user.id)
                yield _EVENT_LINE.sub("event: update", chunk)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/workspace/presence")
async def set_presence(request: Request, who: Viewer = viewer_of()) -> Response:
    form = await request.form()
    value = str(form.get("status") or "")
    if value in set(PresenceStatus):
        c = _c(request)
        await run_in_threadpool(c.presence.seen, who.org_id, who.user.id)
        await run_in_threadpool(
            c.presence.set, who.org_id, who.user.id, PresenceStatus(value), by=who.principal
        )
    return _back(str(form.get("next") or "/workspace"))


@router.post("/workspace/count")
async def count(request: Request, who: Viewer = viewer_of()) -> Response:
    """The segment counter of the reply box, as the agent types."""
    form = await request.form()
    return render(request, "_text_counter.html", {"c": counter_of(str(form.get("body") or ""))})


def _back(target: str) -> Response:
    if not target.startswith("/workspace"):
        target = "/workspace"
    return RedirectResponse(target, status_code=303)


def _page(
    request: Request,
    who: Viewer,
    conversation_id: str,
    *,
    errors: dict[str, str] | None = None,
    body: str = "",
    status: int = 200,
) -> Response:
    c = _c(request)
    context = _conversation_context(request, who, conversation_id, body=body)
    return render(
        request,
        "conversation.html",
        {
            **_inbox_context(request, who, "mine", conversation_id),
            **_presence_context(request, who),
            **context,
            "errors": errors or {},
            "names": _names(c, who.org_id),
        },
        status=status,
    )


@router.get("/workspace/{conversation_id}")
def conversation_page(
    request: Request, conversation_id: str, who: Viewer = viewer_of()
) -> Response:
    _c(request).presence.seen(who.org_id, who.user.id)
    return _page(request, who, conversation_id)


@router.get("/workspace/{conversation_id}/thread")
def thread(request: Request, conversation_id: str, who: Viewer = viewer_of()) -> Response:
    """The messages and notes alone, asked again when the stream says something changed."""
    context = _conversation_context(request, who, conversation_id)
    return render(request, "_thread.html", {**context, "names": _names(_c(request), who.org_id)})


@router.get("/workspace/{conversation_id}/canned")
def canned(
    request: Request,
    conversation_id: str,
    shortcode: str = Query("", max_length=66),
    who: Viewer = viewer_of(),
) -> Response:
    """The reply box filled with a canned response (by its shortcode) for this conversation."""
    errors: dict[str, str] = {}
    text = ""
    try:
        text = _c(request).agent_replies.render_canned(_actor(who), conversation_id, shortcode)
    except (InvalidRequestError, ConflictError) as exc:
        errors["shortcode"] = exc.message
    except NotFoundError:
        errors["shortcode"] = state_of(request).t.gettext(
            "No canned response has the shortcode %(code)s.", code=shortcode
        )
    return render(
        request,
        "_reply_text.html",
        {"body": text, "count": counter_of(text), "errors": errors},
    )


async def _act(
    request: Request, who: Viewer, conversation_id: str, action: str, form: Any
) -> Response:
    c = _c(request)
    actor = _actor(who)
    here = f"/workspace/{conversation_id}"
    t = state_of(request).t
    try:
        if action == "accept":
            await run_in_threadpool(c.lifecycle.accept, actor, conversation_id)
        elif action == "decline":
            reason = str(form.get("reason") or "") or None
            await run_in_threadpool(c.lifecycle.decline, actor, conversation_id, reason)
            return _back("/workspace")
        elif action == "reply":
            template_id = str(form.get("template_id") or "") or None
            body = None if template_id else str(form.get("body") or "")
            if body is not None and not body.strip():
                raise InvalidRequestError(t.gettext("Write an answer first."), field="body")
            await run_in_threadpool(
                lambda: c.agent_replies.reply(
                    actor, conversation_id, body=body, template_id=template_id
                )
            )
        elif action == "note":
            note = str(form.get("note") or "").strip()
            if not note:
                raise InvalidRequestError(t.gettext("Write the note first."), field="note")
            await run_in_threadpool(c.agent_replies.add_note, actor, conversation_id, note)
        elif action == "transfer":
            target = str(form.get("to") or "")
            kind, _, target_id = target.partition(":")
            if kind not in ("user", "queue") or not target_id:
                raise InvalidRequestError(t.gettext("Choose where to transfer it."), field="to")
            await run_in_threadpool(
                lambda: c.lifecycle.transfer(
                    actor,
                    conversation_id,
                    to_user_id=target_id if kind == "user" else None,
                    to_queue_id=target_id if kind == "queue" else None,
                    reason=str(form.get("reason") or "") or None,
                )
            )
            if not _supervises(who):
                return _back("/workspace")
        elif action == "snooze":
            try:
                hours = int(str(form.get("hours") or ""))
            except ValueError:
                hours = 0
            if hours not in SNOOZE_CHOICES:
                raise InvalidRequestError(t.gettext("Choose how long."), field="hours")
            until = c.clock.now() + timedelta(hours=hours)
            await run_in_threadpool(c.lifecycle.snooze, actor, conversation_id, until)
        elif action == "close":
            await run_in_threadpool(lambda: c.lifecycle.close(actor, conversation_id, wrap_up=True))
            return _back("/workspace")
        elif action == "reopen":
            await run_in_threadpool(c.lifecycle.reopen, actor, conversation_id)
    except (InvalidRequestError, ConflictError) as exc:
        field = exc.field or ("body" if action == "reply" else action)
        errors, status = {field: exc.message}, exc.status_code
        body = str(form.get("body") or "")
        return await run_in_threadpool(
            lambda: _page(request, who, conversation_id, errors=errors, body=body, status=status)
        )
    return _back(here)


ACTIONS = ("accept", "decline", "reply", "note", "transfer", "snooze", "close", "reopen")


@router.post("/workspace/{conversation_id}/{action}")
async def act(
    request: Request, conversation_id: str, action: str, who: Viewer = viewer_of()
) -> Response:
    if action not in ACTIONS:
        raise NotFoundError(N_("no action %(action)r", action=action))
    form = await request.form()
    return await _act(request, who, conversation_id, action, form)
