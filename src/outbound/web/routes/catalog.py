"""Administration API: organisation, channels, templates, outbound configurations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response

from outbound.schemas import (
    ChannelCreate,
    ChannelOut,
    ChannelUpdate,
    ConfigurationCreate,
    ConfigurationOut,
    ConfigurationUpdate,
    Page,
    PreviewIn,
    PreviewOut,
    Role,
    TemplateChangeOut,
    TemplateCreate,
    TemplateOut,
    TemplateUpdate,
    TemplateVersionOut,
)
from outbound.services.auth import Principal, get_organization
from outbound.web.deps import ALL_ROLES, READERS, container, principal_of

__all__ = ["router"]

router = APIRouter(prefix="/v1")
ADMIN = (Role.ADMIN,)
Cursor = Query(None, description="next_cursor of the previous page")
Limit = Query(50, ge=1, le=500)


@router.get("/organization", tags=["organization"])
def get_org(request: Request, who: Principal = principal_of(*ALL_ROLES)) -> dict[str, Any]:
    c = container(request)
    org = get_organization(c.db, who.org_id)
    return {
        "id": org.id,
        "name": org.name,
        "max_contacts_per_request": org.max_contacts_per_request
        or c.settings.max_contacts_per_request,
        "hourly_request_quota": org.hourly_request_quota or c.settings.hourly_request_quota,
        "created_at": org.created_at,
    }


# --- channels -----------------------------------------------------------------------------


@router.post("/channels", status_code=201, tags=["channels"])
def post_channel(
    data: ChannelCreate, request: Request, who: Principal = principal_of(*ADMIN)
) -> ChannelOut:
    return container(request).channels.create(who.org_id, data, by=who)


@router.get("/channels", tags=["channels"])
def list_channels(
    request: Request,
    cursor: str | None = Cursor,
    limit: int = Limit,
    who: Principal = principal_of(*READERS),
) -> Page[ChannelOut]:
    page = container(request).channels.list(who.org_id, cursor, limit)
    page.data = [_for(who, channel) for channel in page.data]
    return page


@router.get("/channels/{channel_id}", tags=["channels"])
def get_channel(
    channel_id: str, request: Request, who: Principal = principal_of(*READERS)
) -> ChannelOut:
    return _for(who, container(request).channels.get(who.org_id, channel_id))


def _for(who: Principal, channel: ChannelOut) -> ChannelOut:
    """The webhook token lets its holder post reports as the provider: admins only see it."""
    if who.role is Role.ADMIN or "?token=" not in channel.webhook_url:
        return channel
    return channel.model_copy(update={"webhook_url": channel.webhook_url.split("?")[0]})


@router.patch("/channels/{channel_id}", tags=["channels"])
def patch_channel(
    channel_id: str, data: ChannelUpdate, request: Request, who: Principal = principal_of(*ADMIN)
) -> ChannelOut:
    return container(request).channels.update(who.org_id, channel_id, data, by=who)


@router.delete("/channels/{channel_id}", status_code=204, tags=["channels"])
def delete_channel(
    channel_id: str, request: Request, who: Principal = principal_of(*ADMIN)
) -> Response:
    container(request).channels.delete(who.org_id, channel_id, by=who)
    return Response(status_code=204)


# --- templates ----------------------------------------------------------------------------


@router.post("/templates", status_code=201, tags=["templates"])
def post_template(
    data: TemplateCreate, request: Request, who: Principal = principal_of(*ADMIN)
) -> TemplateOut:
    return container(request).templates.create(who.org_id, data, by=who)


@router.get("/templates", tags=["templates"])
def list_templates(
    request: Request,
    cursor: str | None = Cursor,
    limit: int = Limit,
    who: Principal = principal_of(*READERS),
) -> Page[TemplateOut]:
    return container(request).templates.list(who.org_id, cursor, limit)


@router.get("/templates/{template_id}", tags=["templates"])
def get_template(
    template_id: str, request: Request, who: Principal = principal_of(*READERS)
) -> TemplateOut:
    return container(request).templates.get(who.org_id, template_id)


@router.patch("/templates/{template_id}", tags=["templates"])
def patch_template(
    template_id: str,
    data: TemplateUpdate,
    request: Request,
    dry_run: bool = Query(False, description="Answer the change and its warnings; save nothing."),
    who: Principal = principal_of(*ADMIN),
) -> TemplateChangeOut:
    return container(request).templates.update(
        who.org_id, template_id, data, dry_run=dry_run, by=who
    )


@router.get("/templates/{template_id}/versions", tags=["templates"])
def list_template_versions(
    template_id: str, request: Request, who: Principal = principal_of(*READERS)
) -> Page[TemplateVersionOut]:
    versions = container(request).templates.versions(who.org_id, template_id)
    return Page[TemplateVersionOut](data=list(versions))


@router.delete("/templates/{template_id}", status_code=204, tags=["templates"])
def delete_template(
    template_id: str, request: Request, who: Principal = principal_of(*ADMIN)
) -> Response:
    container(request).templates.delete(who.org_id, template_id, by=who)
    return Response(status_code=204)


@router.post("/templates/{template_id}/preview", tags=["templates"])
def preview_template(
    template_id: str,
    data: PreviewIn,
    request: Request,
    who: Principal = principal_of(*READERS),
) -> PreviewOut:
    return container(request).templates.preview(who.org_id, template_id, data)


# --- outbound configurations --------------------------------------------------------------


@router.post("/outbound-configurations", status_code=201, tags=["configurations"])
def post_configuration(
    data: ConfigurationCreate, request: Request, who: Principal = principal_of(*ADMIN)
) -> ConfigurationOut:
    return container(request).configurations.create(who.org_id, data, by=who)


@router.get("/outbound-configurations", tags=["configurations"])
def list_configurations(
    request: Request,
    cursor: str | None = Cursor,
    limit: int = Limit,
    who: Principal = principal_of(*READERS),
) -> Page[ConfigurationOut]:
    return container(request).configurations.list(who.org_id, cursor, limit)


@router.get("/outbound-configurations/{config_id}", tags=["configurations"])
def get_configuration(
    config_id: str, request: Request, who: Principal = principal_of(*READERS)
) -> ConfigurationOut:
    return container(request).configurations.get(who.org_id, config_id)


@router.patch("/outbound-configurations/{config_id}", tags=["configurations"])
def patch_configuration(
    config_id: str,
    data: ConfigurationUpdate,
    request: Request,
    who: Principal = principal_of(*ADMIN),
) -> ConfigurationOut:
    return container(request).configurations.update(who.org_id, config_id, data, by=who)


@router.delete("/outbound-configurations/{config_id}", status_code=204, tags=["configurations"])
def delete_configuration(
    config_id: str, request: Request, who: Principal = principal_of(*ADMIN)
) -> Response:
    container(request).configurations.delete(who.org_id, config_id, by=who)
    return Response(status_code=204)
