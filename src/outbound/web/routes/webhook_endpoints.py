"""Webhook endpoints of the organisation: CRUD, the delivery log, redelivery, test events."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from outbound.schemas import (
    Page,
    Role,
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointOut,
    WebhookEndpointUpdate,
)
from outbound.services.auth import Principal
from outbound.web.deps import container, principal_of

__all__ = ["router"]

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"])
ADMIN = (Role.ADMIN,)
Cursor = Query(None, description="next_cursor of the previous page")
Limit = Query(50, ge=1, le=500)


@router.post("", status_code=201)
def post_endpoint(
    data: WebhookEndpointCreate, request: Request, who: Principal = principal_of(*ADMIN)
) -> WebhookEndpointCreated:
    """Create an endpoint; the answer carries its signing secret, shown this once."""
    return container(request).webhook_endpoints.create(who.org_id, data, by=who)


@router.get("")
def list_endpoints(
    request: Request,
    cursor: str | None = Cursor,
    limit: int = Limit,
    who: Principal = principal_of(*ADMIN),
) -> Page[WebhookEndpointOut]:
    return container(request).webhook_endpoints.list(who.org_id, cursor, limit)


@router.get("/{endpoint_id}")
def get_endpoint(
    endpoint_id: str, request: Request, who: Principal = principal_of(*ADMIN)
) -> WebhookEndpointOut:
    return container(request).webhook_endpoints.get(who.org_id, endpoint_id)


@router.patch("/{endpoint_id}")
def patch_endpoint(
    endpoint_id: str,
    data: WebhookEndpointUpdate,
    request: Request,
    who: Principal = principal_of(*ADMIN),
) -> WebhookEndpointOut:
    return container(request).webhook_endpoints.update(who.org_id, endpoint_id, data, by=who)


@router.delete("/{endpoint_id}", status_code=204)
def delete_endpoint(
    endpoint_id: str, request: Request, who: Principal = principal_of(*ADMIN)
) -> Response:
    container(request).webhook_endpoints.delete(who.org_id, endpoint_id, by=who)
    return Response(status_code=204)


@router.post("/{endpoint_id}/test", status_code=202)
def send_test(
    endpoint_id: str, request: Request, who: Principal = principal_of(*ADMIN)
) -> WebhookDeliveryOut:
    """Queue a ``webhook.test`` event for this endpoint; follow it in the delivery log."""
    return container(request).webhook_endpoints.send_test(who.org_id, endpoint_id)


@router.get("/{endpoint_id}/deliveries")
def list_deliveries(
    endpoint_id: str,
    request: Request,
    cursor: str | None = Cursor,
    limit: int = Limit,
    status: str | None = Query(None, pattern="^(pending|delivering|succeeded|failed)$"),
    who: Principal = principal_of(*ADMIN),
) -> Page[WebhookDeliveryOut]:
    """The delivery log, newest first: each event sent, its status and last answer."""
    return container(request).webhook_endpoints.deliveries(
        who.org_id, endpoint_id, cursor, limit, status
    )


@router.get("/{endpoint_id}/deliveries/{delivery_id}")
def get_delivery(
    endpoint_id: str, delivery_id: str, request: Request, who: Principal = principal_of(*ADMIN)
) -> WebhookDeliveryOut:
    """One delivery with its event and every attempt (time, status code or error)."""
    return container(request).webhook_endpoints.delivery(who.org_id, endpoint_id, delivery_id)


@router.post("/{endpoint_id}/deliveries/{delivery_id}/redeliver", status_code=202)
def redeliver(
    endpoint_id: str, delivery_id: str, request: Request, who: Principal = principal_of(*ADMIN)
) -> WebhookDeliveryOut:
    """Send the delivery's event again (same webhook-id), as a new delivery."""
    return container(request).webhook_endpoints.redeliver(who.org_id, endpoint_id, delivery_id)
