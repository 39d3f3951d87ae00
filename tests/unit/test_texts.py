"""What can be stored: the check of API input, and the cleaning of providers' callbacks."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from outbound.domain.texts import INT_MAX, storable, unstorable

texts = st.text(alphabet=st.characters(codec=None, categories=None), max_size=20)
leaves = texts | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.booleans()
values = st.recursive(
    leaves | st.none(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


@given(values)
def test_storable_values_are_storable(value: Any) -> None:
    assert unstorable(storable(value)) is None


@given(values)
def test_a_storable_value_is_kept_as_it_is(value: Any) -> None:
    if unstorable(value) is None and not _has_nan(value):
        assert storable(value) == value


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nan(v) for v in value)
    return False


def test_what_is_dropped_and_what_is_replaced() -> None:
    assert storable("a\x00b\ud800c\udfff") == "ab\ufffdc\ufffd"
    assert storable({"k\x00": [float("inf"), INT_MAX + 1, True]}) == {
        "k": ["inf", str(INT_MAX + 1), True]
    }
