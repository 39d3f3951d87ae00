"""Unit tests for outbound.domain.numbers."""

from __future__ import annotations

import pytest

from outbound.domain.numbers import mask_number, normalize_number, region_of
from outbound.errors import InvalidNumberError

EMPTY = "invalid_number: empty"
NOT_A_NUMBER = "invalid_number: not a phone number"
MISSING_CC = "invalid_number: missing country code"
NOT_VALID = "invalid_number: not a valid number"


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        # France
        ("+33612345678", None, "+33612345678"),
        ("+33 6 12 34 56 78", None, "+33612345678"),
        ("+33 (0)6 12 34 56 78", None, "+33612345678"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("0612345678", "FR", "+33612345678"),
        ("06.12.34.56.78", "FR", "+33612345678"),
        ("06-12-34-56-78", "FR", "+33612345678"),
        ("0612345678", "fr", "+33612345678"),
        ("0612345678", " FR ", "+33612345678"),
        ("01 23 45 67 89", "FR", "+33123456789"),
        ("0033612345678", "FR", "+33612345678"),
        ("+33612345678", "US", "+33612345678"),  # international ignores the region
        # United States / Canada
        ("+1 201-555-0123", None, "+12015550123"),
        ("(201) 555-0123", "US", "+12015550123"),
        ("201.555.0123", "US", "+12015550123"),
        ("1 (212) 555-0123", "US", "+12125550123"),
        ("+1 416 555 0123", None, "+14165550123"),
        ("011 33 6 12 34 56 78", "US", "+33612345678"),
        # United Kingdom
        ("+44 7400 123456", None, "+447400123456"),
        ("07400 123456", "GB", "+447400123456"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("+44 (0)20 7946 0018", None, "+442079460018"),
        ("00 44 7400 123456", "FR", "+447400123456"),
        # prefixes and whitespace
        ("  +33612345678  ", None, "+33612345678"),
        ("\t+33612345678\n", None, "+33612345678"),
        ("whatsapp:+33612345678", None, "+33612345678"),
        ("WhatsApp:+33612345678", None, "+33612345678"),
        (" whatsapp: +33 6 12 34 56 78 ", None, "+33612345678"),
        ("whatsapp:0612345678", "FR", "+33612345678"),
        ("tel:+33612345678", None, "+33612345678"),
        ("TEL:+1-201-555-0123", None, "+12015550123"),
        ("tel:07400123456", "GB", "+447400123456"),
    ],
)
def test_normalize_number(raw: str, region: str | None, expected: str) -> None:
    assert normalize_number(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("", None, EMPTY),
        ("", "FR", EMPTY),
        ("   ", "FR", EMPTY),
        ("\n\t", None, EMPTY),
        ("whatsapp:", None, EMPTY),
        ("whatsapp:   ", "FR", EMPTY),
        ("tel:", None, EMPTY),
        ("abc", None, NOT_A_NUMBER),
        ("abc", "FR", NOT_A_NUMBER),
        ("+", None, NOT_A_NUMBER),
        ("hello world", "US", NOT_A_NUMBER),
        ("+999 1234567", None, NOT_A_NUMBER),  # no such country code
        ("+33612345678999999999", None, NOT_A_NUMBER),  # too long
        ("whatsapp:abc", None, NOT_A_NUMBER),
        ("0612345678", None, MISSING_CC),
        ("06 12 34 56 78", None, MISSING_CC),
        ("0612345678", "", MISSING_CC),
        ("0612345678", "XX", MISSING_CC),
        ("0033612345678", None, MISSING_CC),
        ("whatsapp:0612345678", None, MISSING_CC),
        ("+33 6 12", None, NOT_VALID),
        ("12", "FR", NOT_VALID),
        ("+1 999 555 0123", None, NOT_VALID),
        ("+44 7400 12345", None, NOT_VALID),
        ("06123456789", "FR", NOT_VALID),
        ("+336123456789", None, NOT_VALID),
    ],
)
def test_normalize_number_invalid(raw: str, region: str | None, reason: str) -> None:
    with pytest.raises(InvalidNumberError) as info:
        normalize_number(raw, region)
    assert info.value.reason == reason
    assert str(info.value) == reason


@pytest.mark.parametrize("raw", [None, 33612345678, 3.3e10, b"+33612345678", ["+33612345678"]])
def test_normalize_number_non_str(raw: object) -> None:
    with pytest.raises(InvalidNumberError) as info:
        normalize_number(raw, "FR")  # type: ignore[arg-type]
    assert info.value.reason == NOT_A_NUMBER


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+33612345678", "+33*******78"),
        ("+447400123456", "+44********56"),
        ("+12015550123", "+12*******23"),
        ("+1234567", "+12***67"),
        # short or odd inputs: everything but the last 2 characters
        ("+123456", "*****56"),
        ("0612345678", "********78"),
        ("whatsapp:+33612345678", "*******************78"),
        ("+33 6 12 34 56 78", "***************78"),
        ("abcdef", "****ef"),
        ("12345", "***45"),
        # four characters or fewer: nothing revealed
        ("1234", "****"),
        ("+1", "**"),
        ("7", "*"),
        ("", ""),
        ("  +33612345678  ", "+33*******78"),
    ],
)
def test_mask_number(number: str, masked: str) -> None:
    assert mask_number(number) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [(None, "****"), (33612345678, "*********78"), (12, "**")],
)
def test_mask_number_never_raises_on_non_str(value: object, masked: str) -> None:
    assert mask_number(value) == masked  # type: ignore[arg-type]


def test_mask_number_never_raises_on_broken_str() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("boom")

    assert mask_number(Unprintable()) == "***"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("number", "region"),
    [
        ("+33612345678", "FR"),
        ("+447400123456", "GB"),
        ("+12015550123", "US"),
        ("+14165550123", "CA"),
        ("+590690001234", "GP"),
        ("+61412345678", "AU"),
        ("+80012345678", None),  # non-geographic
        ("+19995550123", None),  # not valid
        ("+3312", None),
        ("0612345678", None),  # not E.164
        ("", None),
        ("garbage", None),
        (None, None),
    ],
)
def test_region_of(number: str, region: str | None) -> None:
    assert region_of(number) == region


def test_a_number_seen_again_is_not_parsed_again() -> None:
    from outbound.domain import numbers

    numbers._e164.cache_clear()
    assert normalize_number("06 12 34 56 78", "fr") == "+33612345678"
    assert normalize_number("06 12 34 56 78", "FR") == "+33612345678"  # same region, any case
    assert normalize_number("whatsapp:06 12 34 56 78", "FR") == "+33612345678"
    info = numbers._e164.cache_info()
    assert (info.hits, info.misses) == (2, 1)
    # Refused numbers are refused every time, and nothing is kept for them.
    for _ in range(2):
        with pytest.raises(InvalidNumberError):
            normalize_number("+33 1", "FR")
    assert numbers._e164.cache_info().currsize == 1


def test_a_numbers_region_comes_from_the_parse_that_normalised_it() -> None:
    from outbound.domain import numbers

    numbers._e164.cache_clear()
    # Written with its country code, the number is read the same whatever the region given.
    assert normalize_number("+33 6 12 34 56 78", "US") == "+33612345678"
    assert normalize_number("+33612345678", "FR") == "+33612345678"
    assert region_of("+33612345678") == "FR"
    assert region_of("+33612345678") == "FR"
    info = numbers._e164.cache_info()
    assert (info.misses, info.currsize) == (2, 2)  # the number as written, then as E.164
    assert info.hits == 2
