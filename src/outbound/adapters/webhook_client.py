"""The HTTP client that delivers webhooks to integrators' endpoints (aiohttp).

Every address is checked where the connection is made: a host name is resolved by
:class:`GuardedResolver`, which refuses the answer when an address in it is not public (unless
allowed), and the connection goes to the addresses it checked, so a name that resolved to a
public address when the endpoint was created and to ``127.0.0.1`` now (DNS rebinding) is
refused. Addresses written in the URL are checked before the call. Redirects are not followed.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from outbound import __version__
from outbound.config import DEFAULT_WEBHOOK_TIMEOUT
from outbound.domain.webhooks import AllowedHosts, check_address
from outbound.errors import UnsafeWebhookAddressError

__all__ = [
    "GuardedResolver",
    "WebhookClient",
    "WebhookResponse",
    "resolve_addresses",
]

_USER_AGENT = f"outbound-webhooks/{__version__}"


@dataclass(frozen=True)
class WebhookResponse:
    """The status code of the endpoint's answer, or why there was none; how long it took."""

    status_code: int | None
    error: str | None
    duration_ms: int


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then refuses non-public addresses."""

    def __init__(self, allowed: AllowedHosts) -> None:
        self._allowed = allowed
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            address = ipaddress.ip_address(result["host"].split("%")[0])
            check_address(host, address, self._allowed)
        return results

    async def close(self) -> None:
        await self._inner.close()


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class WebhookClient:
    """Posts signed events; one pooled session per process, made inside the running loop."""

    def __init__(
        self,
        allowed: AllowedHosts,
        *,
        timeout: float = DEFAULT_WEBHOOK_TIMEOUT,
        pool_size: int = 50,
    ) -> None:
        self._allowed = allowed
        self._timeout = timeout
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, resolver=GuardedResolver(self._allowed)
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self._timeout, connect=min(self._timeout, 5.0)),
                headers={"User-Agent": _USER_AGENT},
            )
        return self._session

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> WebhookResponse:
        """POST ``body`` to ``url``; never raises for what the endpoint or network did."""
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            host = urlsplit(url).hostname or ""
            literal = _literal_address(host)
            if literal is not None:
                check_address(host, literal, self._allowed)
            async with self._client().post(
                url,
                data=body,
                headers={"Content-Type": "application/json", **headers},
                allow_redirects=False,
            ) as response:
                status = response.status
                await response.content.read(4096)
        except UnsafeWebhookAddressError as exc:
            error = f"refused: {exc}"
        except TimeoutError:
            error = f"timed out after {self._timeout:g} s"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
        return WebhookResponse(status, error, int((time.perf_counter() - started) * 1000))

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def resolve_addresses(host: str, port: int | None) -> list[Any]:
    """The addresses ``host`` resolves to now (blocking; for checks at creation)."""
    literal = _literal_address(host)
    if literal is not None:
        return [literal]
    infos = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
