"""Queues: the order conversations wait in, operating hours, and overflow.

Waiting conversations are served by priority (larger first), then longest waiting first,
measured from the customer's first unanswered message (:func:`waiting_order`), so that a
backlog is served before newer conversations when agents come online.

Operating hours are weekly spans of local time in the queue's IANA time zone
(:func:`parse_weekly_hours`), read with the rules of :mod:`outbound.domain.windows`: a span whose
end is before its start crosses midnight, and daylight-saving changes move the spans with the
local clock. A queue without hours is always open.

Overflow (:func:`overflow_action`) decides what happens to a conversation a queue cannot serve
well: out of hours, more than ``max_waiting`` conversations waiting, or one waiting longer than
``max_wait``. Each leads to a transfer to another queue or an automatic reply from a template;
without a configured action the conversation simply waits. An automatic reply leaves the
conversation in its queue: the service sends it once per conversation, and transfers a
conversation by overflow once, so that two queues overflowing into each other cannot bounce it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Final, Protocol, TypeVar

from outbound.domain.timezones import as_utc
from outbound.domain.windows import ContactWindow, next_window_open, parse_clock, validate_zone
from outbound.errors import message_of
from outbound.texts import N_

__all__ = [
    "DAY_NAMES",
    "MAX_WAITING_RANGE",
    "MAX_WAIT_LIMITS",
    "OverflowDecision",
    "OverflowKind",
    "OverflowSettings",
    "OverflowTarget",
    "OverflowTrigger",
    "Waiting",
    "WaitingConversation",
    "next_opening",
    "overflow_action",
    "parse_weekly_hours",
    "waiting_order",
    "within_hours",
]

DAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Keys of a weekly hours spec, Monday first (full names are accepted too)."""

MAX_WAITING_RANGE: Final = range(1, 101)
"""Allowed ``max_waiting``: 1 to 100 conversations."""
MAX_WAIT_LIMITS: Final = (timedelta(minutes=1), timedelta(days=2))
"""Allowed ``max_wait``: 1 minute to 2 days."""

_FULL_DAY_NAMES: Final = (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
)  # fmt: skip
_SPAN_RE: Final = re.compile(r"\s*(\d\d:\d\d)\s*-\s*(\d\d:\d\d)\s*")
_NOON: Final = time(12, 0)
_MIDNIGHT: Final = time(0, 0)


# --- waiting order ----------------------------------------------------------------------------


class Waiting(Protocol):
    """What :func:`waiting_order` reads of a conversation (service rows fit as they are)."""

    @property
    def id(self) -> str: ...

    @property
    def waiting_since(self) -> datetime: ...

    @property
    def priority(self) -> int: ...


W = TypeVar("W", bound=Waiting)


@dataclass(frozen=True)
class WaitingConversation:
    """A conversation waiting in a queue: since the customer's first unanswered message."""

    id: str
    waiting_since: datetime
    priority: int = 0


def waiting_order(conversations: Iterable[W]) -> list[W]:
    """Conversations in the order they should get an agent.

    Larger priority first; then the longest waiting (earliest ``waiting_since``); then by id, so
    that every process agrees on the order.
    """
    return sorted(conversations, key=lambda c: (-c.priority, as_utc(c.waiting_since), c.id))


# --- operating hours --------------------------------------------------------------------------


def parse_weekly_hours(spec: Mapping[str, Sequence[str]]) -> tuple[ContactWindow, ...]:
    """Opening hours from ``{"mon": ["09:00-12:00", "13:00-17:30"], "sat": ["22:00-02:00"]}``.

    Keys are day names (``mon`` … ``sun``, or in full, any case); a day not listed, or with an
    empty list, is closed. Spans are ``HH:MM-HH:MM``; ``24:00`` may end a span, and a span
    whose end is before its start runs past midnight into the next day. :class:`ValueError`
    names the day and the span (``tue[1]: ...``).
    """
    windows: list[ContactWindow] = []
    for key, spans in spec.items():
        day = _day_number(key)
        if isinstance(spans, str) or not isinstance(spans, Sequence):
            raise ValueError(N_("%(day)s: give a list of spans such as ['09:00-17:00']", day=key))
        for index, span in enumerate(spans):
            try:
                windows.extend(_span_windows(span, day))
            except ValueError as exc:
                raise ValueError(
                    N_("%(field)s: %(message)s", field=f"{key}[{index}]", message=message_of(exc))
                ) from None
    return tuple(windows)


def _day_number(key: object) -> int:
    name = key.strip().lower() if isinstance(key, str) else ""
    for names in (DAY_NAMES, _FULL_DAY_NAMES):
        if name in names:
            return names.index(name) + 1
    raise ValueError(N_("%(day)r is not a day; use mon, tue, wed, thu, fri, sat or sun", day=key))


def _span_windows(span: object, day: int) -> list[ContactWindow]:
    match = _SPAN_RE.fullmatch(span) if isinstance(span, str) else None
    if match is None:
        raise ValueError(N_("%(span)r is not a span of time as HH:MM-HH:MM", span=span))
    start = parse_clock(match[1])
    end = _MIDNIGHT if match[2] == "24:00" else parse_clock(match[2])
    days = frozenset({day})
    if start == end:
        if match[2] != "24:00" or start != _MIDNIGHT:
            raise ValueError(N_("%(span)r is empty: its start and end are the same", span=span))
        # The whole day: a window cannot start and end at the same time of day.
        return [ContactWindow(_MIDNIGHT, _NOON, days), ContactWindow(_NOON, _MIDNIGHT, days)]
    return [ContactWindow(start, end, days)]


