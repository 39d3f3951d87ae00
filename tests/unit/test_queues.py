"""Unit tests for outbound.domain.queues: waiting order, operating hours and overflow."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outbound.domain.queues import (
    DAY_NAMES,
    MAX_WAIT_LIMITS,
    MAX_WAITING_RANGE,
    OverflowDecision,
    OverflowKind,
    OverflowSettings,
    OverflowTarget,
    OverflowTrigger,
    WaitingConversation,
    next_opening,
    overflow_action,
    parse_weekly_hours,
    waiting_order,
    within_hours,
)
from outbound.domain.windows import ContactWindow

PARIS = "Europe/Paris"
T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)  # a Monday; 10:00 in Paris


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# --- waiting order ----------------------------------------------------------------------------


def test_longest_waiting_first_priority_before_that_then_id() -> None:
    conversations = [
        WaitingConversation("c", T0 + timedelta(minutes=1)),
        WaitingConversation("b", T0),
        WaitingConversation("urgent", T0 + timedelta(hours=1), priority=5),
        WaitingConversation("a", T0),
        WaitingConversation("low", T0 - timedelta(days=1), priority=-1),
    ]
    assert [c.id for c in waiting_order(conversations)] == ["urgent", "a", "b", "c", "low"]
    assert waiting_order([]) == []


def test_waiting_order_takes_any_row_with_the_three_attributes() -> None:
    @dataclass
    class Row:
        id: str
        waiting_since: datetime
        priority: int
        body: str

    rows = [Row("x", T0, 0, "hi"), Row("y", T0.replace(tzinfo=None) - timedelta(hours=1), 0, "")]
    assert [r.id for r in waiting_order(rows)] == ["y", "x"]


@given(
    st.lists(
        st.builds(
            WaitingConversation,
            id=st.text("abc", min_size=1, max_size=3),
            waiting_since=st.integers(0, 100).map(lambda m: T0 + timedelta(minutes=m)),
            priority=st.integers(-2, 2),
        ),
        max_size=10,
    )
)
def test_waiting_order_is_a_total_order(conversations: list[WaitingConversation]) -> None:
    ordered = waiting_order(conversations)
    assert waiting_order(reversed(conversations)) == ordered
    for first, second in itertools.pairwise(ordered):
        assert first.priority >= second.priority
        if first.priority == second.priority:
            assert first.waiting_since <= second.waiting_since


# --- operating hours --------------------------------------------------------------------------


OFFICE = parse_weekly_hours(
    {day: ["09:00-12:00", "13:00-17:30"] for day in DAY_NAMES[:5]} | {"sat": ["22:00-02:00"]}
)


def test_parse_weekly_hours_builds_windows_per_day() -> None:
    hours = parse_weekly_hours({"Monday": ["09:00-17:00"], "SUN": [" 10:00 - 24:00 "], "tue": []})
    assert hours == (
        ContactWindow(time(9), time(17), frozenset({1})),
        ContactWindow(time(10), time(0), frozenset({7})),
    )
    assert parse_weekly_hours({}) == ()


def test_a_whole_day_is_two_windows() -> None:
    hours = parse_weekly_hours({"wed": ["00:00-24:00"]})
    assert hours == (
        ContactWindow(time(0), time(12), frozenset({3})),
        ContactWindow(time(12), time(0), frozenset({3})),
    )
    for hour in (0, 11, 12, 23):
        assert within_hours(hours, "UTC", utc(6, 3, hour, 59))
    assert not within_hours(hours, "UTC", utc(6, 4, 0))
    assert not within_hours(hours, "UTC", utc(6, 2, 23, 59))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"mo": ["09:00-17:00"]}, r"'mo' is not a day"),
        ({"mon": "09:00-17:00"}, r"^mon: give a list of spans"),
        ({"mon": ["09:00-17:00", "9-17"]}, r"^mon\[1\]: '9-17' is not a span"),
        ({"tue": ["09:00-09:00"]}, r"^tue\[0\]: '09:00-09:00' is empty"),
        ({"tue": ["24:00-09:00"]}, r"^tue\[0\]: .*HH:MM"),
        ({"tue": ["09:00-24:01"]}, r"^tue\[0\]: .*HH:MM"),
        ({"tue": ["09:61-10:00"]}, r"^tue\[0\]: .*HH:MM"),
        ({"tue": [9]}, r"^tue\[0\]: 9 is not a span"),
    ],
)
def test_bad_hours_name_the_day_and_span(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_weekly_hours(spec)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(6, 1, 7, 0), True),  # Monday 09:00 in Paris (UTC+2)
        (utc(6, 1, 6, 59), False),
        (utc(6, 1, 10, 30), False),  # lunch
        (utc(6, 1, 15, 29), True),
        (utc(6, 1, 15, 30), False),  # 17:30 closes
        (utc(6, 6, 20, 0), True),  # Saturday 22:00
        (utc(6, 6, 23, 59), True),  # Sunday 01:59: the Saturday night span runs on
        (utc(6, 7, 0, 0), False),  # Sunday 02:00: it has ended
        (utc(6, 7, 8, 0), False),  # Sunday 10:00
    ],
)
def test_within_hours_reads_local_time(now: datetime, expected: bool) -> None:
    assert within_hours(OFFICE, PARIS, now) is expected


def test_hours_follow_daylight_saving() -> None:
    hours = parse_weekly_hours({day: ["09:00-17:00"] for day in DAY_NAMES})
    assert within_hours(hours, PARIS, utc(1, 15, 8, 0))  # winter: UTC+1
    assert not within_hours(hours, PARIS, utc(1, 15, 7, 59))
    assert within_hours(hours, PARIS, utc(7, 15, 7, 0))  # summer: UTC+2
    assert not within_hours(hours, PARIS, utc(7, 15, 15, 0))


def test_no_hours_means_always_open_and_empty_hours_never() -> None:
    assert within_hours(None, PARIS, T0)
    assert not within_hours((), PARIS, T0)
    assert next_opening(None, PARIS, T0) == T0
    assert next_opening((), PARIS, T0) is None


def test_bad_zone_or_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        within_hours(None, "Mars/Olympus", T0)
    with pytest.raises(ValueError, match="unknown time zone"):
        within_hours(OFFICE, "Mars/Olympus", T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        within_hours(OFFICE, PARIS, T0.replace(tzinfo=None))


def test_next_opening() -> None:
    assert next_opening(OFFICE, PARIS, utc(6, 1, 7, 30)) == utc(6, 1, 7, 30)
    assert next_opening(OFFICE, PARIS, utc(6, 1, 10, 30)) == utc(6, 1, 11, 0)
    assert next_opening(OFFICE, PARIS, utc(6, 7, 8, 0)) == utc(6, 8, 7, 0)  # Monday 09:00


# --- overflow ---------------------------------------------------------------------------------

TO_B = OverflowTarget(OverflowKind.TRANSFER, "queue-b")
CLOSED_REPLY = OverflowTarget(OverflowKind.AUTO_REPLY, "tpl-closed")


def test_limits_and_their_ranges() -> None:
    assert MAX_WAITING_RANGE == range(1, 101)
    assert MAX_WAIT_LIMITS == (timedelta(minutes=1), timedelta(days=2))
    OverflowSettings(max_waiting=1, max_wait=timedelta(minutes=1))
    OverflowSettings(max_waiting=100, max_wait=timedelta(days=2))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_waiting": 0}, "max_waiting must be a whole number from 1 to 100"),
        ({"max_waiting": 101}, "max_waiting"),
        ({"max_waiting": True}, "max_waiting"),
        ({"max_wait": timedelta(seconds=59)}, "max_wait must be between 1 minute and 2 days"),
        ({"max_wait": timedelta(days=2, seconds=1)}, "max_wait"),
    ],
)
def test_settings_out_of_range_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OverflowSettings(**changes)


def test_targets_are_checked_and_kinds_read_from_text() -> None:
    assert OverflowTarget("transfer", "q").kind is OverflowKind.TRANSFER  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a transfer or an auto_reply"):
        OverflowTarget(OverflowKind.NONE, "q")
    with pytest.raises(ValueError, match="auto_reply needs the id"):
        OverflowTarget(OverflowKind.AUTO_REPLY, "")
    with pytest.raises(ValueError, match="'bounce'"):
        OverflowTarget("bounce", "q")  # type: ignore[arg-type]


def test_default_settings_never_overflow() -> None:
    decision = overflow_action(OverflowSettings(), 10_000, T0 - timedelta(days=30), T0, False)
    assert decision == OverflowDecision(OverflowKind.NONE)


def test_too_many_waiting_means_more_than_the_limit() -> None:
    settings = OverflowSettings(max_waiting=5, on_overflow=TO_B)
    assert overflow_action(settings, 5, T0, T0, True).kind is OverflowKind.NONE
    decision = overflow_action(settings, 6, T0, T0, True)
    assert decision == OverflowDecision(
        OverflowKind.TRANSFER,
        queue_id="queue-b",
        trigger=OverflowTrigger.TOO_MANY_WAITING,
        detail="6 waiting, more than 5",
    )


def test_waiting_too_long_means_longer_than_the_limit() -> None:
    settings = OverflowSettings(max_wait=timedelta(minutes=10), on_overflow=CLOSED_REPLY)
    since = T0 - timedelta(minutes=10)
    assert overflow_action(settings, 1, since, T0, True).kind is OverflowKind.NONE
    decision = overflow_action(settings, 1, since - timedelta(seconds=1), T0, True)
    assert decision == OverflowDecision(
        OverflowKind.AUTO_REPLY,
        template_id="tpl-closed",
        trigger=OverflowTrigger.WAITED_TOO_LONG,
        detail="waited 601 s, longer than 600 s",
    )
    assert overflow_action(settings, 1, None, T0, True).kind is OverflowKind.NONE


def test_out_of_hours_comes_first_and_limits_still_apply_without_its_own_action() -> None:
    settings = OverflowSettings(max_waiting=1, on_overflow=TO_B, out_of_hours=CLOSED_REPLY)
    closed = overflow_action(settings, 9, T0, T0, open_now=False)
    assert (closed.kind, closed.template_id, closed.trigger, closed.detail) == (
        OverflowKind.AUTO_REPLY,
        "tpl-closed",
        OverflowTrigger.OUT_OF_HOURS,
        "out of hours",
    )
    without = OverflowSettings(max_waiting=1, on_overflow=TO_B)
    assert overflow_action(without, 1, T0, T0, open_now=False).kind is OverflowKind.NONE
    assert overflow_action(without, 2, T0, T0, open_now=False).queue_id == "queue-b"


def test_limits_without_an_action_do_nothing() -> None:
    settings = OverflowSettings(max_waiting=1, max_wait=timedelta(minutes=1))
    assert overflow_action(settings, 50, T0 - timedelta(days=1), T0, True).kind is (
        OverflowKind.NONE
    )
