"""Contact windows and frequency caps: when a contact may be messaged, and how often.

A contact window is a daily span of local time (``08:00`` to ``20:00``), on some ISO weekdays
(1 = Monday … 7 = Sunday) or on every day, read in the contact's time zone. A window whose end
is earlier than its start crosses midnight (``22:00`` to ``06:00``); its days are the days on which
it opens, so a Friday-only night window is still open early on Saturday.

Local times follow the zone's daylight-saving rules. A time that does not exist on a
spring-forward day (02:30 in Paris on the last Sunday of March) stands for the first instant
after the gap; a time that occurs twice on a fall-back day stands for its first occurrence.
A window that DST leaves empty on some day (02:00 to 02:30 on a spring-forward day) does not open
that day.

A frequency cap allows at most ``count`` messages to one contact per rolling period.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

import phonenumbers
from phonenumbers import NumberParseException
from phonenumbers.timezone import time_zones_for_number

from outbound.domain.timezones import local_to_utc
from outbound.errors import message_of
from outbound.texts import N_

__all__ = [
    "DEFAULT_ZONE",
    "MAX_CAP_COUNT",
    "MAX_CAP_PERIOD_SECONDS",
    "ContactWindow",
    "FrequencyCap",
    "describe_period",
    "format_clock",
    "is_valid_zone",
    "next_window_open",
    "parse_clock",
    "parse_days",
    "parse_period",
    "resolve_zone",
    "validate_zone",
    "zone_for_number",
]

DEFAULT_ZONE = "UTC"
MAX_CAP_COUNT = 10_000
MAX_CAP_PERIOD_SECONDS = 366 * 86_400

# What phonenumbers answers for numbers it cannot place (non-geographic, unknown prefixes).
_UNKNOWN_ZONE = "Etc/Unknown"
# Files of the zone database that name no place: the host's own zone, and tzdata's "-00".
_NOT_PLACES = frozenset({"localtime", "Factory"})

_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_DURATION_PART = re.compile(r"(\d+)\s*([wdhms])")
_DURATION = re.compile(r"(?:\d+\s*[wdhms]\s*)+")
_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}


# --- time zones -------------------------------------------------------------------------------


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones() - _NOT_PLACES)


def is_valid_zone(name: object) -> bool:
    """Whether ``name`` is an IANA time zone name (``Europe/Paris``), exactly as spelled."""
    return isinstance(name, str) and name in _known_zones()


def validate_zone(name: str) -> str:
    """Return ``name`` if it is an IANA time zone name, else raise :class:`ValueError`."""
    if not is_valid_zone(name):
        raise ValueError(
            N_("unknown time zone %(zone)r; use an IANA name such as Europe/Paris", zone=name)
        )
    return name


def zone_for_number(e164: str) -> str | None:
    """The time zone of a phone number, when its prefix places it in exactly one zone.

    ``+33612345678`` → ``Europe/Paris``; ``None`` for numbers whose prefix spans several zones
    (``+1 800``, ``+1 907``, UK mobiles), non-geographic numbers and anything unparsable.
    """
    try:
        parsed = phonenumbers.parse(e164, None)
    except (NumberParseException, TypeError, AttributeError):
        return None
    zones = {z for z in time_zones_for_number(parsed) if z != _UNKNOWN_ZONE}
    if len(zones) != 1:
        return None
    (zone,) = zones
    return zone if is_valid_zone(zone) else None


def resolve_zone(contact_zone: str | None, number: str | None, fallback: str | None) -> str:
    """The zone a contact's window is read in.

    The contact's own zone if valid; else the zone of its number (:func:`zone_for_number`);
    else ``fallback`` (the configuration's zone) if valid; else UTC.
    """
    if contact_zone and is_valid_zone(contact_zone):
        return contact_zone
    if number:
        zone = zone_for_number(number)
        if zone is not None:
            return zone
    if fallback and is_valid_zone(fallback):
        return fallback
    return DEFAULT_ZONE


# --- contact windows --------------------------------------------------------------------------


def parse_clock(text: str) -> time:
    """``"08:30"`` → ``time(8, 30)``; 24-hour ``HH:MM`` only, else :class:`ValueError`."""
    match = _CLOCK.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            N_(
                "%(text)r is not a time of day as HH:MM (24-hour clock, 00:00 to 23:59)",
                text=text,
            )
        )
    return time(int(match[1]), int(match[2]))


def format_clock(value: time) -> str:
    """``time(8, 30)`` → ``"08:30"``."""
    return f"{value.hour:02d}:{value.minute:02d}"


def parse_days(days: Iterable[int]) -> frozenset[int]:
    """ISO weekdays (1 = Monday … 7 = Sunday) as a set; at least one, else :class:`ValueError`."""
    result: set[int] = set()
    for day in days:
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 7:
            raise ValueError(
                N_("days are ISO weekdays from 1 (Monday) to 7 (Sunday), not %(day)r", day=day)
            )
        result.add(day)
    if not result:
        raise ValueError(N_("days must name at least one weekday (or be null for every day)"))
    return frozenset(result)


@dataclass(frozen=True)
class ContactWindow:
    """A daily span of local time in which a contact may be messaged.

    ``end`` earlier than ``start`` crosses midnight; ``days`` (ISO weekdays) are the days the
    window opens, ``None`` for every day.
    """

    start: time
    end: time
    days: frozenset[int] | None = None

    def __post_init__(self) -> None:
        for name, value in (("start", self.start), ("end", self.end)):
            if value.tzinfo is not None or value.second or value.microsecond:
                raise ValueError(
                    N_("%(field)s must be a local time of day to the minute", field=name)
                )
        if self.start == self.end:
            raise ValueError(
                N_(
                    "start and end must differ: a window of no length never opens "
                    "(leave the window out to send at any time)"
                )
            )
        if self.days is not None:
            parse_days(self.days)

    @classmethod
    def parse(cls, start: str, end: str, days: Iterable[int] | None = None) -> ContactWindow:
        """Build a window from ``"HH:MM"`` texts; :class:`ValueError` names the faulty part."""
        parsed: dict[str, time] = {}
        for name, text in (("start", start), ("end", end)):
            try:
                parsed[name] = parse_clock(text)
            except ValueError as exc:
                raise ValueError(
                    N_("%(field)s: %(message)s", field=name, message=message_of(exc))
                ) from None
        try:
            day_set = None if days is None else parse_days(days)
        except ValueError as exc:
            raise ValueError(
                N_("%(field)s: %(message)s", field="days", message=message_of(exc))
            ) from None
        return cls(parsed["start"], parsed["end"], day_set)

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start


def next_window_open(window: ContactWindow, now: datetime, zone: str) -> datetime:
    """``now`` when ``now`` is inside ``window`` in ``zone``, else the (UTC) instant it opens.

    ``now`` must be timezone-aware; ``zone`` an IANA name (:class:`ValueError` otherwise).
    """
    if now.tzinfo is None:
        raise ValueError(N_("now must be a timezone-aware datetime"))
    tz = ZoneInfo(validate_zone(zone))
    today = now.astimezone(tz).date()
    # From yesterday (a window crossing midnight may still be open) to a week ahead: every
    # weekday occurs in that range after today's opening.
    for offset in range(-1, 9):
        day = today + timedelta(days=offset)
        if window.days is not None and day.isoweekday() not in window.days:
            continue
        opens = local_to_utc(datetime.combine(day, window.start), tz)
        closing_day = day + timedelta(days=1) if window.crosses_midnight else day
        closes = local_to_utc(datetime.combine(closing_day, window.end), tz)
        if closes <= opens:
            continue  # emptied by a DST change on that day
        if opens <= now < closes:
            return now
        if opens > now:
            return opens
    raise AssertionError("a window with at least one day opens within a week")


# --- frequency caps ---------------------------------------------------------------------------


def parse_period(value: int | str) -> int:
    """A cap period in seconds: an int of seconds, or a duration such as ``90m``, ``24h``,
    ``7d``, ``1w`` or ``1d12h`` (units w, d, h, m, s). :class:`ValueError` otherwise."""
    seconds: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            seconds = int(text)
        elif _DURATION.fullmatch(text):
            seconds = sum(
                int(amount) * _UNIT_SECONDS[unit] for amount, unit in _DURATION_PART.findall(text)
            )
    if seconds is None:
        raise ValueError(
            N_("period must be a number of seconds or a duration such as 90m, 24h or 7d")
        )
    if not 1 <= seconds <= MAX_CAP_PERIOD_SECONDS:
        raise ValueError(
            N_(
                "period must be between 1 second and 366 days (%(seconds)s seconds)",
                seconds=MAX_CAP_PERIOD_SECONDS,
            )
        )
    return seconds


def describe_period(seconds: int) -> str:
    """A period as it reads after "per": ``86400`` → ``24 hours``, ``3600`` → ``hour``."""
    if seconds % 604_800 == 0:
        amount, unit = seconds // 604_800, "week"
    elif seconds % 86_400 == 0 and seconds > 86_400:
        amount, unit = seconds // 86_400, "day"
    elif seconds % 3_600 == 0:
        amount, unit = seconds // 3_600, "hour"
    elif seconds % 60 == 0:
        amount, unit = seconds // 60, "minute"
    else:
        amount, unit = seconds, "second"
    return unit if amount == 1 else f"{amount} {unit}s"


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``count`` messages to one contact per rolling ``period_seconds``."""

    count: int
    period_seconds: int

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not 1 <= self.count <= MAX_CAP_COUNT:
            raise ValueError(N_("count must be between 1 and %(max)s", max=MAX_CAP_COUNT))
        parse_period(self.period_seconds)

    def describe(self) -> str:
        """``at most 3 messages per 24 hours``."""
        noun = "message" if self.count == 1 else "messages"
        return f"at most {self.count} {noun} per {describe_period(self.period_seconds)}"
