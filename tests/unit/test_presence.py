"""Unit tests for outbound.domain.presence: declared statuses and being seen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from outbound.domain.presence import (
    ASSIGNABLE_PRESENCES,
    DEFAULT_PRESENCE_TIMEOUT,
    Presence,
    effective_presence,
    is_online,
)

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_statuses_are_the_documented_five() -> None:
    assert [p.value for p in Presence] == ["available", "busy", "dnd", "away", "offline"]
    assert ASSIGNABLE_PRESENCES == {Presence.AVAILABLE}
    assert DEFAULT_PRESENCE_TIMEOUT == timedelta(seconds=60)


def test_available_and_recently_seen_is_online() -> None:
    assert is_online(Presence.AVAILABLE, NOW - timedelta(seconds=5), NOW)
    assert is_online("available", NOW, NOW)


def test_seen_exactly_at_the_timeout_is_still_online() -> None:
    assert is_online("available", NOW - timedelta(seconds=60), NOW)
    assert not is_online("available", NOW - timedelta(seconds=60, microseconds=1), NOW)


@pytest.mark.parametrize("status", ["busy", "dnd", "away", "offline"])
def test_other_statuses_are_not_assignable_even_when_seen(status: str) -> None:
    assert not is_online(status, NOW, NOW)


def test_never_seen_is_offline() -> None:
    assert not is_online("available", None, NOW)
    assert effective_presence("available", None, NOW) is Presence.OFFLINE


def test_timeout_is_configurable() -> None:
    seen = NOW - timedelta(minutes=4)
    assert not is_online("available", seen, NOW)
    assert is_online("available", seen, NOW, timeout=timedelta(minutes=5))


def test_seen_in_the_future_counts_as_just_seen() -> None:
    assert is_online("available", NOW + timedelta(seconds=2), NOW)


def test_naive_and_other_zone_datetimes_compare_as_instants() -> None:
    paris = timezone(timedelta(hours=1))
    assert is_online("available", datetime(2026, 3, 2, 10, 59, 30, tzinfo=paris), NOW)
    assert is_online("available", datetime(2026, 3, 2, 9, 59, 30), NOW)
    assert not is_online("available", datetime(2026, 3, 2, 9, 58), NOW)


def test_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="lunch"):
        is_online("lunch", NOW, NOW)
    with pytest.raises(ValueError):
        effective_presence("Available", NOW, NOW)


@pytest.mark.parametrize("status", list(Presence))
def test_effective_presence_is_declared_while_seen(status: Presence) -> None:
    assert effective_presence(status, NOW - timedelta(seconds=10), NOW) is status


@pytest.mark.parametrize("status", list(Presence))
def test_effective_presence_is_offline_once_unseen(status: Presence) -> None:
    assert effective_presence(status, NOW - timedelta(minutes=2), NOW) is Presence.OFFLINE