def within_hours(hours: Sequence[ContactWindow] | None, zone: str, now: datetime) -> bool:
    """Whether a queue with these ``hours`` in ``zone`` is open at ``now`` (timezone-aware).

    ``None`` hours: always open. No windows at all: never open. :class:`ValueError` for an
    unknown zone or a naive ``now``.
    """
    if hours is None:
        validate_zone(zone)
        return True
    return any(next_window_open(window, now, zone) == now for window in hours)


def next_opening(
    hours: Sequence[ContactWindow] | None, zone: str, now: datetime
) -> datetime | None:
    """``now`` when open, else the (UTC) instant the queue next opens; None if it never does.

    For an automatic reply such as "we open again at 9:00".
    """
    if hours is None:
        validate_zone(zone)
        return now
    openings = [next_window_open(window, now, zone) for window in hours]
    return min(openings) if openings else None


# --- overflow ---------------------------------------------------------------------------------


class OverflowKind(StrEnum):
    """What overflow does with a conversation."""

    NONE = "none"
    TRANSFER = "transfer"
    AUTO_REPLY = "auto_reply"


class OverflowTrigger(StrEnum):
    """Why overflow acted."""

    OUT_OF_HOURS = "out_of_hours"
    TOO_MANY_WAITING = "too_many_waiting"
    WAITED_TOO_LONG = "waited_too_long"


@dataclass(frozen=True)
class OverflowTarget:
    """A configured overflow action: transfer to a queue, or reply with a template.

    ``target_id`` is the queue's id for ``transfer``, the template's for ``auto_reply``.
    """

    kind: OverflowKind
    target_id: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", OverflowKind(self.kind))
        if self.kind is OverflowKind.NONE:
            raise ValueError(N_("an overflow target is a transfer or an auto_reply"))
        if not isinstance(self.target_id, str) or not self.target_id:
            raise ValueError(N_("%(kind)s needs the id of its target", kind=self.kind))


@dataclass(frozen=True)
class OverflowSettings:
    """A queue's overflow: limits, the action when one is passed, the action out of hours.

    ``max_waiting``: 1 to 100; ``max_wait``: 1 minute to 2 days; None means no such limit.
    :class:`ValueError` names the setting that is out of range.
    """

    max_waiting: int | None = None
    max_wait: timedelta | None = None
    on_overflow: OverflowTarget | None = None
    out_of_hours: OverflowTarget | None = None

    def __post_init__(self) -> None:
        count = self.max_waiting
        if count is not None and (isinstance(count, bool) or count not in MAX_WAITING_RANGE):
            raise ValueError(N_("max_waiting must be a whole number from 1 to 100"))
        low, high = MAX_WAIT_LIMITS
        if self.max_wait is not None and not low <= self.max_wait <= high:
            raise ValueError(N_("max_wait must be between 1 minute and 2 days"))


@dataclass(frozen=True)
class OverflowDecision:
    """What to do: nothing (``kind`` none), or a transfer or automatic reply, and why."""

    kind: OverflowKind
    queue_id: str | None = None
    template_id: str | None = None
    trigger: OverflowTrigger | None = None
    detail: str = ""


_NO_OVERFLOW: Final = OverflowDecision(OverflowKind.NONE)


def overflow_action(
    settings: OverflowSettings,
    waiting_count: int,
    oldest_waiting_since: datetime | None,
    now: datetime,
    open_now: bool,
) -> OverflowDecision:
    """What overflow does now, checking out of hours, then the count, then the wait.

    On arrival, ``waiting_count`` counts the conversations waiting in the queue including the
    new one, and ``oldest_waiting_since`` is the queue's oldest. On a sweep, pass each waiting
    conversation's own ``waiting_since`` to move those that waited too long. More than
    ``max_waiting`` or longer than ``max_wait`` overflows. Out of hours without an action of its
    own, the limits still apply. ``open_now``: :func:`within_hours` for the queue.
    """
    if not open_now and settings.out_of_hours is not None:
        return _decision(settings.out_of_hours, OverflowTrigger.OUT_OF_HOURS, N_("out of hours"))
    target = settings.on_overflow
    if target is None:
        return _NO_OVERFLOW
    if settings.max_waiting is not None and waiting_count > settings.max_waiting:
        detail = N_(
            "%(count)s waiting, more than %(max)s", count=waiting_count, max=settings.max_waiting
        )
        return _decision(target, OverflowTrigger.TOO_MANY_WAITING, detail)
    if settings.max_wait is not None and oldest_waiting_since is not None:
        waited = as_utc(now) - as_utc(oldest_waiting_since)
        if waited > settings.max_wait:
            detail = N_(
                "waited %(waited)s s, longer than %(max)s s",
                waited=_seconds(waited),
                max=_seconds(settings.max_wait),
            )
            return _decision(target, OverflowTrigger.WAITED_TOO_LONG, detail)
    return _NO_OVERFLOW


def _decision(target: OverflowTarget, trigger: OverflowTrigger, detail: str) -> OverflowDecision:
    if target.kind is OverflowKind.TRANSFER:
        return OverflowDecision(
            target.kind, queue_id=target.target_id, trigger=trigger, detail=detail
        )
    return OverflowDecision(
        target.kind, template_id=target.target_id, trigger=trigger, detail=detail
    )


def _seconds(value: timedelta) -> int:
    return int(value.total_seconds())
