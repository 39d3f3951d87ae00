"""SMS encoding and segment counting (GSM 03.38 / 3GPP TS 23.038).

A text made only of characters of the GSM 7-bit default alphabet and its extension table is
sent as GSM-7: 160 septets in a single SMS, 153 per part once concatenated (the user data
header takes the rest). Extension characters are an escape plus a character, 2 septets, and
the pair is never split across parts. Any other character forces UCS-2: 70 UTF-16 code units
in a single SMS, 67 per part, and a surrogate pair (e.g. most emoji) is never split.

Empty text has 0 segments: nothing would be sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENDED",
    "SmsEncoding",
    "SmsInfo",
    "sms_info",
]

# The default alphabet in code order, 0x00-0x7F, without 0x1B (ESC, the escape to the
# extension table, which has no character of its own). 0x09 is the upper-case "Ç"; some
# implementations show "ç" there, but the standard's table is upper-case.
_GSM7_BASIC_ORDERED = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ" + "ÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

GSM7_BASIC: frozenset[str] = frozenset(_GSM7_BASIC_ORDERED)
"""Characters of the GSM 03.38 default alphabet (1 septet each)."""

GSM7_EXTENDED: frozenset[str] = frozenset("\f^{}\\[~]|€")
"""Characters of the GSM 03.38 extension table (ESC + char, 2 septets each)."""

_GSM7_SINGLE_LIMIT = 160
_GSM7_PART_LIMIT = 153
_UCS2_SINGLE_LIMIT = 70
_UCS2_PART_LIMIT = 67


class SmsEncoding(StrEnum):
    """The data coding an SMS is sent with."""

    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True)
class SmsInfo:
    """How a text would be sent as SMS.

    ``units`` are septets for GSM-7 (extension characters count 2) and UTF-16 code units for
    UCS-2 (characters outside the BMP count 2); ``characters`` is ``len(text)`` in code points.
    """

    encoding: SmsEncoding
    segments: int
    units: int
    characters: int


def _gsm7_units(char: str) -> int | None:
    if char in GSM7_BASIC:
        return 1
    if char in GSM7_EXTENDED:
        return 2
    return None


def _count_segments(costs: list[int], single_limit: int, part_limit: int) -> int:
    """Number of parts for indivisible items of the given costs."""
    total = sum(costs)
    if total == 0:
        return 0
    if total <= single_limit:
        return 1
    # Greedy filling is exact here: items cost 1 or 2, and an item that does not fit whole
    # starts the next part, which is what handsets and SMSCs do.
    segments = 1
    used = 0
    for cost in costs:
        if used + cost > part_limit:
            segments += 1
            used = 0
        used += cost
    return segments


def _parts(units: int, single_limit: int, part_limit: int) -> int:
    """Number of parts for ``units`` items that each cost 1."""
    if units == 0:
        return 0
    return 1 if units <= single_limit else -(-units // part_limit)


def sms_info(text: str) -> SmsInfo:
    """Return the encoding, segment count and size of ``text`` as an SMS."""
    # Most texts are plain GSM-7 (or UCS-2 within the BMP): every character costs 1, and the
    # character sets answer without a loop in Python. Every message accepted is counted.
    if GSM7_BASIC.issuperset(text):
        n = len(text)
        return SmsInfo(SmsEncoding.GSM7, _parts(n, _GSM7_SINGLE_LIMIT, _GSM7_PART_LIMIT), n, n)
    if GSM7_EXTENDED.isdisjoint(text) and (not text or max(text) <= "\uffff"):
        n = len(text)
        return SmsInfo(SmsEncoding.UCS2, _parts(n, _UCS2_SINGLE_LIMIT, _UCS2_PART_LIMIT), n, n)
    return _sms_info_by_character(text)


def _sms_info_by_character(text: str) -> SmsInfo:
    """:func:`sms_info` for any text, a character at a time."""
    gsm_costs: list[int] = []
    for char in text:
        cost = _gsm7_units(char)
        if cost is None:
            break
        gsm_costs.append(cost)
    else:
        return SmsInfo(
            encoding=SmsEncoding.GSM7,
            segments=_count_segments(gsm_costs, _GSM7_SINGLE_LIMIT, _GSM7_PART_LIMIT),
            units=sum(gsm_costs),
            characters=len(text),
        )
    ucs_costs = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return SmsInfo(
        encoding=SmsEncoding.UCS2,
        segments=_count_segments(ucs_costs, _UCS2_SINGLE_LIMIT, _UCS2_PART_LIMIT),
        units=sum(ucs_costs),
        characters=len(text),
    )
