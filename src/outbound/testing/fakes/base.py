"""Shared machinery of the fake provider servers: lifecycle, request capture, faults, callbacks.

Every fake is an :mod:`aiohttp.web` application served by an :class:`~aiohttp.web.AppRunner`
on ``127.0.0.1`` (port 0 picks a free port). :class:`FakeProviderServer` gives them:

- ``async start() -> base URL``, ``async stop()`` and ``async with`` support;
- ``requests``: every request received (:class:`CapturedRequest`, raw body bytes included),
  recorded before anything else happens to it (so dropped and failed requests are there too);
- ``latency`` (seconds to wait before answering any API request) and fault injection on the next
  API requests, in the order they were queued: :meth:`~FakeProviderServer.fail_next` (answer with
  a status and body, optionally ``Retry-After``), :meth:`~FakeProviderServer.drop_next` (close the
  connection without a response), :meth:`~FakeProviderServer.drop_after_next` (handle the
  request -- the message is created -- then close the connection without the answer) and
  :meth:`~FakeProviderServer.slow_next` (extra delay); :meth:`~FakeProviderServer.down_for`
  answers every API request with an error for a while (an outage);
  :meth:`~FakeProviderServer.drop_callbacks` loses callbacks instead (as when the service they
  go to is down: the provider's own record of each message still changes);
- ``slow_share`` and ``slow_seconds``: that share of API requests, spread evenly (one in ten
  for 0.1), waits ``slow_seconds`` more before being handled;
- ``max_concurrent``: more API requests in flight than this get the provider's 429 answer;
- callbacks (status reports, inbound messages, Event Grid events) POSTed by the fake with its own
  :class:`aiohttp.ClientSession` (100 connections; an attempt not wholly answered within
  ``callback_timeout`` seconds of being sent is given up on); each attempt is recorded in
  ``callback_results`` (:class:`CallbackResult`). Background callback sequences run as
  tasks; :meth:`drain` waits for them, :meth:`stop` cancels whatever is left.

Time comes from ``clock`` (an :class:`outbound.clock.Clock`), so tests can move it; provider
signatures that carry a date (TeleSign, ACS) are still checked against it.

:class:`WebhookReceiver` is the other end: a tiny recording server to point callbacks at.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from types import TracebackType
from typing import Any, ClassVar, Literal, NoReturn, Self, TypedDict, Unpack
from urllib.parse import parse_qs

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from outbound.clock import Clock, SystemClock

__all__ = [
    "CALLBACK_TALLY_PATH",
    "CallbackResult",
    "CapturedRequest",
    "FakeProviderServer",
    "ServerOptions",
    "WebhookReceiver",
    "format_rfc1123",
    "format_rfc2822",
    "format_rfc3339",
    "parse_http_date",
    "sms_segments",
]

JSONBody = Mapping[str, Any] | Sequence[Any]
LISTEN_BACKLOG = 4096
CALLBACK_CONNECTIONS = 100
"""Callbacks a fake has in flight at once (its session's connections)."""


class ServerOptions(TypedDict, total=False):
    """Keyword options every fake accepts (see :class:`FakeProviderServer`)."""

    host: str
    port: int
    latency: float
    clock: Clock
    callback_delay: float
    callback_retry_delays: Sequence[float]
    callback_timeout: float
    max_concurrent: int | None
    slow_share: float
    slow_seconds: float


@dataclass(frozen=True)
class CapturedRequest:
    """One HTTP request as the fake received it."""

    method: str
    path: str
    """The raw (still percent-encoded) path, without the query string."""
    query_string: str
    query: MultiDictProxy[str]
    headers: CIMultiDictProxy[str]
    body: bytes
    received_at: datetime

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        """The body parsed as ``application/x-www-form-urlencoded`` (blank values kept)."""
        return parse_qs(self.text, keep_blank_values=True)


@dataclass(frozen=True)
class CallbackResult:
    """One callback attempt made by the fake (status report, inbound message, event...)."""

    kind: str
    url: str
    status: int | None
    """The HTTP status our webhook answered, or ``None`` when no answer came (see ``error``)."""
    body: bytes
    headers: Mapping[str, str]
    response_body: bytes
    error: str | None
    attempt: int
    sent_at: datetime

    @property
    def ok(self) -> bool:
        """Whether the webhook answered with a 2xx status."""
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class _Fault:
    kind: Literal["fail", "drop", "drop_after", "slow"]
    status: int = 500
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0


CALLBACK_TALLY_PATH = "/_fake/callbacks"
"""``GET`` it for :meth:`FakeProviderServer.callback_tally` as JSON (not a provider's path)."""


class FakeProviderServer:
    """Base class of the fakes: an aiohttp server with capture, latency, faults and callbacks.

    Subclasses provide :meth:`_routes` and :meth:`_error_response` (the provider's error body
    for a status, used by faults, the concurrency limit and unknown paths).
    """

    provider: ClassVar[str] = "fake"
    default_callback_retry_delays: ClassVar[tuple[float, ...]] = ()

    def __init__(self, **options: Unpack[ServerOptions]) -> None:
        self.host: str = options.get("host", "127.0.0.1")
        self._requested_port: int = options.get("port", 0)
        self.latency: float = options.get("latency", 0.0)
        self.clock: Clock = options.get("clock") or SystemClock()
        self.callback_delay: float = options.get("callback_delay", 0.05)
        self.callback_retry_delays: tuple[float, ...] = tuple(
            options.get("callback_retry_delays", self.default_callback_retry_delays)
        )
        self.callback_timeout: float = options.get("callback_timeout", 10.0)
        self.max_concurrent: int | None = options.get("max_concurrent")
        self.slow_share: float = options.get("slow_share", 0.0)
        self.slow_seconds: float = options.get("slow_seconds", 0.0)
        self._api_requests = 0
        self._down_until: float | None = None
        self._down_status: int | None = None
        self.requests: list[CapturedRequest] = []
        self.callback_results: list[CallbackResult] = []
        self._faults: deque[_Fault] = deque()
        self._callbacks_to_drop: int | None = 0
        self._in_flight = 0
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._callback_slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._base_url: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> str:
        """Start serving; return the base URL (``http://127.0.0.1:PORT``)."""
        if self._base_url is not None:
            return self._base_url
        app = web.Application(middlewares=[self._middleware])
        app.add_routes(self._routes())
        app.router.add_get(CALLBACK_TALLY_PATH, self._callback_tally)
        app.router.add_route("*", "/{tail:.*}", self._unknown_route)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        # A provider takes every connection a busy sender opens at once (several workers of
        # hundreds of calls each); the listen queue of 128 by default would drop some.
        site = web.TCPSite(runner, self.host, self._requested_port, backlog=LISTEN_BACKLOG)
        await site.start()
        self._runner = runner
        port = int(runner.addresses[0][1])
        # A callback times out ``callback_timeout`` seconds after it is sent, as a provider's
        # does: it waits for one of the fake's connections first (its own queue, not the
        # receiver's, and not counted), then has that long for the whole exchange.
        self._callback_slots = asyncio.Semaphore(CALLBACK_CONNECTIONS)
        self._session = ClientSession(
            connector=TCPConnector(limit=CALLBACK_CONNECTIONS),
            timeout=ClientTimeout(total=self.callback_timeout),
        )
        self._base_url = f"http://{self.host}:{port}"
        return self._base_url

    async def stop(self) -> None:
        """Cancel pending callbacks, close the callback session and stop serving."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._base_url = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """The base URL; only while started."""
        if self._base_url is None:
            raise RuntimeError(f"the fake {self.provider} server is not started")
        return self._base_url

    @property
    def port(self) -> int:
        """The TCP port served; only while started."""
        return int(self.base_url.rsplit(":", 1)[1])

    def now(self) -> datetime:
        """The fake's current time (timezone-aware UTC)."""
        return self.clock.now()

    # -- faults ----------------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        status: int = 500,
        body: bytes | str | JSONBody | None = None,
        retry_after: float | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``count`` API requests with ``status`` and ``body``.

        ``body=None`` uses the provider's own error body for that status; a mapping or list is
        sent as JSON. ``retry_after`` adds a ``Retry-After`` header (seconds, or a raw value).
        """
        raw: bytes | None
        if body is None:
            raw = None
        elif isinstance(body, bytes):
            raw = body
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = json.dumps(body).encode()
        extra = dict(headers or {})
        if retry_after is not None:
            if isinstance(retry_after, str):
                extra["Retry-After"] = retry_after
            else:
                extra["Retry-After"] = str(math.ceil(retry_after))
        fault = _Fault("fail", status=status, body=raw, headers=tuple(extra.items()))
        self._faults.extend([fault] * count)

    def drop_next(self, count: int = 1) -> None:
        """Close the connection of the next ``count`` API requests without any response."""
        self._faults.extend([_Fault("drop")] * count)

    def drop_after_next(self, count: int = 1) -> None:
        """Handle the next ``count`` API requests (a send creates its message), then close the
        connection without sending the answer: the caller cannot tell whether it was sent."""
        self._faults.extend([_Fault("drop_after")] * count)

    def down_for(self, seconds: float, status: int | None = 503) -> None:
        """An outage: for ``seconds`` from now, every API request is answered with ``status``
        (the provider's error body), or its connection closed unanswered when ``status`` is
        ``None``. Queued faults wait until it is over."""
        self._down_until = asyncio.get_running_loop().time() + seconds
        self._down_status = status

    @property
    def down(self) -> bool:
        """Whether an outage set by :meth:`down_for` is under way."""
        if self._down_until is None:
            return False
        return asyncio.get_running_loop().time() < self._down_until

    def slow_next(self, count: int = 1, seconds: float = 1.0) -> None:
        """Delay the next ``count`` API requests by ``seconds`` (on top of ``latency``)."""
        self._faults.extend([_Fault("slow", seconds=seconds)] * count)

    def drop_callbacks(self, count: int | None = None) -> None:
        """Lose the next ``count`` callback attempts, or every one until
        :meth:`restore_callbacks` (``None``): none is POSTed, each is recorded in
        ``callback_results`` without a status, and no retry is made for it."""
        self._callbacks_to_drop = count

    def restore_callbacks(self) -> None:
        """POST callbacks again."""
        self._callbacks_to_drop = 0

    def clear_faults(self) -> None:
        """Forget the faults not yet used."""
        self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """How many queued faults are not used yet."""
        return len(self._faults)

    # -- callbacks -------------------------------------------------------------------------

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every scheduled callback (and its retries) is done.

        Raises :class:`TimeoutError` after ``timeout`` seconds, and re-raises the first
        unexpected error of a callback task.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._tasks:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{len(self._tasks)} callback task(s) still running")
            done, _ = await asyncio.wait(list(self._tasks), timeout=remaining)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _post_callback(
        self,
        kind: str,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        retry_delays: Sequence[float] = (),
    ) -> CallbackResult:
        """POST ``body`` to ``url``; retry after each of ``retry_delays`` while not accepted."""
        attempt = 0
        while True:
            attempt += 1
            result = await self._post_once(kind, url, body, headers, attempt)
            dropped = result.error == "dropped (fault)"
            if self._callback_accepted(result) or dropped or attempt > len(retry_delays):
                return result
            await asyncio.sleep(retry_delays[attempt - 1])

    def _callback_accepted(self, result: CallbackResult) -> bool:
        return result.ok

    def callback_tally(self) -> dict[str, Any]:
        """How the callbacks posted so far ended: ``posted`` (attempts), ``accepted``, and
        ``failed`` by cause (``timeout``, ``connection``, ``dropped`` as a fault, or the
        status answered, ``HTTP 500``)."""
        failed: dict[str, int] = {}
        accepted = 0
        for result in self.callback_results:
            if self._callback_accepted(result):
                accepted += 1
                continue
            if result.status is not None:
                cause = f"HTTP {result.status}"
            elif result.error == "dropped (fault)":
                cause = "dropped"
            elif result.error is not None and "Timeout" in result.error.split(":")[0]:
                cause = "timeout"
            else:
                cause = "connection"
            failed[cause] = failed.get(cause, 0) + 1
        return {"posted": len(self.callback_results), "accepted": accepted, "failed": failed}

    async def _callback_tally(self, _request: web.Request) -> web.Response:
        # For a benchmark in another process: the callbacks the fake gave up on.
        return web.json_response(self.callback_tally())

    async def _post_once(
        self, kind: str, url: str, body: bytes, headers: Mapping[str, str], attempt: int
    ) -> CallbackResult:
        if self._session is None or self._callback_slots is None:
            raise RuntimeError(f"the fake {self.provider} server is not started")
        sent_at = self.now()
        status: int | None = None
        response_body = b""
        error: str | None = None
        if self._callbacks_to_drop is None or self._callbacks_to_drop > 0:
            if self._callbacks_to_drop is not None:
                self._callbacks_to_drop -= 1
            error = "dropped (fault)"
        else:
            async with self._callback_slots:
                sent_at = self.now()
                try:
                    async with self._session.post(
                        url, data=body, headers=dict(headers)
                    ) as response:
                        # Answered once the whole answer is in: one cut short is not.
                        response_body = await response.read()
                        status = response.status
                except (ClientError, TimeoutError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
        result = CallbackResult(
            kind=kind,
            url=url,
            status=status,
            body=body,
            headers=dict(headers),
            response_body=response_body,
            error=error,
            attempt=attempt,
            sent_at=sent_at,
        )
        self.callback_results.append(result)
        return result

    # -- hooks for subclasses --------------------------------------------------------------

    def _routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def _error_response(self, status: int, message: str) -> web.Response:
        """The provider's error answer for ``status``."""
        return web.json_response({"status": status, "message": message}, status=status)

    def _is_api_request(self, request: web.Request) -> bool:
        """Whether latency, faults and the concurrency limit apply to this request."""
        return True

    async def _unknown_route(self, request: web.Request) -> web.StreamResponse:
        return self._error_response(404, f"The requested resource {request.path} was not found")

    # -- plumbing --------------------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self,
        request: web.Request,
        handler: Handler,
    ) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            CapturedRequest(
                method=request.method,
                path=request.raw_path.split("?", 1)[0],
                query_string=request.query_string,
                query=MultiDictProxy(MultiDict(request.query)),
                headers=CIMultiDictProxy(CIMultiDict(request.headers)),
                body=body,
                received_at=self.now(),
            )
        )
        if not self._is_api_request(request):
            response: web.StreamResponse = await handler(request)
            return response
        self._in_flight += 1
        try:
            over_limit = self.max_concurrent is not None and self._in_flight > self.max_concurrent
            if self.down:
                if self._down_status is None:
                    self._drop(request)
                return self._error_response(self._down_status, "Service Unavailable")
            fault = self._faults.popleft() if self._faults else None
            delay = self.latency + (fault.seconds if fault is not None else 0.0)
            self._api_requests += 1
            if self.slow_share > 0 and int(self._api_requests * self.slow_share) > int(
                (self._api_requests - 1) * self.slow_share
            ):
                delay += self.slow_seconds
            if delay > 0:
                await asyncio.sleep(delay)
            if fault is not None and fault.kind == "drop":
                self._drop(request)
            if fault is not None and fault.kind == "fail":
                return self._fault_response(fault)
            if over_limit:
                return self._error_response(429, "Too Many Requests")
            response = await handler(request)
            if fault is not None and fault.kind == "drop_after":
                self._drop(request)
            return response
        finally:
            self._in_flight -= 1

    @staticmethod
    def _drop(request: web.Request) -> NoReturn:
        if request.transport is not None:
            request.transport.close()
        # Ends the handler without writing anything; aiohttp treats it as a cancelled request
        # and does not log an error.
        raise asyncio.CancelledError

    def _fault_response(self, fault: _Fault) -> web.Response:
        if fault.body is None:
            response = self._error_response(fault.status, "Injected fault")
        else:
            content_type = "text/plain"
            with contextlib.suppress(ValueError):
                json.loads(fault.body)
                content_type = "application/json"
            response = web.Response(status=fault.status, body=fault.body)
            response.content_type = content_type
        for name, value in fault.headers:
            response.headers[name] = value
        return response


