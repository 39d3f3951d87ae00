"""Provider webhooks: one URL per channel for delivery reports and inbound messages."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from outbound.adapters.providers.base import WebhookSignatureError
from outbound.config import Settings
from outbound.services.webhooks import log_unmatched
from outbound.web.deps import container
from outbound.web.errors import error_body

__all__ = ["public_url", "router"]

router = APIRouter(tags=["webhooks"])


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


@router.post("/webhooks/{channel_id}", include_in_schema=True)
async def webhook(channel_id: str, request: Request) -> Response:
    """Delivery reports and inbound messages from the channel's provider (signed)."""
    c = container(request)
    body = await request.body()
    try:
        channel, events = await run_in_threadpool(
            c.webhooks.verify,
            channel_id,
            url=public_url(request, c.settings),
            token=request.query_params.get("token"),
            headers=dict(request.headers),
            body=body,
        )
    except WebhookSignatureError as exc:
        return JSONResponse(error_body("invalid_signature", str(exc)), status_code=403)
    if events.statuses:
        # Concurrent callbacks share write transactions (see StatusService.report).
        matched = await asyncio.gather(
            *(c.statuses.report(r, channel_id=channel.id) for r in events.statuses)
        )
        log_unmatched(events, list(matched))
    if events.inbound:
        await run_in_threadpool(c.webhooks.receive, channel, events)
    reply = events.reply
    return Response(content=reply.body, status_code=reply.status, media_type=reply.content_type)
