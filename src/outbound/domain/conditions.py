"""Conditions: whether a record's context meets a flow's conditions.

A record's context is nested mappings (``{"case": {"status": "resolved"}}``). A
:class:`Condition` names a value in it by a dotted path (``case.status``), an op from
:data:`CONDITION_OPS` and a value to compare with. Comparisons are lenient the way documents
are written: ``"2"`` equals ``2``, ``"true"`` equals ``true``, dates and date texts compare as
instants (naive ones read as UTC), and ``since``/``before`` take a date or a duration back from
now (``7d``). A path that leads nowhere resolves to :data:`MISSING`, which only ``ne``,
``not_in`` and ``missing`` accept.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from outbound.domain.durations import parse_duration
from outbound.domain.timezones import as_utc
from outbound.texts import N_

__all__ = [
    "CONDITION_OPS",
    "MISSING",
    "Condition",
    "evaluate_conditions",
    "is_blank",
    "is_field_path",
    "is_threshold",
    "matches_event",
    "parse_datetime",
    "resolve_path",
]

CONDITION_OPS: Final = (
    "eq", "ne", "in", "not_in", "exists", "missing", "gt", "gte", "lt", "lte",
    "contains", "starts_with", "since", "before",
)  # fmt: skip
"""The ops a :class:`Condition` may use."""

_PATH_RE: Final = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_NUMBER_RE: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class Condition:
    """``field`` (a dotted path into a record's context) ``op`` ``value``."""

    field: str
    op: str = "eq"
    value: Any = None


class _Missing(enum.Enum):
    MISSING = "MISSING"

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing.MISSING
"""What :func:`resolve_path` returns for a path that leads nowhere (a None value is a value)."""


def is_field_path(text: str) -> bool:
    """Whether ``text`` is a dotted field path such as ``contact.name``."""
    return _PATH_RE.fullmatch(text) is not None


def resolve_path(context: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path through nested mappings, or :data:`MISSING`."""
    value: Any = context
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


def is_blank(value: Any) -> bool:
    """Whether a resolved value counts as absent: :data:`MISSING`, None or empty text."""
    return value is MISSING or value is None or value == ""


def matches_event(pattern: str, event_type: str) -> bool:
    """Whether an event type matches a trigger's pattern (``*``, ``?``, ``[...]``; case counts)."""
    return fnmatch.fnmatchcase(event_type, pattern)


def evaluate_conditions(
    conditions: Sequence[Condition], context: Mapping[str, Any], now: datetime
) -> bool:
    """Whether a record's context meets every condition (``now`` anchors ``since 7d``)."""
    return all(_holds(condition, context, as_utc(now)) for condition in conditions)


def parse_datetime(value: Any) -> datetime | None:
    """A datetime from a datetime, a date (midnight) or an ISO string; tzinfo kept as is."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str) and not _NUMBER_RE.fullmatch(value.strip()):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def is_threshold(text: str) -> bool:
    """Whether ``text`` can follow ``since``/``before``: a date, a date and time or a duration."""
    if parse_datetime(text) is not None:
        return True
    try:
        parse_duration(text)
    except ValueError:
        return False
    return True


def _holds(condition: Condition, context: Mapping[str, Any], now: datetime) -> bool:
    actual = resolve_path(context, condition.field)
    op, expected = condition.op, condition.value
    if op == "missing":
        return is_blank(actual)
    if op == "exists":
        return not is_blank(actual)
    if actual is MISSING:
        return op in ("ne", "not_in")
    if op in ("eq", "ne"):
        return _equal(actual, expected) == (op == "eq")
    if op in ("in", "not_in"):
        found = any(_equal(actual, item) for item in expected or ())
        return found == (op == "in")
    if op in ("gt", "gte", "lt", "lte"):
        order = _compare(actual, expected)
        if order is None:
            return False
        return {"gt": order > 0, "gte": order >= 0, "lt": order < 0, "lte": order <= 0}[op]
    if op == "contains":
        if isinstance(actual, str):
            return str(expected) in actual
        if isinstance(actual, list | tuple | set | frozenset):
            return any(_equal(item, expected) for item in actual)
        return False
    if op == "starts_with":
        if isinstance(actual, bool) or not isinstance(actual, str | int):
            return False
        return str(actual).startswith(str(expected))
    if op in ("since", "before"):
        moment, threshold = _moment(actual), _threshold(expected, now)
        if moment is None or threshold is None:
            return False
        return moment >= threshold if op == "since" else moment < threshold
    raise ValueError(N_("unknown condition op %(op)r", op=op))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER_RE.fullmatch(value.strip()):
        return float(value)
    return None


def _moment(value: Any) -> datetime | None:
    moment = parse_datetime(value)
    return None if moment is None else as_utc(moment)


def _threshold(expected: Any, now: datetime) -> datetime | None:
    moment = _moment(expected)
    if moment is not None:
        return moment
    try:
        seconds = parse_duration(str(expected))
    except ValueError:
        return None
    try:
        return now - timedelta(seconds=seconds)
    except OverflowError:  # further back than datetimes go: since the beginning of time
        return datetime.min.replace(tzinfo=UTC)


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return _truth(actual) is not None and _truth(actual) == _truth(expected)
    if isinstance(actual, int | float) or isinstance(expected, int | float):
        left, right = _number(actual), _number(expected)
        return left is not None and left == right
    if isinstance(actual, date) or isinstance(expected, date):
        left_moment, right_moment = _moment(actual), _moment(expected)
        return left_moment is not None and left_moment == right_moment
    return bool(actual == expected)


def _truth(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _compare(actual: Any, expected: Any) -> int | None:
    """-1, 0 or 1 comparing as numbers, else as datetimes, else as text; None if unorderable."""
    left: Any
    right: Any
    for convert in (_number, _moment):
        left, right = convert(actual), convert(expected)
        if left is not None and right is not None:
            return int(left > right) - int(left < right)
    if isinstance(actual, bool) or isinstance(expected, bool):
        return None
    if isinstance(actual, str | int | float) and isinstance(expected, str | int | float):
        left, right = str(actual), str(expected)
        return int(left > right) - int(left < right)
    return None
