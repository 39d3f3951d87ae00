"""A contact's fields: the rules that clean them, and the records of contacts and cases flows see.

The API and the CSV import share these rules. A refused value is reported as a
:data:`Problem`, ``(field, message)``, added to a list so that every refused field of a
request or row can be told at once; the messages never quote the value (they end up in logs,
and a phone number must not).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from typing import Any, Protocol, TypeAlias
from zoneinfo import available_timezones

from outbound.domain.locales import normalize_locale
from outbound.domain.numbers import (
    REASON_EMPTY,
    REASON_MISSING_COUNTRY_CODE,
    REASON_NOT_A_NUMBER,
    normalize_number,
)
from outbound.errors import InvalidLocaleError, InvalidNumberError, message_of
from outbound.texts import N_

__all__ = [
    "CONTACT_FIELDS",
    "MAX_CUSTOM_VALUE_CHARS",
    "MAX_EXTERNAL_ID_CHARS",
    "MAX_NAME_CHARS",
    "CaseFields",
    "ContactFields",
    "Problem",
    "case_record",
    "changed_fields",
    "check_custom",
    "clean_contact",
    "clean_flag",
    "clean_language",
    "clean_phone",
    "clean_text",
    "clean_time_zone",
    "contact_record",
    "merge_custom",
]

MAX_EXTERNAL_ID_CHARS = 200
MAX_NAME_CHARS = 200
MAX_CUSTOM_VALUE_CHARS = 2000

Problem: TypeAlias = tuple[str | None, str]
"""A refused value: the field it was given for (``None`` for a whole row) and why."""

_NUMBER_PROBLEMS: dict[str, str] = {
    REASON_EMPTY: N_("must not be empty"),
    REASON_NOT_A_NUMBER: N_("not a phone number"),
    REASON_MISSING_COUNTRY_CODE: N_("needs a country code (+33...)"),
}


# --- one field ----------------------------------------------------------------------------


def clean_text(value: Any, limit: int) -> str:
    """``value`` as text without surrounding whitespace; :class:`ValueError` if it is empty
    or longer than ``limit`` characters."""
    text = str(value).strip()
    if not text:
        raise ValueError(N_("must not be empty"))
    if len(text) > limit:
        raise ValueError(N_("must be at most %(max_length)s characters", max_length=limit))
    return text


def clean_phone(value: Any, region: str) -> str:
    """``value`` in E.164, a national number read in ``region``; :class:`ValueError` if it is
    not a valid phone number."""
    # The number itself stays out of the message: messages end up in logs.
    try:
        return normalize_number(str(value), region)
    except InvalidNumberError as exc:
        raise ValueError(_NUMBER_PROBLEMS.get(exc.reason, N_("not a valid phone number"))) from exc


def clean_language(value: Any) -> str:
    """``value`` (a BCP-47 tag or a Windows LCID) as a canonical BCP-47 tag;
    :class:`ValueError` for anything else."""
    try:
        return normalize_locale(value)
    except InvalidLocaleError as exc:
        raise ValueError(N_("not a BCP-47 language tag (fr-FR) or a Windows LCID (1036)")) from exc


@cache
def _time_zones() -> dict[str, str]:
    # "localtime" and "Factory" are host artefacts, not places.
    return {
        name.lower(): name for name in available_timezones() if name not in {"localtime", "Factory"}
    }


def clean_time_zone(value: Any) -> str:
    """``value`` as the IANA time zone it names in any case (``europe/paris`` →
    ``Europe/Paris``); :class:`ValueError` if it names none."""
    zone = _time_zones().get(str(value).strip().lower())
    if zone is None:
        raise ValueError(N_("not an IANA time zone such as Europe/Paris"))
    return zone


def clean_flag(value: Any) -> bool:
    """A consent flag given as JSON: any value, by its truth."""
    return bool(value)


_CLEANERS: dict[str, Callable[[Any, str], Any]] = {
    "external_id": lambda v, _region: clean_text(v, MAX_EXTERNAL_ID_CHARS),
    "name": lambda v, _region: clean_text(v, MAX_NAME_CHARS),
    "mobile_phone": clean_phone,
    "whatsapp_number": clean_phone,
    "preferred_language": lambda v, _region: clean_language(v),
    "consent_sms": lambda v, _region: clean_flag(v),
    "consent_whatsapp": lambda v, _region: clean_flag(v),
    "time_zone": lambda v, _region: clean_time_zone(v),
}

CONTACT_FIELDS = tuple(_CLEANERS)
"""The contact's own fields, as the API and the CSV header name them (custom fields aside)."""


