"""Test doubles shipped with the package, for our tests and for users' own.

- :class:`FakeClock`: a clock that only moves when told to.
- :class:`ScriptedProvider`: a provider adapter that records every send and answers from a
  script (accept, transient error, permanent error), per recipient number.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from outbound.adapters.providers.base import OutgoingMessage, SendResult

__all__ = ["FakeClock", "ScriptedProvider"]


class FakeClock:
    """A controllable clock (timezone-aware UTC)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 15, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


Answer = Callable[[OutgoingMessage], SendResult | Exception]


class ScriptedProvider:
    """Records sends; answers each with the next scripted answer for its number, else success.

    ``script["+33612345678"] = [TransientProviderError("busy", retry_after=5), "ok"]`` makes
    the first send to that number fail transiently and the second succeed. ``latency`` is
    how long every call takes; ``slow["+33612345678"] = 2.0`` makes calls to that number take
    that long instead.
    """

    def __init__(self, name: str = "sandbox", *, latency: float = 0.0) -> None:
        self.name = name
        self.latency = latency
        self.slow: dict[str, float] = {}
        self.sent: list[OutgoingMessage] = []
        self.script: dict[str, list[Exception | str]] = {}
        self._ids = itertools.count(1)

    def fail_next(self, number: str, *errors: Exception | str) -> None:
        self.script.setdefault(number, []).extend(errors)

    async def send(self, message: OutgoingMessage) -> SendResult:
        latency = self.slow.get(message.to, self.latency)
        if latency:
            await asyncio.sleep(latency)
        answers = self.script.get(message.to)
        answer = answers.pop(0) if answers else "ok"
        self.sent.append(message)
        if isinstance(answer, Exception):
            raise answer
        return SendResult(provider_message_id=f"SCR{next(self._ids):08d}")

    def sends_per_message(self) -> Counter[str]:
        return Counter(m.id for m in self.sent)

    async def aclose(self) -> None:
        return None
