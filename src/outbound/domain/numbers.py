"""Phone numbers: normalising to E.164, masking for logs, and finding a number's region."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException

from outbound.errors import InvalidNumberError
from outbound.texts import N_

__all__ = [
    "REASON_EMPTY",
    "REASON_MISSING_COUNTRY_CODE",
    "REASON_NOT_A_NUMBER",
    "REASON_NOT_VALID",
    "mask_number",
    "normalize_number",
    "region_of",
]

REASON_EMPTY = N_("invalid_number: empty")
REASON_NOT_A_NUMBER = N_("invalid_number: not a phone number")
REASON_MISSING_COUNTRY_CODE = N_("invalid_number: missing country code")
REASON_NOT_VALID = N_("invalid_number: not a valid number")

# Channel prefixes callers copy from provider payloads (Twilio's "whatsapp:+33...").
_PREFIXES = ("whatsapp:", "tel:")

# phonenumbers' pseudo-region for non-geographic numbers (+800, +882, ...).
_NON_GEOGRAPHIC_REGION = "001"


def _strip_prefix(text: str) -> str:
    lowered = text.lower()
    for prefix in _PREFIXES:
        if lowered.startswith(prefix):
            return text[len(prefix) :].strip()
    return text


def normalize_number(raw: str, default_region: str | None) -> str:
    """Return ``raw`` as an E.164 number (``+33612345678``).

    Whitespace and a ``whatsapp:`` or ``tel:`` prefix are ignored. A national number
    (``06 12 34 56 78``) is read in ``default_region`` (ISO 3166 code, any case).

    Raises :class:`~outbound.errors.InvalidNumberError` whose ``reason`` is one of
    ``invalid_number: empty``, ``invalid_number: not a phone number``,
    ``invalid_number: missing country code`` (national number and no usable region) or
    ``invalid_number: not a valid number`` (well-formed, but no such number exists).
    """
    if not isinstance(raw, str):
        raise InvalidNumberError(REASON_NOT_A_NUMBER)
    text = _strip_prefix(raw.strip())
    if not text:
        raise InvalidNumberError(REASON_EMPTY)
    # A number written with its country code is read the same in every region: one entry of
    # the cache, which region_of then finds too.
    region = default_region.strip().upper() if default_region and text[0] != "+" else None
    return _e164(text, region or None)[0]


# Organisations send to the same customers again and again: parsing and validating a number
# is most of what accepting a contact costs, and the answer never changes. Each number is
# parsed once for both its E.164 form and its region. Invalid numbers raise, so they are not
# kept.
@lru_cache(maxsize=16_384)
def _e164(text: str, region: str | None) -> tuple[str, str | None]:
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        # phonenumbers reports both "no region for a national number" and "unknown country
        # code after +" as INVALID_COUNTRY_CODE; only the first is a missing country code.
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE and not text.startswith("+"):
            raise InvalidNumberError(REASON_MISSING_COUNTRY_CODE) from exc
        raise InvalidNumberError(REASON_NOT_A_NUMBER) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumberError(REASON_NOT_VALID)
    number: str = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    country: str | None = phonenumbers.region_code_for_number(parsed)
    return number, None if country == _NON_GEOGRAPHIC_REGION else country


def mask_number(number: str) -> str:
    """Mask ``number`` for logs: ``+33612345678`` → ``+33*******78``.

    An E.164-looking number keeps its ``+``, the next two characters and the last two
    digits. Anything else keeps only its last two characters (nothing at all when it is four
    characters or shorter, where two would be half of it). Never raises.
    """
    try:
        text = number if isinstance(number, str) else str(number)
    except Exception:
        return "***"
    text = text.strip()
    if len(text) >= 8 and text[0] == "+" and text[1:].isdigit():
        return text[:3] + "*" * (len(text) - 5) + text[-2:]
    if len(text) <= 4:
        return "*" * len(text)
    return "*" * (len(text) - 2) + text[-2:]


def region_of(e164: str) -> str | None:
    """Return the ISO 3166 region of ``e164`` (``+33612345678`` → ``FR``).

    ``None`` when the number cannot be parsed, is not valid, or belongs to no region
    (non-geographic numbers such as ``+800``, which phonenumbers files under ``001``). Asked
    for every message accepted (its country, for reports and routing): the number was parsed
    when it was normalised, and the answer comes from that parse's cache.
    """
    if not isinstance(e164, str) or not e164.startswith("+"):
        return None
    try:
        return _e164(e164, None)[1]
    except InvalidNumberError:
        return None
