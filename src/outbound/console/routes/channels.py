"""Channels: the list with their health, creating one with the fields its provider needs,
one channel's page (webhook URL to copy, send rate, new credentials) and a test send."""

from __future__ import annotations

from typing import Any

from fastapi import Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from outbound.adapters.providers.registry import adapter_for
from outbound.console.access import Viewer, console_router, state_of, viewer_of
from outbound.console.i18n import validation_text
from outbound.console.nav import ADMINS
from outbound.console.rendering import render
from outbound.domain.channels import ProviderName
from outbound.errors import ConflictError, InvalidRequestError
from outbound.schemas import ChannelCreate, ChannelOut, ChannelUpdate

__all__ = ["provider_fields", "router"]

MAX_TEST_TEXT = 1600
SECRET_WORDS = ("token", "key", "secret", "password")

router = console_router()


def _providers(request: Request) -> list[str]:
    available = set(request.app.state.container.providers)
    return [p.value for p in ProviderName if p.value in available]


def provider_fields(provider: str) -> dict[str, Any]:
    """What the form asks for a provider: its credentials (secret ones hidden as typed), the
    channel types it offers, and whether it needs a base URL."""
    try:
        adapter = adapter_for(provider)
    except KeyError:
        return {"credentials": [], "types": [], "base_url_required": False}
    return {
        "credentials": [
            {"name": name, "secret": any(word in name for word in SECRET_WORDS)}
            for name in adapter.credential_fields
        ],
        "types": sorted(adapter.channel_types),
        "base_url_required": provider == ProviderName.ACS.value,
    }


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _absolute(request: Request, url: str) -> str:
    return url if "://" in url else str(request.base_url).rstrip("/") + url


@router.get("/channels")
def list_channels(request: Request, who: Viewer = viewer_of(*ADMINS)) -> Response:
    channels = request.app.state.container.channels.list(who.org_id, None, 500).data
    return render(request, "channels.html", {"channels": channels})


@router.get("/channels/new")
def new_channel(
    request: Request,
    provider: str = Query("sandbox", max_length=20),
    who: Viewer = viewer_of(*ADMINS),
) -> Response:
    return _new_page(request, {"provider": provider, "type": "sms"}, {})


def _new_page(
    request: Request, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> Response:
    provider = values.get("provider") or "sandbox"
    return render(
        request,
        "channel_new.html",
        {
            "values": values,
            "errors": errors,
            "providers": _providers(request),
            "fields": provider_fields(provider),
        },
        status=status,
    )


@router.get("/channels/new/fields")
def fields_fragment(
    request: Request,
    provider: str = Query("sandbox", max_length=20),
    who: Viewer = viewer_of(*ADMINS),
) -> Response:
    """The provider's part of the form, swapped in when another provider is chosen."""
    return render(
        request,
        "_channel_fields.html",
        {"fields": provider_fields(provider), "values": {"provider": provider}, "errors": {}},
    )


@router.post("/channels/new")
async def create_channel(request: Request, who: Viewer = viewer_of(*ADMINS)) -> Response:
    c = request.app.state.container
    form = await request.form()
    provider = _text(form, "provider")
    fields = provider_fields(provider)
    values = {name: _text(form, name) for name in ("name", "type", "provider", "sender")}
    values["base_url"] = _text(form, "base_url")
    values["rate_per_second"] = _text(form, "rate_per_second")
    credentials = {f["name"]: _text(form, f"cred_{f['name']}") for f in fields["credentials"]}
    errors: dict[str, str] = {}
    try:
        data = ChannelCreate.model_validate(
            {
                "name": values["name"],
                "type": values["type"],
                "provider": provider,
                "sender": values["sender"],
                "base_url": values["base_url"] or None,
                "credentials": {k: v for k, v in credentials.items() if v},
                "rate_per_second": values["rate_per_second"] or None,
            }
        )
        channel: ChannelOut = c.channels.create(who.org_id, data, by=who.principal)
    except ValidationError as exc:
        for error in exc.errors():
            loc = [str(part) for part in error.get("loc", ())]
            errors[_form_field(loc)] = validation_text(error)
    except (InvalidRequestError, ConflictError) as exc:
        errors[_form_field((exc.field or "").split("."))] = exc.message
    else:
        return RedirectResponse(f"/channels/{channel.id}?saved=1", status_code=303)
    return _new_page(request, values, errors, status=422)


def _form_field(loc: list[str]) -> str:
    if loc and loc[0] == "credentials" and len(loc) > 1:
        return f"cred_{loc[1]}"
    return loc[0] if loc else ""


def _channel_page(
    request: Request,
    who: Viewer,
    channel: ChannelOut,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    settings = request.app.state.container.settings
    return render(
        request,
        "channel.html",
        {
            "channel": channel,
            "fields": provider_fields(channel.provider.value),
            "webhook_url": _absolute(request, channel.webhook_url),
            "public_url_set": bool(settings.public_base_url),
            "errors": errors or {},
            "values": values or {},
            "notice": notice,
        },
        status=status,
    )


@router.get("/channels/{channel_id}")
def channel_page(
    request: Request,
    channel_id: str,
    saved: bool = Query(False),
    who: Viewer = viewer_of(*ADMINS),
) -> Response:
    channel = request.app.state.container.channels.get(who.org_id, channel_id)
    t = state_of(request).t
    return _channel_page(
        request, who, channel, notice=t.gettext("Channel saved.") if saved else None
    )


@router.post("/channels/{channel_id}")
async def update_channel(
    request: Request, channel_id: str, who: Viewer = viewer_of(*ADMINS)
) -> Response:
    c = request.app.state.container
    channel: ChannelOut = c.channels.get(who.org_id, channel_id)
    form = await request.form()
    fields = provider_fields(channel.provider.value)
    credentials = {f["name"]: _text(form, f"cred_{f['name']}") for f in fields["credentials"]}
    payload: dict[str, Any] = {
        "name": _text(form, "name") or None,
        "sender": _text(form, "sender") or None,
        "rate_per_second": _text(form, "rate_per_second") or None,
    }
    if any(credentials.values()):
        payload["credentials"] = credentials
    errors: dict[str, str] = {}
    try:
        c.channels.update(
            who.org_id, channel_id, ChannelUpdate.model_validate(payload), by=who.principal
        )
    except ValidationError as exc:
        for error in exc.errors():
            loc = [str(part) for part in error.get("loc", ())]
            errors[_form_field(loc)] = validation_text(error)
    except (InvalidRequestError, ConflictError) as exc:
        errors[_form_field((exc.field or "").split("."))] = exc.message
    else:
        return RedirectResponse(f"/channels/{channel_id}?saved=1", status_code=303)
    return _channel_page(request, who, channel, errors=errors, status=422)


@router.post("/channels/{channel_id}/test")
def test_send(
    request: Request,
    channel_id: str,
    to: str = Form("", max_length=40),
    text: str = Form("", max_length=MAX_TEST_TEXT),
    who: Viewer = viewer_of(*ADMINS),
) -> Response:
    c = request.app.state.container
    try:
        message_id = c.channels.send_test(
            who.org_id,
            channel_id,
            to,
            text,
            default_region=c.settings.default_region,
            max_attempts=c.settings.max_attempts,
            user_id=who.user.id,
        )
    except InvalidRequestError as exc:
        channel = c.channels.get(who.org_id, channel_id)
        return _channel_page(
            request,
            who,
            channel,
            errors={exc.field or "to": exc.message},
            values={"to": to, "text": text},
            status=422,
        )
    return RedirectResponse(f"/messages/{message_id}", status_code=303)