# --- a contact ----------------------------------------------------------------------------


def clean_contact(
    values: Mapping[str, Any], region: str, problems: list[Problem]
) -> dict[str, Any]:
    """Normalise the contact fields given (``None`` clears one); add a :data:`Problem` to
    ``problems`` for each value refused, which is left out of the result.

    ``values`` may only name fields of :data:`CONTACT_FIELDS`; phone numbers without a
    country code are read in ``region``.
    """
    clean: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            clean[name] = None
            continue
        try:
            clean[name] = _CLEANERS[name](value, region)
        except ValueError as exc:
            problems.append((name, message_of(exc)))
    return clean


def check_custom(values: Mapping[str, Any], problems: list[Problem]) -> None:
    """Add a :data:`Problem` to ``problems`` for each custom field value refused: text
    longer than :data:`MAX_CUSTOM_VALUE_CHARS`, or a number that is not finite."""
    for key, value in values.items():
        name = f"custom.{key}"
        if isinstance(value, str) and len(value) > MAX_CUSTOM_VALUE_CHARS:
            message = N_(
                "must be at most %(max_length)s characters", max_length=MAX_CUSTOM_VALUE_CHARS
            )
            problems.append((name, message))
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append((name, N_("must be a finite number")))


def merge_custom(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``changes`` into custom fields; a ``None`` value removes its key."""
    merged = {**current, **changes}
    return {k: v for k, v in merged.items() if v is not None}


# --- records as flows see them ------------------------------------------------------------


class ContactFields(Protocol):
    """What :func:`contact_record` reads of a contact."""

    @property
    def id(self) -> str: ...
    @property
    def external_id(self) -> str | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def mobile_phone(self) -> str | None: ...
    @property
    def whatsapp_number(self) -> str | None: ...
    @property
    def preferred_language(self) -> str | None: ...
    @property
    def consent_sms(self) -> bool: ...
    @property
    def consent_whatsapp(self) -> bool: ...
    @property
    def time_zone(self) -> str | None: ...
    @property
    def custom(self) -> Mapping[str, Any] | None: ...
    @property
    def created_at(self) -> datetime | None: ...
    @property
    def updated_at(self) -> datetime | None: ...


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def contact_record(c: ContactFields) -> dict[str, Any]:
    """A contact as a JSON-safe dict (event data, flow context)."""
    return {
        "id": c.id,
        "external_id": c.external_id,
        "name": c.name,
        "mobile_phone": c.mobile_phone,
        "whatsapp_number": c.whatsapp_number,
        "preferred_language": c.preferred_language,
        "consent": {"sms": bool(c.consent_sms), "whatsapp": bool(c.consent_whatsapp)},
        "time_zone": c.time_zone,
        "custom": dict(c.custom or {}),
        "created_at": _iso(c.created_at),
        "updated_at": _iso(c.updated_at),
    }


class CaseFields(Protocol):
    """What :func:`case_record` reads of a case."""

    @property
    def id(self) -> str: ...
    @property
    def number(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def contact_id(self) -> str | None: ...
    @property
    def custom(self) -> Mapping[str, Any] | None: ...
    @property
    def created_at(self) -> datetime | None: ...
    @property
    def updated_at(self) -> datetime | None: ...
    @property
    def resolved_at(self) -> datetime | None: ...


def case_record(c: CaseFields) -> dict[str, Any]:
    """A case as a JSON-safe dict (event data, flow context)."""
    return {
        "id": c.id,
        "number": c.number,
        "title": c.title,
        "status": c.status,
        "contact_id": c.contact_id,
        "custom": dict(c.custom or {}),
        "created_at": _iso(c.created_at),
        "updated_at": _iso(c.updated_at),
        "resolved_at": _iso(c.resolved_at),
    }


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """``{field: {"old": ..., "new": ...}}`` for each field of a record (a contact's, or any
    other dict of the same kind, such as a case's) that changed; ``updated_at`` aside."""
    return {
        key: {"old": before[key], "new": after[key]}
        for key in after
        if key != "updated_at" and before.get(key) != after[key]
    }
