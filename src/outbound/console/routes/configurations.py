"""Outbound configurations: the list, one configuration's form (channel, template, language,
timeline, conversations, fallback, contact window, frequency cap) with its ID to copy, and a
test send through the same send service as ``POST /v1/outbound/send``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from outbound.console.access import Viewer, console_router, state_of, viewer_of
from outbound.console.i18n import validation_text
from outbound.console.nav import ADMINS
from outbound.console.rendering import render
from outbound.errors import ConflictError, InvalidRequestError, NotFoundError, RateLimitedError
from outbound.schemas import (
    ChannelOut,
    ConfigurationCreate,
    ConfigurationOut,
    ConfigurationUpdate,
    SendIn,
    TemplateOut,
)

__all__ = ["router"]

WEEKDAYS = (1, 2, 3, 4, 5, 6, 7)

router = console_router()


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


@dataclass
class ConfigurationForm:
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, config: ConfigurationOut | None) -> ConfigurationForm:
        if config is None:
            return cls(
                {
                    "channel_type": "sms",
                    "active": True,
                    "conversation_mode": "on_response",
                    "window_days": [1, 2, 3, 4, 5],
                }
            )
        window, cap = config.contact_window, config.frequency_cap
        return cls(
            {
                "name": config.name,
                "channel_type": config.channel_type.value,
                "channel_id": config.channel_id,
                "template_id": config.template_id,
                "default_locale": config.default_locale or "",
                "conversation_mode": config.conversation_mode.value,
                "fallback_channel_id": config.fallback_channel_id or "",
                "show_in_timeline": config.show_in_timeline,
                "active": config.active,
                "window_enabled": window is not None,
                "window_start": window.start if window else "",
                "window_end": window.end if window else "",
                "window_days": (window.days or list(WEEKDAYS)) if window else [1, 2, 3, 4, 5],
                "window_time_zone": (window.time_zone or "") if window else "",
                "cap_count": str(cap.count) if cap else "",
                "cap_period": _period(cap.period) if cap else "",
            }
        )

    @classmethod
    def read(cls, form: FormData) -> ConfigurationForm:
        values: dict[str, Any] = {
            name: _text(form, name)
            for name in (
                "name",
                "channel_type",
                "channel_id",
                "template_id",
                "default_locale",
                "conversation_mode",
                "fallback_channel_id",
                "window_start",
                "window_end",
                "window_time_zone",
                "cap_count",
                "cap_period",
            )
        }
        values["show_in_timeline"] = bool(form.get("show_in_timeline"))
        values["active"] = bool(form.get("active"))
        values["window_enabled"] = bool(form.get("window_enabled"))
        values["window_days"] = sorted(
            {
                int(day)
                for day in form.getlist("window_days")
                if isinstance(day, str) and len(day) == 1 and day in "1234567"
            }
        )
        return cls(values)

    def payload(self) -> dict[str, Any]:
        v = self.values
        data: dict[str, Any] = {
            "name": v["name"],
            "channel_id": v["channel_id"],
            "template_id": v["template_id"],
            "default_locale": v["default_locale"] or None,
            "conversation_mode": v["conversation_mode"] or "on_response",
            "fallback_channel_id": v["fallback_channel_id"] or None,
            "show_in_timeline": v["show_in_timeline"],
            "active": v["active"],
            "contact_window": None,
            "frequency_cap": None,
        }
        if v["window_enabled"]:
            data["contact_window"] = {
                "start": v["window_start"],
                "end": v["window_end"],
                "days": v["window_days"] or None,
                "time_zone": v["window_time_zone"] or None,
            }
        if v["cap_count"] or v["cap_period"]:
            data["frequency_cap"] = {"count": _int(v["cap_count"]), "period": v["cap_period"]}
        return data

    def refused(self, exc: Exception) -> None:
        if isinstance(exc, ValidationError):
            for error in exc.errors():
                self.errors[_field(error.get("loc", ()))] = validation_text(error)
        elif isinstance(exc, InvalidRequestError | ConflictError):
            self.errors[_field(tuple((exc.field or "").split(".")))] = exc.message


def _int(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


def _period(seconds: int) -> str:
    """A period as people write it: 24h, 7d, 2w (hours up to two days, days up to two weeks)."""
    units = (("w", 604800, 1209600), ("d", 86400, 172801), ("h", 3600, 1), ("m", 60, 1))
    for unit, size, least in units:
        if seconds % size == 0 and seconds >= least:
            return f"{seconds // size}{unit}"
    return str(seconds)


_WINDOW_FIELDS = {
    "start": "window_start",
    "end": "window_end",
    "days": "window_days",
    "time_zone": "window_time_zone",
}


def _field(loc: Any) -> str:
    parts = [str(part) for part in loc if part not in ("body",)]
    if not parts:
        return ""
    if parts[0] == "contact_window":
        return _WINDOW_FIELDS.get(parts[1], "window_start") if len(parts) > 1 else "window_start"
    if parts[0] == "frequency_cap":
        return "cap_period" if len(parts) > 1 and parts[1] == "period" else "cap_count"
    return parts[0]


def _page(
    request: Request,
    who: Viewer,
    form: ConfigurationForm,
    config: ConfigurationOut | None,
    *,
    status: int = 200,
    notice: str | None = None,
    test: dict[str, Any] | None = None,
) -> Response:
    c = request.app.state.container
    channels: list[ChannelOut] = c.channels.list(who.org_id, None, 500).data
    templates: list[TemplateOut] = c.templates.list(who.org_id, None, 500).data
    template = next((t for t in templates if config and t.id == config.template_id), None)
    return render(
        request,
        "configuration.html",
        {
            "config": config,
            "form": form,
            "channels": channels,
            "templates": templates,
            "template": template,
            "weekdays": WEEKDAYS,
            "notice": notice,
            "test": test or {"values": {}, "errors": {}, "outcome": None},
        },
        status=status,
    )


@router.get("/configurations")
def list_configurations(request: Request, who: Viewer = viewer_of(*ADMINS)) -> Response:
    c = request.app.state.container
    configurations = c.configurations.list(who.org_id, None, 500).data
    channels = {ch.id: ch for ch in c.channels.list(who.org_id, None, 500).data}
    templates = {tp.id: tp for tp in c.templates.list(who.org_id, None, 500).data}
    return render(
        request,
        "configurations.html",
        {"configurations": configurations, "channels": channels, "templates": templates},
    )


@router.get("/configurations/new")
def new_configuration(request: Request, who: Viewer = viewer_of(*ADMINS)) -> Response:
    return _page(request, who, ConfigurationForm.of(None), None)


@router.post("/configurations/new")
async def create_configuration(request: Request, who: Viewer = viewer_of(*ADMINS)) -> Response:
    c = request.app.state.container
    form = ConfigurationForm.read(await request.form())
    try:
        data = ConfigurationCreate.model_validate(
            {**form.payload(), "channel_type": form.values["channel_type"] or "sms"}
        )
        config: ConfigurationOut = c.configurations.create(who.org_id, data, by=who.principal)
    except (ValidationError, InvalidRequestError, ConflictError) as exc:
        form.refused(exc)
        return _page(request, who, form, None, status=422)
    return RedirectResponse(f"/configurations/{config.id}?saved=1", status_code=303)


@router.get("/configurations/{config_id}")
def configuration_page(
    request: Request,
    config_id: str,
    saved: bool = Query(False),
    who: Viewer = viewer_of(*ADMINS),
) -> Response:
    config = request.app.state.container.configurations.get(who.org_id, config_id)
    t = state_of(request).t
    notice = t.gettext("Configuration saved.") if saved else None
    return _page(request, who, ConfigurationForm.of(config), config, notice=notice)


@router.post("/configurations/{config_id}")
async def update_configuration(
    request: Request, config_id: str, who: Viewer = viewer_of(*ADMINS)
) -> Response:
    c = request.app.state.container
    config: ConfigurationOut = c.configurations.get(who.org_id, config_id)
    form = ConfigurationForm.read(await request.form())
    form.values["channel_type"] = config.channel_type.value
    try:
        # Every field given: an empty window, cap or fallback (null) removes it.
        data = ConfigurationUpdate.model_validate(form.payload())
        c.configurations.update(who.org_id, config_id, data, by=who.principal)
    except (ValidationError, InvalidRequestError, ConflictError) as exc:
        form.refused(exc)
        return _page(request, who, form, config, status=422)
    return RedirectResponse(f"/configurations/{config_id}?saved=1", status_code=303)


@router.post("/configurations/{config_id}/delete")
def delete_configuration(
    request: Request, config_id: str, who: Viewer = viewer_of(*ADMINS)
) -> Response:
    request.app.state.container.configurations.delete(who.org_id, config_id, by=who.principal)
    return RedirectResponse("/configurations", status_code=303)


@router.post("/configurations/{config_id}/test")
async def send_test(request: Request, config_id: str, who: Viewer = viewer_of(*ADMINS)) -> Response:
    """One contact through the send service, as an integration would send it."""
    c = request.app.state.container
    config: ConfigurationOut = c.configurations.get(who.org_id, config_id)
    form = await request.form()
    to, locale = _text(form, "to"), _text(form, "locale")
    values = {
        key[len("value_") :]: _text(form, key)
        for key in form
        if key.startswith("value_") and len(key) <= 106
    }
    test: dict[str, Any] = {"values": {"to": to, "locale": locale, **values}, "errors": {}}
    try:
        result = c.sending.send(
            who.org_id,
            SendIn.model_validate(
                {
                    "configuration_id": config_id,
                    "contacts": [
                        {
                            "tocontactid": to,
                            "optin": True,
                            "locale": locale or None,
                            "contextitems": values,
                        }
                    ],
                }
            ),
            urgent=True,
        )
    except ValidationError as exc:
        for error in exc.errors():
            loc = [str(part) for part in error.get("loc", ())]
            test["errors"]["to" if "tocontactid" in loc else "locale"] = validation_text(error)
    except (InvalidRequestError, ConflictError, NotFoundError, RateLimitedError) as exc:
        test["errors"][""] = exc.message
    else:
        # Queued, skipped or rejected: the message's page says what became of it, and why.
        return RedirectResponse(f"/messages/{result.results[0].message_id}", status_code=303)
    return _page(request, who, ConfigurationForm.of(config), config, status=422, test=test)
