"""The console's languages: gettext catalogs, choosing a language, dates in a time zone.

Every string a person reads goes through gettext: ``{{ _("…") }}`` and ``{% trans %}`` in
templates, ``t.gettext("…")`` in routes (``t`` is the request's :class:`Translator`), and
:func:`~outbound.texts.N_` for strings defined elsewhere (menu labels, the services' error
messages) and translated when shown: a :class:`~outbound.texts.Text` that reaches a template is
said in the reader's language, with its values filled in (:meth:`Translator.error`). The
catalogs are the ``.po`` files of ``locale/``, compiled in memory the first time a language is
used, so a fresh clone needs no build step; ``make messages`` extracts the strings again and
updates them (a test fails when a French translation is missing).

A language is chosen from the user's setting (``ui_language``), else the browser's
``Accept-Language``, else English. Dates are shown in the user's time zone (UTC without one),
formatted by Babel for the language.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.dates import get_timezone_name
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations

from outbound.texts import N_, Text

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "N_",
    "Translator",
    "choose_language",
    "choose_locale",
    "parse_accept_language",
    "translations",
    "validation_text",
]

LANGUAGES = ("en", "fr")
"""The console's languages; English is the source language of the strings."""
DEFAULT_LANGUAGE = "en"
DOMAIN = "messages"
UTC = ZoneInfo("UTC")


PYDANTIC_MESSAGES: dict[str, str] = {
    "missing": N_("Field required"),
    "extra_forbidden": N_("Extra inputs are not permitted"),
    "string_type": N_("Input should be a valid string"),
    "string_too_short": N_("must be at least %(min_length)s characters"),
    "string_too_long": N_("must be at most %(max_length)s characters"),
    "string_pattern_mismatch": N_("does not have the expected form"),
    "too_short": N_("must have at least %(min_length)s items"),
    "too_long": N_("must have at most %(max_length)s items"),
    "int_type": N_("Input should be a whole number"),
    "int_parsing": N_("Input should be a whole number"),
    "int_from_float": N_("Input should be a whole number"),
    "float_type": N_("Input should be a number"),
    "float_parsing": N_("Input should be a number"),
    "bool_type": N_("Input should be true or false"),
    "bool_parsing": N_("Input should be true or false"),
    "greater_than": N_("Input should be greater than %(gt)s"),
    "greater_than_equal": N_("Input should be greater than or equal to %(ge)s"),
    "less_than": N_("Input should be less than %(lt)s"),
    "less_than_equal": N_("Input should be less than or equal to %(le)s"),
    "literal_error": N_("Input should be %(expected)s"),
    "enum": N_("Input should be %(expected)s"),
    "datetime_type": N_("must be an ISO 8601 date and time"),
    "datetime_parsing": N_("must be an ISO 8601 date and time"),
    "datetime_from_date_parsing": N_("must be an ISO 8601 date and time"),
    "date_parsing": N_("must be a date (YYYY-MM-DD)"),
    "date_from_datetime_parsing": N_("must be a date (YYYY-MM-DD)"),
    "timezone_aware": N_("must have a time zone offset"),
    "url_parsing": N_("Input should be a valid URL"),
    "url_scheme": N_("URL scheme should be %(expected_schemes)s"),
    "json_invalid": N_("Invalid JSON"),
    "dict_type": N_("Input should be an object"),
    "list_type": N_("Input should be a list"),
    "never_null": N_("must not be null"),
}
"""The console's words for Pydantic's kinds of error (by its error ``type``), with the
values of the error's context; a kind not listed keeps Pydantic's own English message."""


def validation_text(error: Mapping[str, Any]) -> str:
    """One error of a Pydantic ``ValidationError`` (an item of ``.errors()``) as a text the
    console says in the reader's language: a validator's own message (a ``ValueError``
    carrying a text) as it is, a kind of error Pydantic names through
    :data:`PYDANTIC_MESSAGES` with its context's values, anything else as Pydantic wrote it
    (looked up in the catalog as it is: a validator's ``N_("…")`` message is there)."""
    context = error.get("ctx") or {}
    cause = context.get("error")
    if error.get("type") == "value_error" and isinstance(cause, Exception) and cause.args:
        message = cause.args[0]
        return message if isinstance(message, Text) else Text(str(message))
    template = PYDANTIC_MESSAGES.get(str(error.get("type")))
    if template is not None:
        values = {name: str(value) for name, value in context.items()}
        try:
            return N_(template, **values) if values else Text(template)
        except (KeyError, ValueError, TypeError):
            pass
    return Text(str(error.get("msg", "invalid")))


