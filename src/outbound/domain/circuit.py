"""A circuit breaker: stop calling a provider that is down, and probe it back.

``closed``: calls go through; ``threshold`` provider-side failures in a row open it.
``open``: calls are refused until ``cooldown`` seconds have passed.
``half_open``: one probe call goes through; its success closes the circuit, its failure opens
it again for another cooldown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = ["DEFAULT_COOLDOWN_SECONDS", "DEFAULT_THRESHOLD", "CircuitBreaker", "CircuitState"]

DEFAULT_THRESHOLD = 5
DEFAULT_COOLDOWN_SECONDS = 30.0


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    """One breaker per channel; pure (the caller passes the time)."""

    threshold: int = DEFAULT_THRESHOLD
    cooldown: timedelta = field(default_factory=lambda: timedelta(seconds=DEFAULT_COOLDOWN_SECONDS))
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    opened_at: datetime | None = None
    probing: bool = False

    def allow(self, now: datetime) -> bool:
        """Whether a call may go to the provider now (reserves the probe when half open)."""
        if self.state is CircuitState.CLOSED:
            return True
        if self.state is CircuitState.OPEN:
            assert self.opened_at is not None
            if now - self.opened_at < self.cooldown:
                return False
            self.state = CircuitState.HALF_OPEN
            self.probing = False
        if self.probing:
            return False
        self.probing = True
        return True

    def reopens_at(self) -> datetime | None:
        """When an open circuit lets a probe through."""
        return self.opened_at + self.cooldown if self.opened_at else None

    def success(self) -> None:
        self.state = CircuitState.CLOSED
        self.failures = 0
        self.opened_at = None
        self.probing = False

    def failure(self, now: datetime) -> None:
        """A provider-side failure (5xx, timeout, connection error)."""
        self.failures += 1
        if self.state is CircuitState.HALF_OPEN or self.failures >= self.threshold:
            self.state = CircuitState.OPEN
            self.opened_at = now
            self.probing = False
