from __future__ import annotations

from datetime import UTC, datetime, timedelta

from outbound.domain.circuit import CircuitBreaker, CircuitState

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_opens_after_threshold_consecutive_failures() -> None:
    breaker = CircuitBreaker(threshold=3)
    for i in range(2):
        breaker.failure(T0)
        assert breaker.state is CircuitState.CLOSED, i
    breaker.failure(T0)
    assert breaker.state is CircuitState.OPEN
    assert not breaker.allow(T0 + timedelta(seconds=29))


def test_success_resets_the_count() -> None:
    breaker = CircuitBreaker(threshold=2)
    breaker.failure(T0)
    breaker.success()
    breaker.failure(T0)
    assert breaker.state is CircuitState.CLOSED


def test_half_open_lets_one_probe_through() -> None:
    breaker = CircuitBreaker(threshold=1, cooldown=timedelta(seconds=10))
    breaker.failure(T0)
    later = T0 + timedelta(seconds=10)
    assert breaker.reopens_at() == later
    assert breaker.allow(later) is True
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.allow(later) is False  # only one probe at a time
    breaker.success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.allow(later)


def test_failed_probe_opens_again_for_a_new_cooldown() -> None:
    breaker = CircuitBreaker(threshold=5, cooldown=timedelta(seconds=10))
    for _ in range(5):
        breaker.failure(T0)
    probe_time = T0 + timedelta(seconds=11)
    assert breaker.allow(probe_time)
    breaker.failure(probe_time)
    assert breaker.state is CircuitState.OPEN
    assert not breaker.allow(probe_time + timedelta(seconds=9))
    assert breaker.allow(probe_time + timedelta(seconds=10))
