"""Unit tests for outbound.domain.schedules: due times across time zones and missed runs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from outbound.domain.flow_definitions import Trigger
from outbound.domain.flow_documents import parse_flow_document
from outbound.domain.schedules import due_fire_times, next_fire_after

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)

HEAD = """\
name: n
configuration: c
"""


def cron(expression: str, timezone: str = "UTC", on_missed: str = "run_once") -> Trigger:
    return Trigger(
        type="scheduled",
        event=None,
        delay_seconds=None,
        cron=expression,
        at=None,
        timezone=timezone,
        on_missed=on_missed,
    )


def times_after(trigger: Trigger, after: datetime, count: int) -> list[datetime]:
    out: list[datetime] = []
    for _ in range(count):
        found = next_fire_after(trigger, after)
        assert found is not None
        out.append(found)
        after = found
    return out


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_cron_in_utc() -> None:
    trigger = cron("0 9 * * MON-FRI")
    assert times_after(trigger, utc(2026, 6, 12, 9), 2) == [
        utc(2026, 6, 15, 9),
        utc(2026, 6, 16, 9),
    ]


def test_next_fire_is_strictly_after() -> None:
    trigger = cron("0 9 * * *")
    assert next_fire_after(trigger, utc(2026, 6, 15, 8, 59, 59)) == utc(2026, 6, 15, 9)
    assert next_fire_after(trigger, utc(2026, 6, 15, 9)) == utc(2026, 6, 16, 9)


def test_naive_after_is_utc() -> None:
    assert next_fire_after(cron("0 9 * * *"), datetime(2026, 6, 15, 8)) == utc(2026, 6, 15, 9)


def test_result_is_aware_utc() -> None:
    found = next_fire_after(cron("0 9 * * *", "Europe/Paris"), utc(2026, 6, 15))
    assert found is not None and found.tzinfo is UTC


def test_paris_nine_o_clock_across_spring_forward() -> None:
    trigger = cron("0 9 * * *", "Europe/Paris")
    found = times_after(trigger, utc(2026, 3, 27, 12), 3)
    assert found == [utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)]
    assert {t.astimezone(PARIS).hour for t in found} == {9}


def test_paris_nine_o_clock_across_fall_back() -> None:
    trigger = cron("0 9 * * *", "Europe/Paris")
    found = times_after(trigger, utc(2026, 10, 23, 12), 3)
    assert found == [utc(2026, 10, 24, 7), utc(2026, 10, 25, 8), utc(2026, 10, 26, 8)]
    assert {t.astimezone(PARIS).hour for t in found} == {9}


def test_skipped_local_time_fires_once_at_the_change() -> None:
    trigger = cron("30 2 * * *", "Europe/Paris")
    found = times_after(trigger, utc(2026, 3, 27, 12), 3)
    # 02:30 does not exist on 29 March; it fires when the clocks jump (03:00 CEST).
    assert found == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)]


def test_repeated_local_time_fires_once() -> None:
    trigger = cron("30 2 * * *", "Europe/Paris")
    found = times_after(trigger, utc(2026, 10, 24, 12), 2)
    # 02:30 happens twice on 25 October (00:30 and 01:30 UTC); it fires the first time.
    assert found == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_half_hourly_across_spring_forward() -> None:
    trigger = cron("*/30 * * * *", "Europe/Paris")
    found = times_after(trigger, utc(2026, 3, 29, 0), 4)
    assert found == [
        utc(2026, 3, 29, 0, 30),  # 01:30 CET
        utc(2026, 3, 29, 1, 0),  # 03:00 CEST, standing in for 02:00 and 02:30
        utc(2026, 3, 29, 1, 30),
        utc(2026, 3, 29, 2, 0),
    ]


def test_half_hourly_across_fall_back() -> None:
    trigger = cron("*/30 * * * *", "Europe/Paris")
    found = times_after(trigger, utc(2026, 10, 24, 23, 45), 5)
    assert found == [
        utc(2026, 10, 25, 0, 0),  # 02:00 CEST
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST; the second 02:00 and 02:30 do not fire
        utc(2026, 10, 25, 2, 0),  # 03:00 CET
        utc(2026, 10, 25, 2, 30),
        utc(2026, 10, 25, 3, 0),
    ]


def test_next_fire_from_inside_the_repeated_hour() -> None:
    trigger = cron("*/30 * * * *", "Europe/Paris")
    # 01:10 UTC is the second 02:10 in Paris.
    assert next_fire_after(trigger, utc(2026, 10, 25, 1, 10)) == utc(2026, 10, 25, 2)


def test_at_fires_once() -> None:
    trigger = replace(cron("* * * * *"), cron=None, at=utc(2026, 12, 1, 8))
    assert next_fire_after(trigger, utc(2026, 11, 30)) == utc(2026, 12, 1, 8)
    assert next_fire_after(trigger, utc(2026, 12, 1, 8)) is None
    assert next_fire_after(trigger, utc(2026, 12, 2)) is None


def test_a_schedule_that_never_fires() -> None:
    assert next_fire_after(cron("0 0 31 2 *"), utc(2026, 1, 1)) is None


def test_triggers_without_a_schedule() -> None:
    trigger = Trigger("automatic", "case.created", None, None, None, "UTC", "run_once")
    assert next_fire_after(trigger, NOW) is None


def test_parsed_schedule_fires() -> None:
    definition = parse_flow_document(
        HEAD + 'trigger: {type: scheduled, cron: "0 9 * * MON-FRI", timezone: Europe/Paris}\n'
    )
    assert next_fire_after(definition.trigger, utc(2026, 3, 27, 12)) == utc(2026, 3, 30, 7)


HOURLY = cron("0 * * * *")


def test_due_not_yet() -> None:
    assert due_fire_times(HOURLY, utc(2026, 6, 15, 13), NOW) == ([], utc(2026, 6, 15, 13))


def test_due_exactly_now() -> None:
    assert due_fire_times(HOURLY, NOW, NOW) == ([NOW], utc(2026, 6, 15, 13))


def test_due_run_once_fires_the_latest() -> None:
    now = utc(2026, 6, 15, 12, 20)
    assert due_fire_times(HOURLY, utc(2026, 6, 15, 9), now) == (
        [utc(2026, 6, 15, 12)],
        utc(2026, 6, 15, 13),
    )


def test_due_run_all_fires_every_missed_time() -> None:
    trigger = replace(HOURLY, on_missed="run_all")
    now = utc(2026, 6, 15, 12, 20)
    assert due_fire_times(trigger, utc(2026, 6, 15, 9), now) == (
        [utc(2026, 6, 15, 9), utc(2026, 6, 15, 10), utc(2026, 6, 15, 11), utc(2026, 6, 15, 12)],
        utc(2026, 6, 15, 13),
    )


def test_due_run_all_keeps_the_latest_max_runs() -> None:
    trigger = replace(HOURLY, on_missed="run_all")
    due, next_at = due_fire_times(trigger, utc(2026, 6, 1), NOW, max_runs=3)
    assert due == [utc(2026, 6, 15, 10), utc(2026, 6, 15, 11), utc(2026, 6, 15, 12)]
    assert next_at == utc(2026, 6, 15, 13)
    due, _ = due_fire_times(trigger, utc(2020, 1, 1), NOW)
    assert len(due) == 100
    assert due[0] == NOW - timedelta(hours=99)
    assert due[-1] == NOW


def test_due_keeps_a_stored_time_off_the_schedule() -> None:
    trigger = replace(HOURLY, on_missed="run_all")
    due, _ = due_fire_times(trigger, utc(2026, 6, 15, 10, 45), utc(2026, 6, 15, 12, 5))
    assert due == [utc(2026, 6, 15, 10, 45), utc(2026, 6, 15, 11), utc(2026, 6, 15, 12)]


def test_due_skip_within_grace() -> None:
    trigger = replace(HOURLY, on_missed="skip")
    now = utc(2026, 6, 15, 12, 4, 59)
    assert due_fire_times(trigger, utc(2026, 6, 15, 9), now) == (
        [utc(2026, 6, 15, 12)],
        utc(2026, 6, 15, 13),
    )


def test_due_skip_beyond_grace() -> None:
    trigger = replace(HOURLY, on_missed="skip")
    now = utc(2026, 6, 15, 12, 5, 1)
    assert due_fire_times(trigger, utc(2026, 6, 15, 12), now) == ([], utc(2026, 6, 15, 13))
    assert due_fire_times(trigger, utc(2026, 6, 15, 12), now, grace_seconds=600) == (
        [utc(2026, 6, 15, 12)],
        utc(2026, 6, 15, 13),
    )


def test_due_after_a_long_outage_is_quick() -> None:
    trigger = cron("* * * * *")
    due, next_at = due_fire_times(trigger, utc(2020, 1, 1), NOW)
    assert due == [NOW]
    assert next_at == NOW + timedelta(minutes=1)


def test_due_sparse_schedule_long_ago() -> None:
    trigger = cron("0 9 1 1 *", on_missed="run_all")
    due, next_at = due_fire_times(trigger, utc(2024, 1, 1, 9), NOW)
    assert due == [utc(2024, 1, 1, 9), utc(2025, 1, 1, 9), utc(2026, 1, 1, 9)]
    assert next_at == utc(2027, 1, 1, 9)


def test_due_one_time_at() -> None:
    trigger = replace(cron("* * * * *"), cron=None, at=utc(2026, 6, 15, 11))
    assert due_fire_times(trigger, utc(2026, 6, 15, 11), NOW) == ([utc(2026, 6, 15, 11)], None)
    skip = replace(trigger, on_missed="skip")
    assert due_fire_times(skip, utc(2026, 6, 15, 11), NOW) == ([], None)


def test_due_naive_times_are_utc() -> None:
    due, next_at = due_fire_times(HOURLY, datetime(2026, 6, 15, 11), datetime(2026, 6, 15, 12))
    assert due == [NOW]
    assert next_at == utc(2026, 6, 15, 13)


def test_due_in_paris_across_spring_forward() -> None:
    trigger = cron("30 2 * * *", "Europe/Paris", on_missed="run_all")
    due, next_at = due_fire_times(trigger, utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 12))
    assert due == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1)]
    assert next_at == utc(2026, 3, 30, 0, 30)


def test_due_max_runs_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_runs"):
        due_fire_times(HOURLY, utc(2026, 6, 15, 9), NOW, max_runs=0)
