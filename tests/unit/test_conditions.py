"""Unit tests for outbound.domain.conditions: paths, event patterns and condition ops."""

from __future__ import annotations

import textwrap
from datetime import UTC, date, datetime
from typing import Any

import pytest

from outbound.domain.conditions import (
    CONDITION_OPS,
    MISSING,
    Condition,
    evaluate_conditions,
    is_blank,
    is_field_path,
    is_threshold,
    matches_event,
    parse_datetime,
    resolve_path,
)
from outbound.domain.flow_documents import parse_flow_document

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


HEAD = """\
name: n
configuration: c
"""

CONTEXT: dict[str, Any] = {
    "contact": {"name": "Ada", "consent": {"sms": True}, "email": None, "tags": ["vip", "fr"]},
    "case": {"status": "resolved", "priority": 2, "score": "10", "title": ""},
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("contact.name", "Ada"),
        ("contact.consent.sms", True),
        ("contact.consent", {"sms": True}),
        ("contact.email", None),
        ("contact.phone", MISSING),
        ("contact.name.first", MISSING),
        ("order.id", MISSING),
        ("contact.tags.0", MISSING),
    ],
)
def test_resolve_path(path: str, expected: Any) -> None:
    assert resolve_path(CONTEXT, path) == expected


def test_missing_sentinel() -> None:
    assert not MISSING
    assert repr(MISSING) == "MISSING"
    assert MISSING is not None


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        ("case.created", "case.created", True),
        ("case.created", "case.updated", False),
        ("case.*", "case.updated", True),
        ("case.*", "contact.updated", False),
        ("*.created", "case.created", True),
        ("case.?pdated", "case.updated", True),
        ("Case.*", "case.created", False),
        ("*", "anything", True),
    ],
)
def test_matches_event(pattern: str, event: str, expected: bool) -> None:
    assert matches_event(pattern, event) is expected


R = {
    "s": "resolved",
    "n": 2,
    "f": 2.5,
    "ns": "10",
    "b": True,
    "bs": "true",
    "empty": "",
    "none": None,
    "when": "2026-06-10T12:00:00+00:00",
    "naive": "2026-06-10T12:00:00",
    "dt": datetime(2026, 6, 10, 12, tzinfo=UTC),
    "day": date(2026, 6, 10),
    "tags": ["vip", "fr", 3],
    "phone": "+33612345678",
    "num": 33612345678,
    "text": "Hello world",
}


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        # eq / ne, with light coercion
        ("s", "eq", "resolved", True),
        ("s", "eq", "Resolved", False),
        ("s", "ne", "open", True),
        ("s", "ne", "resolved", False),
        ("n", "eq", 2, True),
        ("n", "eq", "2", True),
        ("n", "eq", "2.0", True),
        ("ns", "eq", 10, True),
        ("ns", "eq", "10.0", False),
        ("f", "eq", 2.5, True),
        ("n", "eq", "two", False),
        ("b", "eq", True, True),
        ("b", "eq", "true", True),
        ("b", "eq", "TRUE", True),
        ("b", "eq", "false", False),
        ("bs", "eq", True, True),
        ("b", "eq", 1, False),
        ("b", "eq", "yes", False),
        ("none", "eq", "x", False),
        ("none", "ne", "x", True),
        ("dt", "eq", "2026-06-10T14:00:00+02:00", True),
        ("day", "eq", "2026-06-10", True),
        # in / not_in
        ("s", "in", ["open", "resolved"], True),
        ("s", "in", ["open"], False),
        ("n", "in", ["1", "2"], True),
        ("s", "not_in", ["open"], True),
        ("s", "not_in", ["resolved"], False),
        # exists / missing
        ("s", "exists", None, True),
        ("empty", "exists", None, False),
        ("none", "exists", None, False),
        ("s", "missing", None, False),
        ("empty", "missing", None, True),
        ("none", "missing", None, True),
        ("b", "exists", None, True),
        # ordering
        ("n", "gt", 1, True),
        ("n", "gt", 2, False),
        ("n", "gte", 2, True),
        ("n", "lt", "3", True),
        ("n", "lte", 1.5, False),
        ("ns", "gt", 9, True),
        ("ns", "gt", "9", True),
        ("when", "gt", "2026-06-10T13:00:00+02:00", True),
        ("when", "lt", "2026-06-11", True),
        ("naive", "gte", "2026-06-10T12:00:00+00:00", True),
        ("dt", "lt", "2026-06-10T12:00:01Z", True),
        ("s", "gt", "open", True),
        ("s", "lt", "open", False),
        ("b", "gt", 0, False),
        ("none", "gt", 0, False),
        ("tags", "gt", "a", False),
        # contains / starts_with
        ("text", "contains", "world", True),
        ("text", "contains", "World", False),
        ("tags", "contains", "vip", True),
        ("tags", "contains", "3", True),
        ("tags", "contains", "de", False),
        ("n", "contains", 2, False),
        ("phone", "starts_with", "+33", True),
        ("phone", "starts_with", "+44", False),
        ("num", "starts_with", "336", True),
        ("b", "starts_with", "T", False),
        # since / before, with a duration (from NOW) or a date
        ("when", "since", "7d", True),
        ("when", "since", "4d", False),
        ("when", "before", "4d", True),
        ("when", "before", "P7D", False),
        ("dt", "since", "2026-06-10", True),
        ("dt", "before", "2026-06-10", False),
        ("day", "since", "2026-06-10T00:00:00Z", True),
        ("naive", "since", "2026-06-10T12:00:00+00:00", True),
        ("naive", "before", "2026-06-10T13:00:00+02:00", False),
        ("when", "since", "99999999999d", True),
        ("when", "before", "99999999999d", False),
        ("s", "since", "7d", False),
        ("when", "since", "not a time", False),
    ],
)
def test_condition_ops(field: str, op: str, value: Any, expected: bool) -> None:
    assert evaluate_conditions([Condition(field, op, value)], R, NOW) is expected


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", "x", False),
        ("ne", "x", True),
        ("in", ["x"], False),
        ("not_in", ["x"], True),
        ("exists", None, False),
        ("missing", None, True),
        ("gt", 1, False),
        ("gte", 1, False),
        ("lt", 1, False),
        ("lte", 1, False),
        ("contains", "x", False),
        ("starts_with", "x", False),
        ("since", "7d", False),
        ("before", "7d", False),
    ],
)
def test_condition_ops_on_a_missing_field(op: str, value: Any, expected: bool) -> None:
    assert evaluate_conditions([Condition("absent.field", op, value)], R, NOW) is expected