@cache
def translations(language: str) -> NullTranslations:
    """The compiled catalog of ``language`` (English, the source language, has none)."""
    if language == DEFAULT_LANGUAGE or language not in LANGUAGES:
        return NullTranslations()
    source = resources.files("outbound.console") / "locale" / language / "LC_MESSAGES"
    with (source / f"{DOMAIN}.po").open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def parse_accept_language(header: str | None) -> list[str]:
    """The languages of an ``Accept-Language`` header, most wanted first.

    ``"fr-CA,fr;q=0.9,en;q=0.5"`` → ``["fr-CA", "fr", "en"]``; ``q=0`` means "not this one".
    """
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate((header or "").split(",")):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, index, tag))
    return [tag for _q, _i, tag in sorted(ranked)]


def _base(tag: str) -> str:
    return tag.replace("_", "-").split("-")[0].lower()


def choose_language(user_language: str | None, accept_language: str | None) -> str:
    """The user's language when the console speaks it, else the browser's first it speaks."""
    return choose_locale(user_language, accept_language)[0]


def choose_locale(user_language: str | None, accept_language: str | None) -> tuple[str, str]:
    """The language of the strings, and the locale of dates and numbers: the tag that chose
    the language, with its region (``en-GB`` writes dates day first, ``fr-CA`` year first)."""
    for tag in [user_language or "", *parse_accept_language(accept_language)]:
        base = _base(tag)
        if base in LANGUAGES:
            return base, _format_locale(tag, base)
    return DEFAULT_LANGUAGE, DEFAULT_LANGUAGE


def _format_locale(tag: str, base: str) -> str:
    try:
        return str(Locale.parse(tag.replace("-", "_")))
    except (ValueError, TypeError, UnknownLocaleError):
        return base


@cache
def _one_decimal_percent(language: str) -> str:
    pattern = str(Locale.parse(language).percent_formats[None].pattern)
    return (
        pattern.replace("0%", "0.0%")
        .replace("0\u00a0%", "0.0\u00a0%")
        .replace("0\u202f%", "0.0\u202f%")
    )


def _zone(name: str | None) -> ZoneInfo:
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


@dataclass(frozen=True)
class Translator:
    """One request's language and time zone: its strings, dates and numbers."""

    language: str
    time_zone: str | None = None
    locale: str | None = None
    """Dates' and numbers' locale (``en_GB``); the language's own when None."""

    @property
    def _formats(self) -> str:
        return self.locale or self.language

    @property
    def _catalog(self) -> NullTranslations:
        return translations(self.language)

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.time_zone)

    @property
    def zone_name(self) -> str:
        """The zone as people read it ("Central European Time"), with its identifier."""
        zone = self.zone
        return f"{get_timezone_name(zone, locale=self.language)} ({zone.key})"

    def gettext(self, message: str, **variables: object) -> str:
        """``message`` translated, then ``%(name)s`` filled from ``variables``."""
        text = self._catalog.gettext(message)
        return text % variables if variables else text

    def error(self, message: object) -> str:
        """A service's message in this language: a :class:`~outbound.texts.Text` is looked up
        by its catalog id and filled with its values (translated too when they are texts);
        another string is looked up as it is (English when the catalog does not have it)."""
        if isinstance(message, Text):
            text = self._catalog.gettext(message.msgid)
            if not message.values:
                return text
            values = {
                name: self.error(value) if isinstance(value, Text) else value
                for name, value in message.values.items()
            }
            try:
                return text % values
            except (KeyError, ValueError, TypeError):
                return str(message)  # a translation that lost a placeholder: the English
        return self._catalog.gettext(str(message))

    def ngettext(self, singular: str, plural: str, n: int, **variables: object) -> str:
        text = self._catalog.ngettext(singular, plural, n)
        return text % {"num": n, **variables}

    def datetime(self, value: datetime | None, format: str = "medium") -> str:
        """``value`` in the user's zone and language ("5 déc. 2026, 18:04:05")."""
        if value is None:
            return ""
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return babel_format_datetime(value, format, tzinfo=self.zone, locale=self._formats)

    def date(self, value: date, format: str = "medium") -> str:
        """A calendar day in the user's language ("5 déc. 2026")."""
        return babel_format_date(value, format, locale=self._formats)

    def number(self, value: float | int) -> str:
        return format_decimal(value, locale=self._formats)

    def percent(self, value: float) -> str:
        """A share as a percentage with one decimal, spaced as the language spaces it."""
        return format_percent(value, _one_decimal_percent(self._formats), locale=self._formats)

    def language_name(self, tag: str) -> str:
        """A language tag as a name in the console's language ("fr-FR" → "French (France)")."""
        try:
            return Locale.parse(tag.replace("-", "_")).get_display_name(self.language) or tag
        except (ValueError, TypeError, UnknownLocaleError):
            return tag
