"""A real HTTP server that receives webhooks the way an integrator's system would.

It verifies every call with the ``standardwebhooks`` library, keeps the first copy of each
``webhook-id`` (later copies are duplicates it acknowledges), and can be told to misbehave: a
``fault`` function chooses, per call, to answer normally, answer 500, or hang past the sender's
timeout; ``stop()`` and ``start()`` take it down and bring it back on the same port.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["Call", "Receiver"]

OK = "ok"
ERROR = "error"
HANG = "hang"


@dataclass
class Call:
    """One request the receiver got."""

    webhook_id: str
    payload: dict[str, Any] | None
    verified: bool
    answer: str


@dataclass
class Receiver:
    secret: str | None = None
    fault: Callable[[str, int], str] | None = None
    hang_seconds: float = 5.0
    delay_seconds: float = 0.0
    """How long every answer takes (a slow receiver keeps calls in flight)."""
    calls: list[Call] = field(default_factory=list)
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    """First accepted copy of each event, by webhook-id, in the order they were accepted."""
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        if not self.port:
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def copies(self, webhook_id: str) -> int:
        return sum(1 for c in self.calls if c.webhook_id == webhook_id and c.answer == OK)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        webhook_id = request.headers.get("webhook-id", "")
        verified = True
        payload: dict[str, Any] | None = None
        if self.secret is not None:
            try:
                payload = Webhook(self.secret).verify(body, dict(request.headers))
            except WebhookVerificationError:
                verified = False
        else:
            payload = json.loads(body)
        seen = sum(1 for c in self.calls if c.webhook_id == webhook_id)
        answer = self.fault(webhook_id, seen) if self.fault is not None else OK
        self.calls.append(Call(webhook_id, payload, verified, answer))
        if not verified:
            return web.Response(status=400, text="bad signature")
        if answer == ERROR:
            return web.Response(status=500, text="oops")
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if answer == HANG:
            await asyncio.sleep(self.hang_seconds)
            # Processed anyway: the sender gave up waiting, so it will send this again.
        if payload is not None and webhook_id not in self.accepted:
            self.accepted[webhook_id] = payload
        return web.Response(status=204)