Responder = Callable[[CapturedRequest], web.StreamResponse | Awaitable[web.StreamResponse]]


class WebhookReceiver:
    """A tiny aiohttp server that records the webhooks a fake sends (for tests and the demo).

    Every request to any path is recorded in ``requests`` and answered by ``responder`` (a
    function of the :class:`CapturedRequest`), or with ``status`` and an empty body.
    """

    def __init__(
        self,
        status: int = 200,
        responder: Responder | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.status = status
        self.responder = responder
        self.host = host
        self.requests: list[CapturedRequest] = []
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    async def start(self) -> str:
        """Start listening on a free port; return the base URL."""
        if self._base_url is not None:
            return self._base_url
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, self.host, 0).start()
        self._runner = runner
        self._base_url = f"http://{self.host}:{int(runner.addresses[0][1])}"
        return self._base_url

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._base_url = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def url(self, path: str = "/hook") -> str:
        """The full URL of ``path`` (which may carry a query string) on this receiver."""
        if self._base_url is None:
            raise RuntimeError("the webhook receiver is not started")
        return self._base_url + path

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[CapturedRequest]:
        """Wait until at least ``count`` requests arrived; return them all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.requests) < count:
            if loop.time() > deadline:
                raise TimeoutError(f"{len(self.requests)} of {count} webhook requests arrived")
            await asyncio.sleep(0.01)
        return list(self.requests)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        captured = CapturedRequest(
            method=request.method,
            path=request.raw_path.split("?", 1)[0],
            query_string=request.query_string,
            query=MultiDictProxy(MultiDict(request.query)),
            headers=CIMultiDictProxy(CIMultiDict(request.headers)),
            body=await request.read(),
            received_at=datetime.now(UTC),
        )
        self.requests.append(captured)
        if self.responder is None:
            return web.Response(status=self.status)
        answer = self.responder(captured)
        if isinstance(answer, web.StreamResponse):
            return answer
        return await answer


# -- shared helpers ----------------------------------------------------------------------------


def format_rfc2822(when: datetime) -> str:
    """``Thu, 30 Jul 2015 20:12:31 +0000`` (Twilio's dates)."""
    return format_datetime(when.astimezone(UTC))


def format_rfc1123(when: datetime) -> str:
    """``Wed, 14 Dec 2016 18:20:12 GMT`` (HTTP dates)."""
    return format_datetime(when.astimezone(UTC), usegmt=True)


def format_rfc3339(when: datetime) -> str:
    """``2016-12-14T18:20:12.123456Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_http_date(value: str) -> datetime | None:
    """Parse an RFC 1123/2822 date into an aware UTC datetime; ``None`` when malformed."""
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


def _pack(units: list[int], single: int, multi: int) -> int:
    """Number of parts for ``units`` (sizes of indivisible characters)."""
    if sum(units) <= single:
        return 1
    parts, used = 1, 0
    for size in units:
        if used + size > multi:
            parts += 1
            used = 0
        used += size
    return parts


def sms_segments(text: str) -> int:
    """How many SMS segments ``text`` takes (GSM-7 160/153, else UCS-2 70/67); at least 1."""
    if all(c in _GSM7_BASIC or c in _GSM7_EXTENSION for c in text):
        return _pack([2 if c in _GSM7_EXTENSION else 1 for c in text], 160, 153)
    return _pack([2 if ord(c) > 0xFFFF else 1 for c in text], 70, 67)
