"""Unit tests for outbound.domain.timezones: wall-clock times as UTC instants."""

from __future__ import annotations

import bisect
import itertools
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from outbound.domain.timezones import as_utc, local_to_utc

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- as_utc ------------------------------------------------------------------------------


def test_as_utc_reads_naive_as_utc() -> None:
    assert as_utc(datetime(2026, 6, 15, 12)) == utc(2026, 6, 15, 12)
    assert as_utc(datetime(2026, 6, 15, 12)).tzinfo is UTC


def test_as_utc_converts_aware() -> None:
    moment = datetime(2026, 6, 15, 14, tzinfo=PARIS)
    assert as_utc(moment) == utc(2026, 6, 15, 12)
    assert as_utc(moment).tzinfo is UTC
    assert as_utc(datetime(2026, 6, 15, 9, tzinfo=timezone(timedelta(hours=-3)))).hour == 12


# --- local_to_utc ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "local", "expected"),
    [
        # ordinary times, in summer and in winter
        (PARIS, datetime(2026, 6, 15, 9), utc(2026, 6, 15, 7)),
        (PARIS, datetime(2026, 1, 15, 9), utc(2026, 1, 15, 8)),
        (NEW_YORK, datetime(2026, 7, 1, 9), utc(2026, 7, 1, 13)),
        (NEW_YORK, datetime(2026, 1, 15, 9), utc(2026, 1, 15, 14)),
        # spring forward, Paris 29 March 2026: 02:00 CET jumps to 03:00 CEST at 01:00 UTC
        (PARIS, datetime(2026, 3, 29, 1, 59), utc(2026, 3, 29, 0, 59)),
        (PARIS, datetime(2026, 3, 29, 2, 0), utc(2026, 3, 29, 1)),
        (PARIS, datetime(2026, 3, 29, 2, 30), utc(2026, 3, 29, 1)),
        (PARIS, datetime(2026, 3, 29, 2, 59, 59), utc(2026, 3, 29, 1)),
        (PARIS, datetime(2026, 3, 29, 3, 0), utc(2026, 3, 29, 1)),
        (PARIS, datetime(2026, 3, 29, 3, 1), utc(2026, 3, 29, 1, 1)),
        # spring forward, New York 8 March 2026: 02:00 EST jumps to 03:00 EDT at 07:00 UTC
        (NEW_YORK, datetime(2026, 3, 8, 2, 0), utc(2026, 3, 8, 7)),
        (NEW_YORK, datetime(2026, 3, 8, 2, 30), utc(2026, 3, 8, 7)),
        (NEW_YORK, datetime(2026, 3, 8, 3, 30), utc(2026, 3, 8, 7, 30)),
        # fall back, Paris 25 October 2026: 03:00 CEST falls back to 02:00 CET at 01:00 UTC
        (PARIS, datetime(2026, 10, 25, 1, 59), utc(2026, 10, 24, 23, 59)),
        (PARIS, datetime(2026, 10, 25, 2, 0), utc(2026, 10, 25, 0, 0)),
        (PARIS, datetime(2026, 10, 25, 2, 30), utc(2026, 10, 25, 0, 30)),
        (PARIS, datetime(2026, 10, 25, 3, 0), utc(2026, 10, 25, 2, 0)),
        # fall back, New York 1 November 2026: 02:00 EDT falls back to 01:00 EST at 06:00 UTC
        (NEW_YORK, datetime(2026, 11, 1, 1, 0), utc(2026, 11, 1, 5)),
        (NEW_YORK, datetime(2026, 11, 1, 1, 30), utc(2026, 11, 1, 5, 30)),
        (NEW_YORK, datetime(2026, 11, 1, 2, 0), utc(2026, 11, 1, 7)),
    ],
)
def test_local_to_utc(zone: ZoneInfo, local: datetime, expected: datetime) -> None:
    found = local_to_utc(local, zone)
    assert found == expected
    assert found.tzinfo is UTC


@pytest.mark.parametrize(
    ("zone", "local", "expected"),
    [
        # A half-hour change: 02:00 jumps to 02:30 (+10:30 to +11) on 4 October 2026.
        ("Australia/Lord_Howe", datetime(2026, 10, 4, 2, 15), utc(2026, 10, 3, 15, 30)),
        # ...and 02:00 falls back to 01:30 on 5 April 2026: 01:45 happens twice.
        ("Australia/Lord_Howe", datetime(2026, 4, 5, 1, 45), utc(2026, 4, 4, 14, 45)),
        # Samoa skipped 30 December 2011 whole (-10 to +14 at midnight).
        ("Pacific/Apia", datetime(2011, 12, 30, 12), utc(2011, 12, 30, 10)),
    ],
)
def test_local_to_utc_other_changes(zone: str, local: datetime, expected: datetime) -> None:
    assert local_to_utc(local, ZoneInfo(zone)) == expected


def test_local_to_utc_keeps_fractions_of_a_second() -> None:
    local = datetime(2026, 6, 15, 9, 0, 0, 250_000)
    assert local_to_utc(local, PARIS) == utc(2026, 6, 15, 7).replace(microsecond=250_000)
    # A skipped time still stands for the change itself.
    assert local_to_utc(datetime(2026, 3, 29, 2, 30, 0, 500_000), PARIS) == utc(2026, 3, 29, 1)


def test_local_to_utc_ignores_the_fold_it_is_given() -> None:
    local = datetime(2026, 10, 25, 2, 30, fold=1)
    assert local_to_utc(local, PARIS) == utc(2026, 10, 25, 0, 30)


def test_local_to_utc_refuses_an_aware_time() -> None:
    with pytest.raises(ValueError, match="naive"):
        local_to_utc(utc(2026, 6, 15, 9), PARIS)


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        (PARIS, date(2026, 3, 29)),
        (PARIS, date(2026, 10, 25)),
        (NEW_YORK, date(2026, 3, 8)),
        (NEW_YORK, date(2026, 11, 1)),
    ],
)
def test_local_to_utc_is_the_first_instant_showing_that_time_or_later(
    zone: ZoneInfo, day: date
) -> None:
    # Check every minute of a change day against a scan of the zone's clock, minute by minute.
    start = datetime.combine(day, datetime.min.time(), UTC) - timedelta(hours=12)
    instants = [start + timedelta(minutes=m) for m in range(48 * 60)]
    clock = [i.astimezone(zone).replace(tzinfo=None) for i in instants]
    highest = list(itertools.accumulate(clock, max))  # sorted, so it can be bisected
    for minute in range(24 * 60):
        local = datetime.combine(day, datetime.min.time()) + timedelta(minutes=minute)
        expected = instants[bisect.bisect_left(highest, local)]
        assert local_to_utc(local, zone) == expected, local
