"""Unit tests for outbound.domain.durations."""

from __future__ import annotations

import pytest

from outbound.domain.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("24h", 86400),
        ("7d", 604800),
        ("1d12h", 129600),
        ("1d 2h 3m 4s", 93784),
        ("2H30M", 9000),
        (" 45m ", 2700),
        ("0s", 0),
        ("PT24H", 86400),
        ("P1D", 86400),
        ("P1DT12H", 129600),
        ("PT90S", 90),
        ("PT1H30M", 5400),
        ("P2W", 1209600),
        ("pt15m", 900),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a duration"),
        ("90", "use e.g. 90s"),
        ("soon", "not a duration"),
        ("1.5h", "not a duration"),
        ("-5m", "not a duration"),
        ("12h1d", "not a duration"),
        ("1d1d", "not a duration"),
        ("P", "not a duration"),
        ("PT", "not a duration"),
        ("P1DT", "not a duration"),
        ("P1M", "months and years"),
        ("P1Y", "months and years"),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)
