"""The JSON of columns and batch parameters: orjson's, with the standard library behind it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from outbound.adapters.db.engine import dump_json, load_json
from outbound.texts import N_

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(values)
def test_what_is_written_reads_back_as_the_standard_library_reads_it(value: object) -> None:
    text = dump_json(value)
    assert json.loads(text) == value
    assert load_json(text) == json.loads(text)


def test_what_orjson_refuses_is_written_and_read_by_the_standard_library() -> None:
    huge = {"n": 2**70, "m": -(2**65)}
    assert json.loads(dump_json(huge)) == huge
    assert load_json(json.dumps(huge)) == huge


def test_keys_that_are_not_strings_and_texts_are_written_as_the_standard_library_would() -> None:
    assert json.loads(dump_json({1: "a", "b": N_("x %(y)s", y=2)})) == {"1": "a", "b": "x 2"}
    assert load_json(dump_json({"at": datetime(2026, 12, 6, tzinfo=UTC)})) == {
        "at": "2026-12-06T00:00:00+00:00"
    }
