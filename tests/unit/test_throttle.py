"""The failed-authentication throttle keeps bounded memory."""

from __future__ import annotations

import pytest

from outbound.errors import AuthenticationError, RateLimitedError
from outbound.web.throttle import FailureThrottle


def _fail() -> None:
    raise AuthenticationError("no")


def test_failures_older_than_the_window_are_forgotten() -> None:
    now = [0.0]
    throttle = FailureThrottle(limit=3, window=10, clock=lambda: now[0])
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            throttle.attempt("a", _fail)
    with pytest.raises(RateLimitedError) as refused:
        throttle.attempt("a", lambda: "ok")
    assert refused.value.retry_after == 10
    now[0] = 10.0
    assert throttle.attempt("a", lambda: "ok") == "ok"


def test_only_the_addresses_that_failed_last_are_kept() -> None:
    throttle = FailureThrottle(limit=1, window=60, max_addresses=2)
    for address in ("a", "b", "c"):
        throttle.failed(address)
    throttle.check("a")  # forgotten: it failed least recently
    for address in ("b", "c"):
        with pytest.raises(RateLimitedError):
            throttle.check(address)
