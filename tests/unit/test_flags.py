"""Yes and no as words: the one reading settings, CSV cells and flow mappings share."""

from __future__ import annotations

import pytest

from outbound.domain.flags import FALSE_WORDS, TRUE_WORDS, parse_flag


@pytest.mark.parametrize("text", ["true", "TRUE", "yes", "Y", "y", "1", " Yes ", "on", "On", "ON"])
def test_words_that_say_yes(text: str) -> None:
    assert parse_flag(text) is True


@pytest.mark.parametrize("text", ["false", "False", "no", "N", "n", "0", " NO ", "off", "OFF"])
def test_words_that_say_no(text: str) -> None:
    assert parse_flag(text) is False


@pytest.mark.parametrize("text", ["", " ", "maybe", "2", "oui", "t", "f", "yes please", "o"])
def test_other_words_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"must be true or false \(yes/no, on/off, 1/0\)"):
        parse_flag(text)


def test_the_words_are_the_documented_ones() -> None:
    """README (settings), docs/api.md (CSV) and docs/flows.md (optin) list these words."""
    assert sorted(TRUE_WORDS) == ["1", "on", "true", "y", "yes"]
    assert sorted(FALSE_WORDS) == ["0", "false", "n", "no", "off"]
