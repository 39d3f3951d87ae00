"""Locales: normalising BCP-47 tags and Windows LCIDs, and choosing a template's text.

Tags are canonicalised to ``language[-Script][-REGION][-variant...]`` (``fr-FR``,
``zh-Hant-TW``, ``ca-ES-valencia``). The language must be known to Babel (CLDR), the script
and region too. Extensions and private-use subtags (``-u-...``, ``-x-...``) are refused:
nothing downstream could use them, and accepting them would make equal locales compare
unequal.

Windows LCIDs (Dynamics 365 sends them, e.g. ``1036``) are translated with the standard
library's ``locale.windows_locale``, corrected where that table is lossy or outdated (it
maps Latin and Cyrillic Serbian, Azerbaijani, Uzbek and Bosnian to the same tag, and uses
a few pre-ISO codes such as ``kh_KH`` or ``en_CB``).
"""

from __future__ import annotations

import locale as _stdlib_locale
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Literal

from babel import Locale
from babel.core import get_global, parse_locale
from babel.localedata import locale_identifiers

from outbound.errors import InvalidLocaleError

__all__ = [
    "LocaleMatch",
    "LocalizedText",
    "choose_text",
    "language_of",
    "maximize",
    "normalize_locale",
]

LocaleMatch = Literal["exact", "fallback", "language", "configuration_default", "template_default"]

# LCIDs for which ``locale.windows_locale`` is wrong, lossy or not a valid BCP-47 tag,
# with the tag Windows itself documents (MS-LCID), or its closest CLDR equivalent when
# Babel does not know Windows' code.
_LCID_OVERRIDES: dict[int, str] = {
    0x0004: "zh-Hans",  # stdlib: zh_CHS
    0x7C04: "zh-Hant",  # stdlib: zh_CHT
    0x042C: "az-Latn-AZ",  # stdlib: az_AZ for both scripts
    0x082C: "az-Cyrl-AZ",
    0x141A: "bs-Latn-BA",  # stdlib: bs_BA for both scripts
    0x201A: "bs-Cyrl-BA",
    0x181A: "sr-Latn-BA",  # stdlib: sr_BA for both scripts
    0x1C1A: "sr-Cyrl-BA",
    # Windows says sr-*-CS (Serbia and Montenegro); CS is withdrawn, RS is its successor.
    0x081A: "sr-Latn-RS",  # stdlib: sr_SP
    0x0C1A: "sr-Cyrl-RS",  # stdlib: sr_SP
    0x0443: "uz-Latn-UZ",  # stdlib: uz_UZ for both scripts
    0x0843: "uz-Cyrl-UZ",
    0x045D: "iu-Cans-CA",  # stdlib: iu_CA for both scripts
    0x085D: "iu-Latn-CA",
    0x0850: "mn-Mong-CN",
    0x042E: "hsb-DE",  # stdlib: wen_DE
    0x0453: "km-KH",  # stdlib: kh_KH
    0x046C: "nso-ZA",  # stdlib: ns_ZA
    0x0486: "quc-Latn-GT",  # stdlib: qut_GT
    0x048C: "fa-AF",  # stdlib: gbz_AF; Windows says prs-AF (Dari), which CLDR files as fa-AF
    0x085F: "tzm-Latn-DZ",  # stdlib: tmz_DZ
    0x2009: "en-JM",  # stdlib: en_JA
    0x2409: "en-029",  # stdlib: en_CB
    0x380A: "es-UY",  # stdlib: es_UR
    0x0465: "dv-MV",  # stdlib: div_MV
    0x046B: "qu-BO",  # stdlib: quz_BO; Babel knows Quechua only as qu
    0x086B: "qu-EC",
    0x0C6B: "qu-PE",
}

# Deprecated ISO 639 codes still emitted by old platforms (e.g. Java's Locale).
_LANGUAGE_ALIASES: dict[str, str] = {"iw": "he", "in": "id", "ji": "yi"}

# Codes CLDR lists as languages but that name no language a message can be written in.
_NOT_LANGUAGES = frozenset({"und", "mul", "zxx", "mis"})

