"""Provider webhooks: one URL per channel for delivery reports and inbound messages."""

from __future__ import annotations

import logging

from fastapi import APIRouter, FastAPI, Request, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from outbound.config import Settings
from outbound.errors import RequestError, WebhookSignatureError
from outbound.web.deps import container
from outbound.web.errors import error_response

__all__ = ["WebhookFastPath", "handle_webhook", "install_webhook_fast_path", "public_url", "router"]

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])
_PREFIX = "/webhooks/"


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


class WebhookFastPath:
    """Provider calls go straight to :func:`handle_webhook`, past the framework's routing.

    A busy service receives two of them per message it sends (``sent``, then ``delivered``):
    they are most of its requests, and matching them against every route and resolving
    dependencies cost more than handling them. Everything else goes on to the application.
    """

    def __init__(self, app: ASGIApp, route: BaseRoute | None = None) -> None:
        self._app = app
        self._route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(_PREFIX):
                channel_id = path[len(_PREFIX) :]
                if channel_id and "/" not in channel_id:
                    if self._route is not None:
                        scope["route"] = self._route  # the route template labels the metrics
                    try:
                        response = await handle_webhook(channel_id, Request(scope, receive))
                    except Exception as exc:
                        log.exception("webhook for channel %s failed", channel_id)
                        response = error_response(exc)
                    await response(scope, receive, send)
                    return
        await self._app(scope, receive, send)


def install_webhook_fast_path(app: FastAPI) -> None:
    route = next(
        (r for r in router.routes if getattr(r, "path", None) == _PREFIX + "{channel_id}"), None
    )
    app.add_middleware(WebhookFastPath, route=route)
