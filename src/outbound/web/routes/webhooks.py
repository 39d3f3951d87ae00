"""Provider webhooks: one URL per channel for delivery reports and inbound messages."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from outbound.config import Settings
from outbound.errors import RequestError, WebhookSignatureError
from outbound.services.webhooks import WEBHOOK_PATH_PREFIX
from outbound.web.deps import container
from outbound.web.errors import error_response

__all__ = ["WEBHOOK_ROUTE", "handle_webhook", "public_url", "router"]

router = APIRouter(tags=["webhooks"])
WEBHOOK_ROUTE = WEBHOOK_PATH_PREFIX + "{channel_id}"


def public_url(request: Request, settings: Settings) -> str:
    """The URL the provider called, as it signed it (proxies rewrite what we receive)."""
    path_and_query = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/") + path_and_query
    if settings.trust_forwarded_headers:
        proto = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0]
        host = request.headers.get("x-forwarded-host") or request.headers.get("host", "")
        return f"{proto.strip()}://{host.split(',')[0].strip()}{path_and_query}"
    return str(request.url)


@router.post(WEBHOOK_ROUTE, include_in_schema=True)
async def webhook(channel_id: str, request: Request) -> Response:
    """Delivery reports and inbound messages from the channel's provider (signed)."""
    return await handle_webhook(channel_id, request)


async def handle_webhook(channel_id: str, request: Request) -> Response:
    """Hand one provider call to :meth:`WebhookService.handle`; its reply back as HTTP."""
    c = container(request)
    try:
        reply = await c.webhooks.handle(
            channel_id,
            url=public_url(request, c.settings),
            token=request.query_params.get("token"),
            headers=dict(request.headers),
            body=await request.body(),
        )
    except (WebhookSignatureError, RequestError) as exc:
        return error_response(exc)
    return Response(content=reply.body, status_code=reply.status, media_type=reply.content_type)