_LANGUAGE_RE = re.compile(r"[a-z]{2,3}")
_SCRIPT_RE = re.compile(r"[a-z]{4}")
_REGION_RE = re.compile(r"[a-z]{2}|[0-9]{3}")
_VARIANT_RE = re.compile(r"[a-z0-9]{5,8}|[0-9][a-z0-9]{3}")


@cache
def _known_languages() -> frozenset[str]:
    english = Locale("en")
    codes = {code for code in english.languages if isinstance(code, str) and code.isalpha()}
    codes.update(identifier.split("_", 1)[0] for identifier in locale_identifiers())
    return frozenset(code.lower() for code in codes) - _NOT_LANGUAGES


@cache
def _known_scripts() -> frozenset[str]:
    # Zzzz is CLDR's "unknown script".
    return frozenset(Locale("en").scripts) - {"Zzzz"}


@cache
def _known_regions() -> frozenset[str]:
    # ZZ is CLDR's "unknown region": syntactically a region, but says nothing.
    return frozenset(Locale("en").territories) - {"ZZ"}


def _canonical_tag(raw: str, original: object) -> str:
    """Canonicalise and validate a BCP-47 tag written with ``-`` or ``_``, in any case."""
    subtags = raw.replace("_", "-").lower().split("-")
    language = subtags[0]
    if not _LANGUAGE_RE.fullmatch(language):
        raise InvalidLocaleError(original)
    language = _LANGUAGE_ALIASES.get(language, language)
    if language not in _known_languages():
        raise InvalidLocaleError(original)
    result = [language]
    rest = subtags[1:]
    if rest and _SCRIPT_RE.fullmatch(rest[0]):
        script = rest.pop(0).title()
        if script not in _known_scripts():
            raise InvalidLocaleError(original)
        result.append(script)
    if rest and _REGION_RE.fullmatch(rest[0]):
        region = rest.pop(0).upper()
        if region not in _known_regions():
            raise InvalidLocaleError(original)
        result.append(region)
    for variant in rest:
        if not _VARIANT_RE.fullmatch(variant):
            raise InvalidLocaleError(original)
        result.append(variant)
    return "-".join(result)


def _from_lcid(lcid: int, original: object) -> str:
    tag = _LCID_OVERRIDES.get(lcid) or _stdlib_locale.windows_locale.get(lcid)
    if tag is None:
        raise InvalidLocaleError(original)
    # Defensive: other Python versions' tables may carry "@modifier" suffixes.
    return _canonical_tag(tag.split("@", 1)[0].split(".", 1)[0], original)


def normalize_locale(value: str | int) -> str:
    """Return the canonical BCP-47 tag for ``value``.

    Accepts a BCP-47 tag in any case, with ``-`` or ``_`` (``fr_fr`` → ``fr-FR``,
    ``ZH-hant-tw`` → ``zh-Hant-TW``), or a Windows LCID as an ``int`` or a string of digits
    (``1036`` → ``fr-FR``, ``"3084"`` → ``fr-CA``). Surrounding whitespace is ignored.

    Raises :class:`~outbound.errors.InvalidLocaleError` for anything else, including unknown
    languages, scripts or regions, unknown LCIDs, empty strings and ``bool``.
    """
    # bool is an int subclass; True would otherwise be LCID 1 (Arabic).
    if isinstance(value, bool):
        raise InvalidLocaleError(value)
    if isinstance(value, int):
        return _from_lcid(value, value)
    if not isinstance(value, str):
        raise InvalidLocaleError(value)
    text = value.strip()
    if not text:
        raise InvalidLocaleError(value)
    if text.isascii() and text.isdigit():
        return _from_lcid(int(text), value)
    if not text.isascii():
        raise InvalidLocaleError(value)
    return _canonical_tag(text, value)


def language_of(tag: str) -> str:
    """Return the lower-case language subtag of ``tag`` (``fr-FR`` → ``fr``).

    Does not validate the tag beyond refusing an empty language.
    """
    language = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    if not language:
        raise InvalidLocaleError(tag)
    return language


@dataclass(frozen=True)
class LocalizedText:
    """The text chosen for a message, the locale it is written in, and why it was chosen."""

    locale: str
    text: str
    match: LocaleMatch


# How many named fallbacks are followed from one locale (they may point at each other).
_MAX_FALLBACK_STEPS = 8


