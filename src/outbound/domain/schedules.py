"""Schedules: when a scheduled trigger is due, and which missed due times to fire.

:func:`next_fire_after` gives a trigger's next due time; :func:`due_fire_times` the due times
owed since the stored one, per the trigger's ``on_missed``.

Schedules are evaluated in local wall-clock time, as cron does: ``0 9 * * *`` in Europe/Paris
stays at 09:00 across daylight saving changes; a local time that does not exist (skipped when
clocks go forward) fires once, at the moment of the change; a local time that happens twice
(clocks go back) fires once, the first time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from outbound.domain.flow_definitions import Trigger
from outbound.domain.timezones import as_utc, local_to_utc
from outbound.texts import N_

__all__ = ["due_fire_times", "next_fire_after"]


def _fire_times(trigger: Trigger, after: datetime) -> Iterator[datetime]:
    """The due times strictly after ``after``, increasing, as aware UTC."""
    after = as_utc(after)
    if trigger.at is not None:
        if as_utc(trigger.at) > after:
            yield as_utc(trigger.at)
        return
    if trigger.cron is None:
        return
    zone = ZoneInfo(trigger.timezone)
    # Reading ``after`` without its fold gives a wall-clock time at or before it, so the scan
    # cannot start past the answer; wall-clock to UTC never goes backwards.
    start = after.astimezone(zone).replace(tzinfo=None)
    schedule = croniter(trigger.cron, start)
    last = after
    while True:
        try:
            local = schedule.get_next(datetime)
        except CroniterBadDateError:
            return
        moment = local_to_utc(local, zone)
        if moment > last:
            last = moment
            yield moment


def next_fire_after(trigger: Trigger, after: datetime) -> datetime | None:
    """The first due time strictly after ``after`` (naive values are read as UTC), or None."""
    return next(_fire_times(trigger, after), None)


def due_fire_times(
    trigger: Trigger,
    next_fire_at: datetime,
    now: datetime,
    *,
    max_runs: int = 100,
    grace_seconds: int = 300,
) -> tuple[list[datetime], datetime | None]:
    """The due times to fire now (per ``on_missed``) and the next due time to store.

    ``next_fire_at`` is the stored due time; every due time from it up to ``now`` is owed.
    ``run_all`` fires the latest ``max_runs`` of them, ``run_once`` the latest, ``skip`` the
    latest only when it is at most ``grace_seconds`` old.
    """
    if max_runs < 1:
        raise ValueError(N_("max_runs must be at least 1"))
    next_fire_at, now = as_utc(next_fire_at), as_utc(now)
    if next_fire_at > now:
        return [], next_fire_at
    limit = max_runs if trigger.on_missed == "run_all" else 1
    due = _latest_due(trigger, next_fire_at, now, limit)
    if trigger.on_missed == "skip" and (now - due[-1]).total_seconds() > grace_seconds:
        due = []
    return due, next_fire_after(trigger, now)


def _latest_due(trigger: Trigger, first: datetime, now: datetime, limit: int) -> list[datetime]:
    """The latest ``limit`` due times in ``[first, now]``, looking back only as far as needed."""
    window = timedelta(hours=1)
    while True:
        lower = now - window
        found: deque[datetime] = deque(maxlen=limit)
        if lower <= first:
            found.append(first)
            lower = first
        for moment in _fire_times(trigger, lower):
            if moment > now:
                break
            found.append(moment)
        if lower == first or len(found) >= limit:
            return list(found)
        window *= 2
