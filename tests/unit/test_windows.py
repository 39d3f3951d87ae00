"""Unit tests for outbound.domain.windows: contact windows, time zones and frequency caps."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

import pytest

from outbound.domain.windows import (
    ContactWindow,
    FrequencyCap,
    describe_period,
    format_clock,
    is_valid_zone,
    next_window_open,
    parse_clock,
    parse_period,
    resolve_zone,
    validate_zone,
    zone_for_number,
)

PARIS = "Europe/Paris"
NEW_YORK = "America/New_York"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def window(start: str, end: str, days: list[int] | None = None) -> ContactWindow:
    return ContactWindow.parse(start, end, days)


OFFICE = window("08:00", "20:00")
NIGHT = window("22:00", "06:00")


# --- parsing ----------------------------------------------------------------------------------


def test_parse_builds_a_window() -> None:
    parsed = window("08:30", "20:00", [5, 1, 1])
    assert parsed == ContactWindow(time(8, 30), time(20, 0), frozenset({1, 5}))
    assert not parsed.crosses_midnight
    assert NIGHT.crosses_midnight
    assert window("00:00", "23:59").days is None
    assert format_clock(parse_clock("07:05")) == "07:05"


@pytest.mark.parametrize("text", ["8:00", "24:00", "08:60", "0800", "08:00:00", "", " 08:00", "x"])
def test_bad_clock_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_clock(text)
    with pytest.raises(ValueError, match=r"^start: "):
        window(text, "20:00")
    with pytest.raises(ValueError, match=r"^end: "):
        window("08:00", text)


def test_start_equal_to_end_is_refused() -> None:
    with pytest.raises(ValueError, match="start and end must differ"):
        window("08:00", "08:00")


@pytest.mark.parametrize("days", [[0], [8], [1, 9], [-1], [True], []])
def test_days_outside_1_to_7_are_refused(days: list[int]) -> None:
    with pytest.raises(ValueError, match=r"^days: "):
        window("08:00", "20:00", days)


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ValueError, match="to the minute"):
        ContactWindow(time(8, 0, 30), time(20, 0))
    with pytest.raises(ValueError, match="ISO weekdays"):
        ContactWindow(time(8, 0), time(20, 0), frozenset({0}))


# --- next_window_open -------------------------------------------------------------------------


def test_inside_the_window_is_now() -> None:
    now = utc(2026, 1, 15, 9, 0)  # Thursday 10:00 in Paris
    assert next_window_open(OFFICE, now, PARIS) is now


def test_before_and_after_the_window() -> None:
    # 06:00 in Paris (UTC+1 in winter): opens at 08:00 local the same day.
    assert next_window_open(OFFICE, utc(2026, 1, 15, 5, 0), PARIS) == utc(2026, 1, 15, 7, 0)
    # 21:00 in Paris: opens at 08:00 the next day.
    assert next_window_open(OFFICE, utc(2026, 1, 15, 20, 0), PARIS) == utc(2026, 1, 16, 7, 0)


def test_start_is_inside_and_end_is_outside() -> None:
    opening = utc(2026, 1, 15, 7, 0)
    assert next_window_open(OFFICE, opening, PARIS) == opening
    assert next_window_open(OFFICE, utc(2026, 1, 15, 19, 0), PARIS) == utc(2026, 1, 16, 7, 0)
    assert next_window_open(OFFICE, utc(2026, 1, 15, 18, 59), PARIS) == utc(2026, 1, 15, 18, 59)


def test_the_same_instant_depends_on_the_zone() -> None:
    now = utc(2026, 1, 15, 12, 0)  # 13:00 in Paris, 07:00 in New York
    assert next_window_open(OFFICE, now, PARIS) == now
    assert next_window_open(OFFICE, now, NEW_YORK) == utc(2026, 1, 15, 13, 0)
    assert next_window_open(OFFICE, now, "UTC") == now


def test_window_crossing_midnight() -> None:
    assert next_window_open(NIGHT, utc(2026, 1, 15, 22, 0), PARIS) == utc(2026, 1, 15, 22, 0)
    assert next_window_open(NIGHT, utc(2026, 1, 16, 2, 0), PARIS) == utc(2026, 1, 16, 2, 0)
    # 05:00 UTC is 06:00 in Paris: closed until 22:00 local.
    assert next_window_open(NIGHT, utc(2026, 1, 16, 5, 0), PARIS) == utc(2026, 1, 16, 21, 0)
    assert next_window_open(NIGHT, utc(2026, 1, 16, 11, 0), PARIS) == utc(2026, 1, 16, 21, 0)


def test_days_are_iso_weekdays() -> None:
    weekdays = window("08:00", "20:00", [1, 2, 3, 4, 5])
    friday_evening = utc(2026, 1, 16, 20, 0)  # Friday 21:00 in Paris
    assert next_window_open(weekdays, friday_evening, PARIS) == utc(2026, 1, 19, 7, 0)  # Monday
    saturday_noon = utc(2026, 1, 17, 11, 0)
    assert next_window_open(weekdays, saturday_noon, PARIS) == utc(2026, 1, 19, 7, 0)
    sundays = window("10:00", "12:00", [7])
    assert next_window_open(sundays, utc(2026, 1, 18, 10, 0), PARIS) == utc(2026, 1, 18, 10, 0)
    # Just after Sunday's window: a whole week later.
    assert next_window_open(sundays, utc(2026, 1, 18, 11, 0), PARIS) == utc(2026, 1, 25, 9, 0)


def test_days_of_a_window_crossing_midnight_are_the_days_it_opens() -> None:
    friday_night = window("22:00", "06:00", [5])
    # Saturday 03:00 in Paris belongs to Friday's window.
    assert next_window_open(friday_night, utc(2026, 1, 17, 2, 0), PARIS) == utc(2026, 1, 17, 2, 0)
    # Friday 03:00 belongs to Thursday's, which is not open: wait for Friday 22:00.
    assert next_window_open(friday_night, utc(2026, 1, 16, 2, 0), PARIS) == utc(2026, 1, 16, 21, 0)
    # Saturday 23:00: next Friday.
    assert next_window_open(friday_night, utc(2026, 1, 17, 22, 0), PARIS) == utc(2026, 1, 23, 21, 0)


def test_paris_spring_forward() -> None:
    # 29 March 2026: 02:00 CET jumps to 03:00 CEST at 01:00 UTC.
    eight = next_window_open(OFFICE, utc(2026, 3, 29, 0, 0), PARIS)
    assert eight == utc(2026, 3, 29, 6, 0)  # 08:00 CEST
    assert next_window_open(OFFICE, utc(2026, 3, 28, 0, 0), PARIS) == utc(2026, 3, 28, 7, 0)
    # 02:30 does not exist that day: the window opens at the first instant after the gap.
    early = window("02:30", "20:00")
    assert next_window_open(early, utc(2026, 3, 29, 0, 30), PARIS) == utc(2026, 3, 29, 1, 0)
    # A window wholly inside the gap does not open that day.
    gap = window("02:00", "02:30")
    assert next_window_open(gap, utc(2026, 3, 28, 12, 0), PARIS) == utc(2026, 3, 30, 0, 0)


def test_paris_fall_back() -> None:
    # 25 October 2026: 03:00 CEST falls back to 02:00 CET at 01:00 UTC.
    assert next_window_open(OFFICE, utc(2026, 10, 25, 0, 0), PARIS) == utc(2026, 10, 25, 7, 0)
    assert next_window_open(OFFICE, utc(2026, 10, 24, 0, 0), PARIS) == utc(2026, 10, 24, 6, 0)
    # 02:30 happens twice: the window opens at the first.
    early = window("02:30", "20:00")
    assert next_window_open(early, utc(2026, 10, 25, 0, 0), PARIS) == utc(2026, 10, 25, 0, 30)
    # Inside at the second 02:30 too (the window has been open since the first).
    assert next_window_open(early, utc(2026, 10, 25, 1, 30), PARIS) == utc(2026, 10, 25, 1, 30)


def test_new_york_spring_forward() -> None:
    # 8 March 2026: 02:00 EST jumps to 03:00 EDT at 07:00 UTC.
    early = window("02:30", "20:00")
    assert next_window_open(early, utc(2026, 3, 8, 6, 0), NEW_YORK) == utc(2026, 3, 8, 7, 0)
    assert next_window_open(OFFICE, utc(2026, 3, 8, 6, 0), NEW_YORK) == utc(2026, 3, 8, 12, 0)
    assert next_window_open(OFFICE, utc(2026, 3, 7, 6, 0), NEW_YORK) == utc(2026, 3, 7, 13, 0)


def test_new_york_fall_back() -> None:
    # 1 November 2026: 02:00 EDT falls back to 01:00 EST at 06:00 UTC; 01:30 happens twice.
    half_past_one = window("01:30", "20:00")
    assert next_window_open(half_past_one, utc(2026, 11, 1, 5, 0), NEW_YORK) == utc(
        2026, 11, 1, 5, 30
    )
    # A window closing at 01:30 closes at the first 01:30 (05:30 UTC), not the second.
    evening = window("20:00", "01:30")
    assert next_window_open(evening, utc(2026, 11, 1, 5, 15), NEW_YORK) == utc(2026, 11, 1, 5, 15)
    assert next_window_open(evening, utc(2026, 11, 1, 6, 15), NEW_YORK) == utc(2026, 11, 2, 1, 0)


def test_result_is_the_first_open_instant() -> None:
    rng = random.Random(7)
    windows = [
        OFFICE,
        NIGHT,
        window("02:30", "03:15"),
        window("09:00", "17:30", [1, 2, 3, 4, 5]),
        window("21:00", "01:30", [6, 7]),
    ]
    zones = [PARIS, NEW_YORK, "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
    start = utc(2026, 1, 1)
    for _ in range(2000):
        w, zone = rng.choice(windows), rng.choice(zones)
        now = start + timedelta(minutes=rng.randrange(366 * 24 * 60))
        opens = next_window_open(w, now, zone)
        assert opens.tzinfo is not None and opens.utcoffset() == timedelta(0)
        assert now <= opens < now + timedelta(days=8)
        assert next_window_open(w, opens, zone) == opens  # open at that instant
        if opens > now:
            before = max(now, opens - timedelta(minutes=1))
            assert next_window_open(w, before, zone) == opens  # and closed just before


def test_now_must_be_aware_and_the_zone_known() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_window_open(OFFICE, datetime(2026, 1, 15, 9, 0), PARIS)
    with pytest.raises(ValueError, match="unknown time zone"):
        next_window_open(OFFICE, utc(2026, 1, 15, 9, 0), "Mars/Olympus_Mons")


# --- time zones -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "zone"),
    [
        ("+33612345678", PARIS),
        ("+33142685300", PARIS),
        ("+12125551234", NEW_YORK),
        ("+14155552671", "America/Los_Angeles"),
        ("+19075550123", None),  # Alaska: Anchorage and Adak
        ("+18005550199", None),  # US toll-free: every North American zone
        ("+447911123456", None),  # UK mobile: London, Jersey, Guernsey, Isle of Man
        ("+80012345678", None),  # non-geographic
        ("not a number", None),
        ("", None),
    ],
)
def test_zone_for_number(number: str, zone: str | None) -> None:
    assert zone_for_number(number) == zone


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        (PARIS, True),
        ("UTC", True),
        ("Etc/GMT+5", True),
        ("europe/paris", False),
        ("Etc/Unknown", False),
        ("Mars/Olympus_Mons", False),
        ("localtime", False),
        ("../../etc/passwd", False),
        ("", False),
    ],
)
def test_zone_names(name: str, valid: bool) -> None:
    assert is_valid_zone(name) is valid
    if valid:
        assert validate_zone(name) == name
    else:
        with pytest.raises(ValueError, match="IANA name such as Europe/Paris"):
            validate_zone(name)


def test_resolve_zone_order() -> None:
    assert resolve_zone(NEW_YORK, "+33612345678", "Asia/Tokyo") == NEW_YORK
    assert resolve_zone("Nowhere/Land", "+33612345678", "Asia/Tokyo") == PARIS
    assert resolve_zone(None, "+33612345678", "Asia/Tokyo") == PARIS
    assert resolve_zone(None, "+19075550123", "Asia/Tokyo") == "Asia/Tokyo"
    assert resolve_zone(None, None, "Asia/Tokyo") == "Asia/Tokyo"
    assert resolve_zone(None, "+19075550123", "Nowhere/Land") == "UTC"
    assert resolve_zone(None, None, None) == "UTC"


# --- frequency caps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (86400, 86400),
        ("86400", 86400),
        ("24h", 86400),
        (" 7D ", 604800),
        ("1w", 604800),
        ("90m", 5400),
        ("1d12h", 129600),
        ("1h 30m", 5400),
        ("45s", 45),
        (1, 1),
    ],
)
def test_parse_period(value: int | str, seconds: int) -> None:
    assert parse_period(value) == seconds


@pytest.mark.parametrize("value", ["", "abc", "24 hours", "h", "1.5h", 1.5, True, None, "-1h"])
def test_bad_period_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="duration such as"):
        parse_period(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -60, "0h", 366 * 86400 + 1, "53w"])
def test_period_out_of_range_is_refused(value: int | str) -> None:
    with pytest.raises(ValueError, match="between 1 second and 366 days"):
        parse_period(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (86400, "24 hours"),
        (3600, "hour"),
        (7200, "2 hours"),
        (172800, "2 days"),
        (604800, "week"),
        (1209600, "2 weeks"),
        (5400, "90 minutes"),
        (60, "minute"),
        (45, "45 seconds"),
        (1, "second"),
    ],
)
def test_describe_period(seconds: int, text: str) -> None:
    assert describe_period(seconds) == text


def test_frequency_cap() -> None:
    assert FrequencyCap(3, 86400).describe() == "at most 3 messages per 24 hours"
    assert FrequencyCap(1, 3600).describe() == "at most 1 message per hour"
    for count in (0, -1, 10_001, True):
        with pytest.raises(ValueError, match="count must be between"):
            FrequencyCap(count, 3600)
    with pytest.raises(ValueError, match="period"):
        FrequencyCap(1, 0)