def _key(tag: str) -> str:
    return tag.strip().replace("_", "-").casefold()


def _key_language(key: str) -> str:
    return key.split("-", 1)[0]


@dataclass(frozen=True)
class _Subtags:
    language: str
    script: str | None
    region: str | None

    @classmethod
    def of(cls, key: str) -> _Subtags:
        """Split a tag (any case) into language, script and region; variants are ignored."""
        parts = key.replace("_", "-").split("-")
        language, rest = parts[0].lower(), parts[1:]
        script = region = None
        if rest and _SCRIPT_RE.fullmatch(rest[0].lower()):
            script = rest.pop(0).title()
        if rest and _REGION_RE.fullmatch(rest[0].lower()):
            region = rest.pop(0).upper()
        return cls(language, script, region)

    def babel(self) -> str:
        return "_".join(p for p in (self.language, self.script, self.region) if p)


@cache
def _likely_table() -> Mapping[str, str]:
    table: Mapping[str, str] = get_global("likely_subtags")
    return table


@cache
def _parent_table() -> Mapping[str, str]:
    table: Mapping[str, str] = get_global("parent_exceptions")
    return table


@cache
def maximize(tag: str) -> tuple[str, str | None, str | None]:
    """Add the likely script and region to ``tag`` (CLDR likely subtags, through Babel).

    ``fr`` → ``("fr", "Latn", "FR")``, ``pt`` → ``("pt", "Latn", "BR")``, ``zh-TW`` →
    ``("zh", "Hant", "TW")``, ``sr-Latn`` → ``("sr", "Latn", "RS")``. Subtags the tag has are
    kept; a language CLDR has no data for keeps ``None`` for what it lacks.
    """
    tags = _Subtags.of(tag)
    lang, script, region = tags.language, tags.script, tags.region
    keys = []
    if script and region:
        keys.append(f"{lang}_{script}_{region}")
    if region:
        keys.append(f"{lang}_{region}")
    if script:
        keys.append(f"{lang}_{script}")
    keys.append(lang)
    table = _likely_table()
    for candidate in keys:
        likely = table.get(candidate)
        if likely is not None:
            parsed = parse_locale(likely)
            likely_region, likely_script = parsed[1], parsed[2]
            return lang, script or likely_script, region or likely_region
    return lang, script, region


@cache
def _parents(tag: str) -> tuple[str, ...]:
    """CLDR's parent locales of ``tag`` that are not its bare language (``en-AU`` →
    ``("en-001",)``, ``pt-AO`` → ``("pt-PT",)``, ``es-MX`` → ``("es-419",)``), as keys."""
    tags = _Subtags.of(tag)
    table = _parent_table()
    result: list[str] = []
    current = [tags.babel(), f"{tags.language}_{tags.region}" if tags.region else None]
    seen: set[str] = set()
    while True:
        parent = next((table[c] for c in current if c and c in table), None)
        if parent is None or parent == "root" or parent in seen:
            return tuple(result)
        seen.add(parent)
        result.append(_key(parent))
        current = [parent]


def _same_language_rank(requested: str, candidate: str, default_key: str) -> tuple[int, int, str]:
    """How good a text in ``candidate`` is for ``requested``, lower first; both are keys of
    the same language.

    The script comes first (``zh-HK`` prefers ``zh-TW``'s traditional characters to
    ``zh-CN``'s simplified ones). Then, in this order: a shorter form of the requested tag
    (``fr`` for ``fr-BE``, ``zh-Hant`` for ``zh-Hant-TW``); a CLDR parent locale of it
    (``en-001`` for ``en-AU``, ``pt-PT`` for ``pt-AO``); a locale with the same CLDR parent
    (``en-GB`` for ``en-AU``, both ``en-001``); the language's most likely region (``fr-FR``
    for ``fr-CH``, ``pt-BR`` for ``pt``, ``en-US`` for ``en``); the template's default
    locale; the others in alphabetical order.
    """
    wanted_language, wanted_script, _ = maximize(requested)
    _, candidate_script, candidate_region = maximize(candidate)
    script_differs = int(
        wanted_script is not None
        and candidate_script is not None
        and wanted_script != candidate_script
    )
    requested_parts = requested.split("-")
    truncations = ["-".join(requested_parts[:n]) for n in range(len(requested_parts) - 1, 0, -1)]
    parents = _parents(requested)
    if candidate in truncations:
        tier = truncations.index(candidate)
        return script_differs, tier, candidate
    tier = len(truncations)
    if candidate in parents:
        return script_differs, tier + parents.index(candidate), candidate
    tier += len(parents)
    if parents and set(parents) & set(_parents(candidate)):
        return script_differs, tier, candidate
    likely = f"{wanted_language}-{wanted_script}" if wanted_script else wanted_language
    if _Subtags.of(candidate).region is not None and candidate_region == maximize(likely)[2]:
        return script_differs, tier + 1, candidate
    if candidate == default_key:
        return script_differs, tier + 2, candidate
    return script_differs, tier + 3, candidate


