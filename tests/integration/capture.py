"""A tiny aiohttp capture server for conformance tests.

It records every request (method, raw path, query, headers, raw body) before answering, and
answers with a configurable canned response, or misbehaves on purpose: ``behaviour="close"``
drops the connection without answering, ``behaviour="sleep"`` waits ``sleep_seconds`` first
(longer than a short client timeout)::

    async with CaptureServer(201, {"sid": "SM..."}) as server:
        ...  # point a client at server.url
        assert server.requests[0].form()["To"] == ["+15551234567"]
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["Canned", "CaptureServer", "Captured"]

Behaviour = Literal["answer", "close", "sleep"]


@dataclass(frozen=True)
class Captured:
    """One request as the server received it."""

    method: str
    path: str
    """The raw (still percent-encoded) path, without the query string."""
    query_string: str
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.query_string, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def form(self) -> dict[str, list[str]]:
        """The body as a form: every name with all its values, in order."""
        return parse_qs(self.body.decode("utf-8"), keep_blank_values=True)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Canned:
    """A canned answer."""

    status: int = 200
    body: bytes = b"{}"
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    @classmethod
    def of(
        cls, status: int, json_body: Any = None, headers: Mapping[str, str] | None = None
    ) -> Canned:
        body = b"" if json_body is None else json.dumps(json_body).encode()
        return cls(status=status, body=body, headers=dict(headers or {}))


Answer = Canned | Callable[[Captured], Canned]


class CaptureServer:
    """Records requests on ``127.0.0.1`` (a free port) and answers each with ``answer``."""

    def __init__(
        self,
        status: int = 200,
        json_body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        answer: Answer | None = None,
        behaviour: Behaviour = "answer",
        sleep_seconds: float = 5.0,
    ) -> None:
        self.answer: Answer = answer or Canned.of(status, json_body, headers)
        self.behaviour: Behaviour = behaviour
        self.sleep_seconds = sleep_seconds
        self.requests: list[Captured] = []
        self._runner: web.AppRunner | None = None
        self._port = 0

    def respond(
        self, status: int, json_body: Any = None, headers: Mapping[str, str] | None = None
    ) -> None:
        """Answer the next requests with this status and JSON body."""
        self.answer = Canned.of(status, json_body, headers)
        self.behaviour = "answer"

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, as a client puts it in the ``Host`` header."""
        return f"127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def last(self) -> Captured:
        assert self.requests, "no request was captured"
        return self.requests[-1]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        captured = Captured(
            method=request.method,
            path=request.raw_path.split("?", 1)[0],
            query_string=request.query_string,
            headers=CIMultiDictProxy(CIMultiDict(request.headers)),
            body=await request.read(),
        )
        self.requests.append(captured)
        if self.behaviour == "close":
            if request.transport is not None:
                request.transport.close()
            # Ends the handler without writing anything (aiohttp logs nothing for it).
            raise asyncio.CancelledError
        if self.behaviour == "sleep":
            await asyncio.sleep(self.sleep_seconds)
        canned = self.answer(captured) if callable(self.answer) else self.answer
        response = web.Response(status=canned.status, body=canned.body)
        response.content_type = canned.content_type
        for name, value in canned.headers.items():
            response.headers[name] = value
        return response

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
