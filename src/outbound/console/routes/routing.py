"""Routing: the queues, the routing rules in their order (create, edit, enable, delete) and
the simulator, which asks the routing service what it would do with a made-up reply (as
``POST /v1/routing/simulate``; nothing is stored)."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from outbound.console.access import Viewer, console_router, state_of, viewer_of
from outbound.console.i18n import N_, validation_text
from outbound.console.nav import MANAGERS
from outbound.console.rendering import render
from outbound.errors import ConflictError, InvalidRequestError
from outbound.schemas import (
    QueueCreate,
    RoutingRuleCreate,
    RoutingRuleOut,
    RoutingRuleUpdate,
)

__all__ = ["conditions_of", "conditions_text", "router"]

router = console_router()

LIST_OPS = ("in", "not_in")
NOTICES = {
    "queue": N_("Queue created."),
    "rule": N_("Rule saved."),
    "deleted": N_("Rule deleted."),
}


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def conditions_of(text: str) -> list[dict[str, Any]]:
    """The conditions written one a line as ``field op value`` (``in`` and ``not_in`` take
    values separated by commas; ``exists`` and ``missing`` none). The routing service checks
    them; this only splits the lines."""
    conditions: list[dict[str, Any]] = []
    for line in text.splitlines():
        parts = line.strip().split(None, 2)
        if not parts:
            continue
        field = parts[0]
        op = parts[1] if len(parts) > 1 else "eq"
        raw = parts[2] if len(parts) > 2 else None
        value: Any = raw
        if op in LIST_OPS and raw is not None:
            value = [item.strip() for item in raw.split(",") if item.strip()]
        conditions.append({"field": field, "op": op, "value": value})
    return conditions


def conditions_text(conditions: list[dict[str, Any]]) -> str:
    lines = []
    for c in conditions:
        value = c.get("value")
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        lines.append(
            " ".join(str(p) for p in (c.get("field"), c.get("op"), value) if p is not None)
        )
    return "\n".join(lines)


def _errors(exc: Exception) -> dict[str, str]:
    if isinstance(exc, ValidationError):
        return {
            (str(e["loc"][0]) if e.get("loc") else ""): validation_text(e) for e in exc.errors()
        }
    if isinstance(exc, InvalidRequestError | ConflictError):
        return {(exc.field or "").split(".")[0].split("[")[0]: exc.message}
    raise exc


def _rule_values(rule: RoutingRuleOut | None) -> dict[str, Any]:
    if rule is None:
        return {"enabled": True, "priority": "0"}
    return {
        "name": rule.name,
        "queue_id": rule.queue_id,
        "conditions": conditions_text(rule.conditions),
        "required_skills": ", ".join(rule.required_skills),
        "required_language": rule.required_language or "",
        "priority": str(rule.priority),
        "position": str(rule.position),
        "enabled": rule.enabled,
    }


def _read_rule(form: FormData) -> tuple[dict[str, Any], dict[str, Any]]:
    names = ("name", "queue_id", "conditions", "required_skills", "required_language")
    values: dict[str, Any] = {name: _text(form, name) for name in names}
    values["priority"] = _text(form, "priority")
    values["position"] = _text(form, "position")
    values["enabled"] = form.get("enabled") == "1"
    payload: dict[str, Any] = {
        "name": values["name"],
        "queue_id": values["queue_id"] or None,
        "conditions": conditions_of(values["conditions"]),
        "required_skills": [s.strip() for s in values["required_skills"].split(",") if s.strip()],
        "required_language": values["required_language"] or None,
        "priority": _int(values["priority"] or "0"),
        "enabled": values["enabled"],
    }
    if values["position"]:
        payload["position"] = _int(values["position"])
    return values, payload


def _int(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


def _page(
    request: Request,
    who: Viewer,
    *,
    queue_errors: dict[str, str] | None = None,
    simulation: dict[str, Any] | None = None,
    sim_values: dict[str, str] | None = None,
    sim_errors: dict[str, str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    c = request.app.state.container
    queues = c.queues.list_queues(who.org_id)
    return render(
        request,
        "routing.html",
        {
            "queues": queues,
            "queue_names": {q.id: q.name for q in queues},
            "rules": c.queues.list_rules(who.org_id),
            "channels": c.channels.list(who.org_id, None, 500).data,
            "conditions_text": conditions_text,
            "queue_errors": queue_errors or {},
            "simulation": simulation,
            "sim_values": sim_values or {},
            "sim_errors": sim_errors or {},
            "notice": notice,
        },
        status=status,
    )


@router.get("/routing")
def routing_page(request: Request, done: str = "", who: Viewer = viewer_of(*MANAGERS)) -> Response:
    notice = state_of(request).t.gettext(NOTICES[done]) if done in NOTICES else None
    return _page(request, who, notice=notice)


@router.post("/routing/queues")
async def create_queue(request: Request, who: Viewer = viewer_of(*MANAGERS)) -> Response:
    form = await request.form()
    try:
        data = QueueCreate.model_validate({"name": _text(form, "name")})
        request.app.state.container.queues.create_queue(who.org_id, data)
    except (ValidationError, InvalidRequestError, ConflictError) as exc:
        return _page(request, who, queue_errors=_errors(exc), status=422)
    return RedirectResponse("/routing?done=queue", status_code=303)


@router.post("/routing/simulate")
async def simulate(request: Request, who: Viewer = viewer_of(*MANAGERS)) -> Response:
    c = request.app.state.container
    form = await request.form()
    values = {name: _text(form, name) for name in ("channel_id", "from", "text")}
    try:
        result = c.routing.simulate(
            who.org_id,
            channel_id=values["channel_id"],
            number=values["from"] or None,
            text=values["text"],
            replied_message_id=None,
        )
    except InvalidRequestError as exc:
        return _page(
            request, who, sim_values=values, sim_errors={exc.field or "": exc.message}, status=422
        )
    return _page(request, who, simulation=result, sim_values=values)


def _rule_page(
    request: Request,
    who: Viewer,
    rule: RoutingRuleOut | None,
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    c = request.app.state.container
    return render(
        request,
        "routing_rule.html",
        {
            "rule": rule,
            "values": values,
            "errors": errors,
            "queues": c.queues.list_queues(who.org_id),
        },
        status=status,
    )


@router.get("/routing/rules/new")
def new_rule(request: Request, who: Viewer = viewer_of(*MANAGERS)) -> Response:
    return _rule_page(request, who, None, _rule_values(None), {})


@router.post("/routing/rules/new")
async def create_rule(request: Request, who: Viewer = viewer_of(*MANAGERS)) -> Response:
    form = await request.form()
    values, payload = _read_rule(form)
    try:
        data = RoutingRuleCreate.model_validate(payload)
        request.app.state.container.queues.create_rule(who.org_id, data)
    except (ValidationError, InvalidRequestError, ConflictError) as exc:
        return _rule_page(request, who, None, values, _errors(exc), status=422)
    return RedirectResponse("/routing?done=rule", status_code=303)


@router.get("/routing/rules/{rule_id}")
def rule_page(request: Request, rule_id: str, who: Viewer = viewer_of(*MANAGERS)) -> Response:
    rule = request.app.state.container.queues.get_rule(who.org_id, rule_id)
    return _rule_page(request, who, rule, _rule_values(rule), {})


@router.post("/routing/rules/{rule_id}")
async def update_rule(
    request: Request, rule_id: str, who: Viewer = viewer_of(*MANAGERS)
) -> Response:
    c = request.app.state.container
    rule = c.queues.get_rule(who.org_id, rule_id)
    form = await request.form()
    values, payload = _read_rule(form)
    try:
        data = RoutingRuleUpdate.model_validate(payload)
        c.queues.update_rule(who.org_id, rule_id, data)
    except (ValidationError, InvalidRequestError, ConflictError) as exc:
        return _rule_page(request, who, rule, values, _errors(exc), status=422)
    return RedirectResponse("/routing?done=rule", status_code=303)


@router.post("/routing/rules/{rule_id}/delete")
def delete_rule(request: Request, rule_id: str, who: Viewer = viewer_of(*MANAGERS)) -> Response:
    request.app.state.container.queues.delete_rule(who.org_id, rule_id)
    return RedirectResponse("/routing?done=deleted", status_code=303)
