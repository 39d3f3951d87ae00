"""The console's languages: gettext catalogs, choosing a language, dates in a time zone.

Every string a person reads goes through gettext: ``{{ _("…") }}`` and ``{% trans %}`` in
templates, ``t.gettext("…")`` in routes (``t`` is the request's :class:`Translator`), and
:func:`N_` for strings defined at import time (menu labels) and translated when shown. The
catalogs are the ``.po`` files of ``locale/``, compiled in memory the first time a language is
used, so a fresh clone needs no build step; ``make messages`` extracts the strings again and
updates them (a test fails when a French translation is missing).

A language is chosen from the user's setting (``ui_language``), else the browser's
``Accept-Language``, else English. Dates are shown in the user's time zone (UTC without one),
formatted by Babel for the language.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.dates import get_timezone_name
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "N_",
    "Translator",
    "choose_language",
    "choose_locale",
    "parse_accept_language",
    "translations",
]

LANGUAGES = ("en", "fr")
"""The console's languages; English is the source language of the strings."""
DEFAULT_LANGUAGE = "en"
DOMAIN = "messages"
UTC = ZoneInfo("UTC")


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


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
