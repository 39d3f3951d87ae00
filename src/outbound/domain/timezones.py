"""Time zones: wall-clock times read in a zone, as UTC instants.

A wall-clock time follows its zone's daylight-saving rules. A time that happens twice (clocks go
back) stands for its first occurrence; a time that does not exist (skipped when clocks go
forward) stands for the instant of the change. Both are one rule: a wall-clock time stands for
the first instant at which the zone's clock shows that time or a later one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from outbound.texts import N_

__all__ = ["as_utc", "local_to_utc"]


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive value is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def local_to_utc(naive: datetime, zone: ZoneInfo) -> datetime:
    """The aware UTC instant a naive wall-clock time in ``zone`` stands for.

    The first of two for a time that happens twice; the instant of the change for a time that
    is skipped. :class:`ValueError` if ``naive`` carries a time zone.
    """
    if naive.tzinfo is not None:
        raise ValueError(N_("local_to_utc takes a naive wall-clock time"))
    earlier = naive.replace(tzinfo=zone, fold=0)
    instant = earlier.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == naive:
        return instant
    # Skipped by a forward change: fold=1 reads the time with the offset after the change (an
    # instant before it), fold=0 with the offset before (an instant after it). Changes fall on
    # whole seconds: bisect between the two for the first second with the new offset.
    offset_before = earlier.utcoffset()
    low = int(naive.replace(tzinfo=zone, fold=1).timestamp())
    high = int(earlier.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset_before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)
