"""Unit tests for outbound.domain.encoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outbound.domain import encoding
from outbound.domain.encoding import (
    GSM7_BASIC,
    GSM7_EXTENDED,
    SmsEncoding,
    SmsInfo,
    sms_info,
)

GSM = SmsEncoding.GSM7
UCS = SmsEncoding.UCS2
EMOJI = "😀"  # outside the BMP: a surrogate pair, 2 UTF-16 units


def test_encoding_values() -> None:
    assert SmsEncoding.GSM7.value == "GSM-7"
    assert SmsEncoding.UCS2.value == "UCS-2"
    assert str(SmsEncoding.GSM7) == "GSM-7"
    assert SmsEncoding("UCS-2") is SmsEncoding.UCS2


def test_basic_table_is_exact() -> None:
    expected = (
        "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
        "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
    )
    assert len(expected) == 127  # 128 code points minus ESC
    assert frozenset(expected) == GSM7_BASIC


def test_extension_table_is_exact() -> None:
    assert frozenset("\f^{}\\[~]|€") == GSM7_EXTENDED
    assert not GSM7_BASIC & GSM7_EXTENDED


@pytest.mark.parametrize("char", sorted(GSM7_BASIC))
def test_every_basic_char_is_one_septet(char: str) -> None:
    assert sms_info(char) == SmsInfo(GSM, 1, 1, 1)


@pytest.mark.parametrize("char", sorted(GSM7_EXTENDED))
def test_every_extension_char_is_two_septets(char: str) -> None:
    assert sms_info(char) == SmsInfo(GSM, 1, 2, 1)


@pytest.mark.parametrize(
    "char",
    [
        "ç",  # only the upper-case Ç is in the default alphabet
        "â",
        "ê",
        "î",
        "ô",
        "û",
        "ë",
        "ï",
        "œ",
        "á",
        "í",
        "ó",
        "ú",
        "À",
        "È",
        "`",
        "\t",
        "\x1b",
        "\u00a0",
        "\u2019",  # right single quotation mark
        "“",
        "…",
        "\u2013",  # en dash
        "δ",
        "Б",
        "中",
        "😀",
    ],
)
def test_non_gsm_char_forces_ucs2(char: str) -> None:
    info = sms_info("Hello " + char)
    assert info.encoding is UCS
    assert info.segments == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SmsInfo(GSM, 0, 0, 0)),
        ("a", SmsInfo(GSM, 1, 1, 1)),
        ("Hello", SmsInfo(GSM, 1, 5, 5)),
        ("€", SmsInfo(GSM, 1, 2, 1)),
        ("Price: 5€", SmsInfo(GSM, 1, 10, 9)),
        ("[x]", SmsInfo(GSM, 1, 5, 3)),
        ("Ç", SmsInfo(GSM, 1, 1, 1)),
        ("ç", SmsInfo(UCS, 1, 1, 1)),
        ("Façade", SmsInfo(UCS, 1, 6, 6)),
        (EMOJI, SmsInfo(UCS, 1, 2, 1)),
        ("a" + EMOJI, SmsInfo(UCS, 1, 3, 2)),
    ],
)
def test_small_texts(text: str, expected: SmsInfo) -> None:
    assert sms_info(text) == expected


@pytest.mark.parametrize(
    ("text", "segments", "units"),
    [
        ("a" * 159, 1, 159),
        ("a" * 160, 1, 160),
        ("a" * 161, 2, 161),
        ("a" * 153 * 2, 2, 306),
        ("a" * (153 * 2 + 1), 3, 307),
        ("a" * 153 * 3, 3, 459),
        ("a" * (153 * 3 + 1), 4, 460),
        # extension chars count 2 towards the single-SMS limit
        ("€" * 80, 1, 160),
        ("€" * 80 + "a", 2, 161),
        ("a" * 159 + "€", 2, 161),
        ("a" * 158 + "€", 1, 160),
        # escape pair at a segment boundary is never split: it moves whole to the next segment
        ("a" * 151 + "€" + "a" * 153, 2, 306),  # pair fills septets 152-153 exactly
        ("a" * 153 + "€" + "a" * 151, 2, 306),  # pair starts segment 2
        ("a" * 152 + "€" + "a" * 153, 3, 307),
        # 153*2 units, but the pair would straddle the boundary, so a third segment is needed
        ("a" * 152 + "€" + "a" * 152, 3, 306),
        ("a" * 152 + "€" * 77, 3, 306),
        ("a" * 152 + "€" * 77 + "a", 3, 307),
        ("€" * 152, 2, 304),  # 76 pairs = 152 septets per segment
        ("€" * 153, 3, 306),  # the 153rd pair does not fit in 2 segments
        ("€" * 228, 3, 456),
        ("€" * 229, 4, 458),
    ],
)
def test_gsm7_segments(text: str, segments: int, units: int) -> None:
    info = sms_info(text)
    assert info.encoding is GSM
    assert info.units == units
    assert info.segments == segments
    assert info.characters == len(text)


@pytest.mark.parametrize(
    ("text", "segments", "units"),
    [
        ("ç" * 69, 1, 69),
        ("ç" * 70, 1, 70),
        ("ç" * 71, 2, 71),
        ("ç" * 134, 2, 134),
        ("ç" * 135, 3, 135),
        ("ç" * 201, 3, 201),
        ("ç" * 202, 4, 202),
        # emoji are 2 UTF-16 units
        (EMOJI * 35, 1, 70),
        (EMOJI * 35 + "a", 2, 71),
        ("ç" * 69 + EMOJI, 2, 71),
        ("ç" * 68 + EMOJI, 1, 70),
        # surrogate pair at the 67 boundary is never split
        ("ç" * 66 + EMOJI + "ç" * 66, 3, 134),  # pair would be units 67-68: next segment
        ("ç" * 65 + EMOJI + "ç" * 67, 2, 134),  # pair fills units 66-67 exactly
        ("ç" * 67 + EMOJI + "ç" * 65, 2, 134),  # pair starts segment 2
        (EMOJI * 67, 3, 134),  # 33 pairs = 66 units per segment
        (EMOJI * 66, 2, 132),
    ],
)
def test_ucs2_segments(text: str, segments: int, units: int) -> None:
    info = sms_info(text)
    assert info.encoding is UCS
    assert info.units == units
    assert info.segments == segments
    assert info.characters == len(text)


def test_gsm_extension_chars_count_one_in_ucs2() -> None:
    # once the text is UCS-2, "€" is a single UTF-16 unit like any BMP character
    assert sms_info("€ç") == SmsInfo(UCS, 1, 2, 2)


def test_long_gsm_text_mixed_with_one_non_gsm_char() -> None:
    info = sms_info("a" * 100 + "ç")
    assert info == SmsInfo(UCS, 2, 101, 101)


def test_info_is_frozen() -> None:
    info = sms_info("x")
    with pytest.raises(AttributeError):
        info.segments = 2  # type: ignore[misc]


_MIXED = st.text(
    alphabet=st.sampled_from(
        sorted(encoding.GSM7_BASIC)[:20]
        + sorted(encoding.GSM7_EXTENDED)
        + ["é", "ç", "Ω", "ł", "€", "🙂", "中"]
    ),
    max_size=400,
)


@given(st.one_of(_MIXED, st.text(max_size=400)))
def test_the_quick_count_is_the_count_a_character_at_a_time(text: str) -> None:
    assert encoding.sms_info(text) == encoding._sms_info_by_character(text)