def test_all_conditions_must_hold() -> None:
    conditions = [Condition("s", "eq", "resolved"), Condition("n", "gt", 1)]
    assert evaluate_conditions(conditions, R, NOW) is True
    assert evaluate_conditions([*conditions, Condition("b", "eq", False)], R, NOW) is False
    assert evaluate_conditions([], R, NOW) is True


def test_naive_now_is_utc() -> None:
    condition = Condition("when", "since", "5d")
    assert evaluate_conditions([condition], R, datetime(2026, 6, 15, 12)) is True
    assert evaluate_conditions([condition], R, datetime(2026, 6, 15, 12, 1)) is False


def test_unknown_op_at_evaluation_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown condition op"):
        evaluate_conditions([Condition("s", "like", "r%")], R, NOW)


def test_parsed_conditions_evaluate() -> None:
    definition = parse_flow_document(
        HEAD
        + doc("""
        trigger: {type: automatic, event: case.updated}
        conditions:
          - {field: case.status, value: resolved}
          - {field: case.closed_on, op: since, value: 2026-06-01}
          - {field: contact.consent.sms, value: true}
        """)
    )
    context = {
        "case": {"status": "resolved", "closed_on": "2026-06-02T08:00:00Z"},
        "contact": {"consent": {"sms": "true"}},
    }
    assert evaluate_conditions(definition.conditions, context, NOW) is True
    context["case"]["closed_on"] = "2026-05-31T08:00:00Z"
    assert evaluate_conditions(definition.conditions, context, NOW) is False


@pytest.mark.parametrize("op", CONDITION_OPS)
def test_every_op_evaluates(op: str) -> None:
    # Every op a document may name is one evaluation knows (an unknown op is a ValueError).
    value = None if op in ("exists", "missing") else ["x"] if op in ("in", "not_in") else "7d"
    assert isinstance(evaluate_conditions([Condition("s", op, value)], R, NOW), bool)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("case.status", True), ("a", True), ("x-y.z_1", True), ("a..b", False), ("a b", False)],
)
def test_is_field_path(text: str, expected: bool) -> None:
    assert is_field_path(text) is expected


@pytest.mark.parametrize(
    ("value", "expected"), [(MISSING, True), (None, True), ("", True), (" ", False), (0, False)]
)
def test_is_blank(value: Any, expected: bool) -> None:
    assert is_blank(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-06-10", datetime(2026, 6, 10)),
        (" 2026-06-10T12:00:00+02:00 ", datetime.fromisoformat("2026-06-10T12:00:00+02:00")),
        (date(2026, 6, 10), datetime(2026, 6, 10)),
        (datetime(2026, 6, 10, 12, tzinfo=UTC), datetime(2026, 6, 10, 12, tzinfo=UTC)),
        ("20260610", None),
        ("soon", None),
        (20260610, None),
    ],
)
def test_parse_datetime(value: Any, expected: datetime | None) -> None:
    assert parse_datetime(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31", True),
        ("2026-01-31T09:00:00Z", True),
        ("7d", True),
        ("PT1H", True),
        ("soon", False),
        ("12", False),
    ],
)
def test_is_threshold(text: str, expected: bool) -> None:
    assert is_threshold(text) is expected