def _find(
    requested: str,
    available: Mapping[str, tuple[str, str]],
    default_key: str,
    fallbacks: Mapping[str, str],
) -> tuple[tuple[str, str] | None, LocaleMatch]:
    """Find the best text for ``requested`` in ``available`` (keyed by :func:`_key`).

    Returns the entry and how it was found: ``exact``; ``fallback`` when the template's own
    fallbacks name it (for the tag, else for its language; followed from one to the next
    while they name locales without a text); else ``language`` for the best text in the same
    language (see :func:`_same_language_rank`).
    """
    key = _key(requested)
    if key in available:
        return available[key], "exact"
    step, seen = key, {key}
    for _ in range(_MAX_FALLBACK_STEPS):
        target = fallbacks.get(step) or fallbacks.get(_key_language(step))
        if target is None or target in seen:
            break
        if target in available:
            return available[target], "fallback"
        seen.add(target)
        step = target
    language = _key_language(key)
    same_language = [k for k in available if _key_language(k) == language]
    if not same_language:
        return None, "language"
    best = min(same_language, key=lambda k: _same_language_rank(key, k, default_key))
    return available[best], "language"


def choose_text(
    *,
    requested: str | None,
    localizations: Mapping[str, str],
    template_default_locale: str,
    template_default_text: str,
    configuration_default_locale: str | None,
    fallbacks: Mapping[str, str] | None = None,
) -> LocalizedText:
    """Pick the text to send for ``requested`` among a template's texts.

    The candidates are ``localizations`` plus ``template_default_text`` under
    ``template_default_locale`` (which wins if ``localizations`` also has that locale, since
    it is the template's own text). Tags are compared case-insensitively, ``_`` equal to ``-``.

    1. ``exact``: a text for the requested locale.
    2. ``fallback``: the text of the locale the template's ``fallbacks`` name for the
       requested locale (``{"fr-BE": "fr-FR"}``) or for its language (``{"fr": "fr-CA"}``).
    3. ``language``: the best text in the requested language for another region: a shorter
       form of the tag, a CLDR parent locale, a locale with the same CLDR parent, the
       language's most likely region (CLDR likely subtags: ``fr`` → ``fr-FR``, ``pt`` →
       ``pt-BR``, ``en`` → ``en-US``), the template's default locale, then the others
       alphabetically, all in the requested script first.
    4. ``configuration_default``: the same steps for ``configuration_default_locale``.
    5. ``template_default``: the template's default text.

    ``requested=None`` (or blank) starts at step 4. The returned ``locale`` is spelled as in
    the inputs.
    """
    default_key = _key(template_default_locale)
    available: dict[str, tuple[str, str]] = {
        _key(tag): (tag, text) for tag, text in localizations.items()
    }
    available[default_key] = (template_default_locale, template_default_text)
    named = {_key(k): _key(v) for k, v in (fallbacks or {}).items()}

    if requested is not None and requested.strip():
        found, match = _find(requested, available, default_key, named)
        if found is not None:
            return LocalizedText(found[0], found[1], match)
    if configuration_default_locale is not None and configuration_default_locale.strip():
        found, _ = _find(configuration_default_locale, available, default_key, named)
        if found is not None:
            return LocalizedText(found[0], found[1], "configuration_default")
    return LocalizedText(template_default_locale, template_default_text, "template_default")
