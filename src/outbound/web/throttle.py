"""Failed authentications, throttled per client address.

An address that failed to authenticate :data:`AUTH_FAILURE_LIMIT` times within
:data:`AUTH_FAILURE_WINDOW_SECONDS` gets ``429`` with ``Retry-After`` for every request that
needs a key, until the oldest of those failures is a window old: a key cannot be guessed at
more than that pace from one address, and a client stuck on a revoked key stops costing a
database look-up per request. Throttled requests are refused before their key is looked at,
so a good key from a throttled address waits too (a throttle that let good keys through would
tell an attacker which of their guesses was right).

The count is kept in the process (each API process counts on its own, and a restart forgets),
in bounded memory: at most :data:`AUTH_FAILURE_LIMIT` times per address, and the addresses
that failed most recently, :data:`MAX_TRACKED_ADDRESSES` of them.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from starlette.requests import HTTPConnection

from outbound.errors import AuthenticationError, RateLimitedError
from outbound.texts import N_

__all__ = [
    "AUTH_FAILURE_LIMIT",
    "AUTH_FAILURE_WINDOW_SECONDS",
    "MAX_TRACKED_ADDRESSES",
    "FailureThrottle",
    "client_address",
    "is_local_request",
]

AUTH_FAILURE_LIMIT = 20
AUTH_FAILURE_WINDOW_SECONDS = 60.0
MAX_TRACKED_ADDRESSES = 10_000

_FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")

T = TypeVar("T")


def client_address(connection: HTTPConnection, *, trust_forwarded: bool = False) -> str:
    """The address a request comes from.

    The connection's peer, unless the service is told to trust forwarded headers (it runs
    behind a proxy): then the last address of ``X-Forwarded-For``, the one the proxy saw.
    """
    if trust_forwarded:
        forwarded = connection.headers.get("x-forwarded-for", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    client = connection.client
    return client.host if client else "unknown"


def is_local_request(connection: HTTPConnection) -> bool:
    """The request comes from this machine, and not through a proxy that runs on it."""
    client = connection.client
    if client is None or any(name in connection.headers for name in _FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(client.host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback  # ::ffff:127.0.0.1 on a dual-stack socket
    return address.is_loopback


class FailureThrottle:
    """Counts failed authentications per address; refuses an address past the limit."""

    def __init__(
        self,
        limit: int = AUTH_FAILURE_LIMIT,
        window: float = AUTH_FAILURE_WINDOW_SECONDS,
        *,
        max_addresses: int = MAX_TRACKED_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._window = window
        self._max_addresses = max_addresses
        self._clock = clock
        self._lock = threading.Lock()  # sync routes authenticate in the thread pool
        self._failures: dict[str, deque[float]] = {}

    def check(self, address: str) -> None:
        """Raise :class:`RateLimitedError` if ``address`` failed too often lately."""
        with self._lock:
            times = self._failures.get(address)
            if times is None:
                return
            now = self._clock()
            while times and times[0] <= now - self._window:
                times.popleft()
            if not times:
                del self._failures[address]
                return
            if len(times) < self._limit:
                return
            retry_after = max(1, math.ceil(times[0] + self._window - now))
        raise RateLimitedError(
            N_(
                "too many failed authentications from this address; retry in %(retry_after)s s",
                retry_after=retry_after,
            ),
            retry_after=retry_after,
        )

    def failed(self, address: str) -> None:
        """Count one failed authentication of ``address``."""
        with self._lock:
            # Re-inserted, so that the dict's order is that of the latest failure.
            times = self._failures.pop(address, None) or deque(maxlen=self._limit)
            times.append(self._clock())
            self._failures[address] = times
            if len(self._failures) > self._max_addresses:
                del self._failures[next(iter(self._failures))]

    def attempt(self, address: str, authenticate: Callable[[], T]) -> T:
        """``authenticate()``, unless ``address`` is throttled; its failure is counted."""
        self.check(address)
        try:
            return authenticate()
        except AuthenticationError:
            self.failed(address)
            raise
