"""Unit tests for outbound.domain.locales."""

from __future__ import annotations

import locale

import pytest

from outbound.domain.locales import (
    LocalizedText,
    choose_text,
    language_of,
    maximize,
    normalize_locale,
)
from outbound.errors import InvalidLocaleError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("fr-FR", "fr-FR"),
        ("fr-fr", "fr-FR"),
        ("fr_FR", "fr-FR"),
        ("FR_fr", "fr-FR"),
        ("FR", "fr"),
        ("fr", "fr"),
        ("en", "en"),
        ("en-us", "en-US"),
        ("  en-GB\n", "en-GB"),
        ("zh-Hant-TW", "zh-Hant-TW"),
        ("ZH-HANT-tw", "zh-Hant-TW"),
        ("zh_hans_cn", "zh-Hans-CN"),
        ("zh-Hans", "zh-Hans"),
        ("sr-latn", "sr-Latn"),
        ("es-419", "es-419"),
        ("en-150", "en-150"),
        ("ca-ES-valencia", "ca-ES-valencia"),
        ("de-de-1996", "de-DE-1996"),
        ("fil-PH", "fil-PH"),
        ("haw", "haw"),
        ("pt-BR", "pt-BR"),
        ("fr-US", "fr-US"),  # valid subtags need not form a CLDR locale
        # deprecated ISO 639 codes
        ("iw-IL", "he-IL"),
        ("in", "id"),
        ("ji", "yi"),
    ],
)
def test_normalize_tags(value: str, expected: str) -> None:
    assert normalize_locale(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1036, "fr-FR"),
        (1033, "en-US"),
        (3084, "fr-CA"),
        (2057, "en-GB"),
        (1031, "de-DE"),
        ("1036", "fr-FR"),
        ("1033", "en-US"),
        ("3084", "fr-CA"),
        ("2057", "en-GB"),
        ("1031", "de-DE"),
        (" 1036 ", "fr-FR"),
        ("01036", "fr-FR"),
        (1040, "it-IT"),
        (1043, "nl-NL"),
        (2067, "nl-BE"),
        (4108, "fr-CH"),
        (2060, "fr-BE"),
        (1046, "pt-BR"),
        (2070, "pt-PT"),
        (3082, "es-ES"),
        (1041, "ja-JP"),
        (1028, "zh-TW"),
        (2052, "zh-CN"),
        # entries where the stdlib table is lossy or not BCP-47, corrected
        (0x0004, "zh-Hans"),
        (0x7C04, "zh-Hant"),
        (0x081A, "sr-Latn-RS"),
        (0x0C1A, "sr-Cyrl-RS"),
        (0x042C, "az-Latn-AZ"),
        (0x082C, "az-Cyrl-AZ"),
        (0x0443, "uz-Latn-UZ"),
        (0x0843, "uz-Cyrl-UZ"),
        (0x0453, "km-KH"),
        (0x2409, "en-029"),
        (0x2009, "en-JM"),
        (0x380A, "es-UY"),
        (0x042E, "hsb-DE"),
        (0x0465, "dv-MV"),
    ],
)
def test_normalize_lcids(value: str | int, expected: str) -> None:
    assert normalize_locale(value) == expected


@pytest.mark.parametrize("lcid", sorted(locale.windows_locale))
def test_every_stdlib_lcid_normalizes(lcid: int) -> None:
    tag = normalize_locale(lcid)
    assert normalize_locale(tag) == tag
    assert normalize_locale(str(lcid)) == tag


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "xx",
        "xx-garbage",
        "xx-FR",
        "12ab",
        "1",
        "0",
        "99999",
        99999,
        0,
        -1036,
        "-1036",
        "0x040C",
        "fr-",
        "-fr",
        "fr--FR",
        "fr-FRA",
        "fr-ZZ",
        "fr-QQ",
        "fr-999",
        "fr-Xxxx",
        "fr-Zzzz",
        "fr-FR-x",
        "fr-FR-ab",
        "en-u-ca-gregory",
        "en-US-x-private",
        "i-klingon",
        "und",
        "mul",
        "zxx",
        "fran",
        "francais",
        "f",
        "français",
        "fr FR",
        "fr.FR",
        "fr_FR.UTF-8",
        "fr_FR@euro",
        "C",
        "POSIX",
        "\u0661\u0660\u0663\u0666",  # Arabic-Indic digits are not an LCID
        True,
        False,
        None,
        1036.0,
        b"fr",
        ["fr"],
    ],
)
def test_invalid_locales(value: object) -> None:
    with pytest.raises(InvalidLocaleError) as info:
        normalize_locale(value)  # type: ignore[arg-type]
    assert info.value.value == value


@pytest.mark.parametrize(
    ("tag", "language"),
    [
        ("fr-FR", "fr"),
        ("fr", "fr"),
        ("FR_ca", "fr"),
        ("zh-Hant-TW", "zh"),
        ("fil-PH", "fil"),
        (" de-DE ", "de"),
    ],
)
def test_language_of(tag: str, language: str) -> None:
    assert language_of(tag) == language


@pytest.mark.parametrize("tag", ["", "  ", "-FR"])
def test_language_of_empty(tag: str) -> None:
    with pytest.raises(InvalidLocaleError):
        language_of(tag)


def _choose(
    requested: str | None,
    localizations: dict[str, str],
    *,
    default_locale: str = "en-US",
    default_text: str = "default",
    configuration_default: str | None = None,
) -> LocalizedText:
    return choose_text(
        requested=requested,
        localizations=localizations,
        template_default_locale=default_locale,
        template_default_text=default_text,
        configuration_default_locale=configuration_default,
    )


FRENCH = {"fr-FR": "fr-FR text", "fr-CA": "fr-CA text", "de-DE": "de-DE text"}


@pytest.mark.parametrize(
    ("requested", "localizations", "default_locale", "config", "expected"),
    [
        # (1) exact match
        ("fr-FR", FRENCH, "en-US", None, LocalizedText("fr-FR", "fr-FR text", "exact")),
        ("fr-CA", FRENCH, "en-US", None, LocalizedText("fr-CA", "fr-CA text", "exact")),
        ("fr-fr", FRENCH, "en-US", None, LocalizedText("fr-FR", "fr-FR text", "exact")),
        ("FR_ca", FRENCH, "en-US", None, LocalizedText("fr-CA", "fr-CA text", "exact")),
        ("fr", {"fr": "fr text"}, "en-US", None, LocalizedText("fr", "fr text", "exact")),
        # the template's own default locale is an exact match too
        ("en-US", FRENCH, "en-US", "fr-FR", LocalizedText("en-US", "default", "exact")),
        ("en-us", FRENCH, "en-US", None, LocalizedText("en-US", "default", "exact")),
        # exact beats the bare language
        (
            "fr-CA",
            {"fr": "fr text", "fr-CA": "fr-CA text"},
            "en-US",
            None,
            LocalizedText("fr-CA", "fr-CA text", "exact"),
        ),
        # (2) same language: bare language tag first
        (
            "fr-BE",
            {"fr-CA": "fr-CA text", "fr": "fr text", "fr-CH": "fr-CH text"},
            "fr-FR",
            None,
            LocalizedText("fr", "fr text", "language"),
        ),
        # ... then the template default locale if it is that language
        (
            "fr-BE",
            {"fr-CA": "fr-CA text", "de-DE": "de"},
            "fr-FR",
            None,
            LocalizedText("fr-FR", "default", "language"),
        ),
        # ... the language's most likely region (CLDR) before the alphabetically first
        ("fr-BE", FRENCH, "en-US", None, LocalizedText("fr-FR", "fr-FR text", "language")),
        (
            "fr-BE",
            {"fr-LU": "lu", "fr-CH": "ch", "fr-CA": "ca"},
            "en-US",
            None,
            LocalizedText("fr-CA", "ca", "language"),
        ),
        # a bare requested language matches its most likely region
        ("fr", FRENCH, "en-US", None, LocalizedText("fr-FR", "fr-FR text", "language")),
        ("de", FRENCH, "en-US", None, LocalizedText("de-DE", "de-DE text", "language")),
        # a requested region of the default's language picks the default
        ("en-GB", FRENCH, "en-US", None, LocalizedText("en-US", "default", "language")),
        # language beats the configuration default
        ("fr-BE", FRENCH, "en-US", "de-DE", LocalizedText("fr-FR", "fr-FR text", "language")),
        # (3) configuration default: exact
        (
            "it-IT",
            FRENCH,
            "en-US",
            "de-DE",
            LocalizedText("de-DE", "de-DE text", "configuration_default"),
        ),
        (
            "it-IT",
            FRENCH,
            "en-US",
            "fr-fr",
            LocalizedText("fr-FR", "fr-FR text", "configuration_default"),
        ),
        # ... then same language, bare tag first
        (
            "it-IT",
            {"de-AT": "at", "de": "de", "fr-FR": "fr"},
            "en-US",
            "de-CH",
            LocalizedText("de", "de", "configuration_default"),
        ),
        # ... a locale of the same CLDR parent (es-419) before the template default
        (
            "it-IT",
            {"es-MX": "mx"},
            "es-ES",
            "es-AR",
            LocalizedText("es-MX", "mx", "configuration_default"),
        ),
        # ... then the template default if it is that language
        (
            "it-IT",
            {"es-MX": "mx"},
            "es-ES",
            "es-GQ",
            LocalizedText("es-ES", "default", "configuration_default"),
        ),
        # ... then the alphabetically first
        (
            "it-IT",
            {"de-CH": "ch", "de-AT": "at"},
            "en-US",
            "de-DE",
            LocalizedText("de-AT", "at", "configuration_default"),
        ),
        # requested None skips straight to (3)
        (
            None,
            FRENCH,
            "en-US",
            "fr-CA",
            LocalizedText("fr-CA", "fr-CA text", "configuration_default"),
        ),
        (
            None,
            FRENCH,
            "en-US",
            "fr-BE",
            LocalizedText("fr-FR", "fr-FR text", "configuration_default"),
        ),
        (
            "",
            FRENCH,
            "en-US",
            "de-DE",
            LocalizedText("de-DE", "de-DE text", "configuration_default"),
        ),
        # (4) template default
        ("it-IT", FRENCH, "en-US", None, LocalizedText("en-US", "default", "template_default")),
        ("it-IT", FRENCH, "en-US", "pt-BR", LocalizedText("en-US", "default", "template_default")),
        (None, FRENCH, "en-US", None, LocalizedText("en-US", "default", "template_default")),
        (None, {}, "en-US", "it-IT", LocalizedText("en-US", "default", "template_default")),
        ("it-IT", {}, "en-US", None, LocalizedText("en-US", "default", "template_default")),
        # not a prefix match: "fil" is not "fi"
        (
            "fi-FI",
            {"fil-PH": "fil"},
            "en-US",
            None,
            LocalizedText("en-US", "default", "template_default"),
        ),
    ],
)
def test_choose_text(
    requested: str | None,
    localizations: dict[str, str],
    default_locale: str,
    config: str | None,
    expected: LocalizedText,
) -> None:
    assert (
        _choose(
            requested, localizations, default_locale=default_locale, configuration_default=config
        )
        == expected
    )


def test_choose_text_default_text_wins_over_duplicate_localization() -> None:
    result = _choose("en-US", {"en-US": "localized", "fr": "fr"}, default_text="own text")
    assert result == LocalizedText("en-US", "own text", "exact")


def test_choose_text_returns_locale_as_spelled_in_inputs() -> None:
    result = _choose("fr-fr", {"fr_FR": "x"})
    assert result == LocalizedText("fr_FR", "x", "exact")


def test_choose_text_keyword_only() -> None:
    with pytest.raises(TypeError):
        choose_text(None, {}, "en", "x", None)  # type: ignore[call-arg]


# --- CLDR fallbacks -----------------------------------------------------------------------

EVERYWHERE = {
    "fr-CA": "fr-CA",
    "fr-FR": "fr-FR",
    "fr-CH": "fr-CH",
    "pt-PT": "pt-PT",
    "pt-BR": "pt-BR",
    "en-GB": "en-GB",
    "es-ES": "es-ES",
    "es-419": "es-419",
    "zh-CN": "zh-CN",
    "zh-TW": "zh-TW",
    "sr-Cyrl-RS": "sr-Cyrl",
    "sr-Latn-RS": "sr-Latn",
}


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        # a bare or unknown-region language goes to its most likely region (CLDR)
        ("fr", "fr-FR"),
        ("fr-BE", "fr-FR"),
        ("fr-LU", "fr-FR"),
        ("fr-CH", "fr-CH"),
        ("pt", "pt-BR"),
        ("en", "en-US"),
        ("en-US", "en-US"),
        # a CLDR parent, then a sibling under the same parent, before the likely region
        ("pt-AO", "pt-PT"),
        ("pt-MZ", "pt-PT"),
        ("es-MX", "es-419"),
        ("es-AR", "es-419"),
        ("es", "es-ES"),
        ("en-AU", "en-GB"),
        ("en-IN", "en-GB"),
        # the script comes first
        ("zh", "zh-CN"),
        ("zh-HK", "zh-TW"),
        ("zh-Hant", "zh-TW"),
        ("zh-MO", "zh-TW"),
        ("zh-SG", "zh-CN"),
        ("sr", "sr-Cyrl-RS"),
        ("sr-Latn", "sr-Latn-RS"),
        ("sr-Latn-BA", "sr-Latn-RS"),
        ("sr-ME", "sr-Latn-RS"),
    ],
)
def test_choose_text_follows_cldr(requested: str, expected: str) -> None:
    result = _choose(requested, EVERYWHERE)
    assert result.locale == expected
    assert result.match == ("exact" if requested == expected else "language")


def test_bare_language_text_comes_before_the_likely_region() -> None:
    result = _choose("fr-BE", {"fr": "fr", "fr-FR": "fr-FR"})
    assert result == LocalizedText("fr", "fr", "language")


def test_a_longer_form_of_the_tag_is_not_a_shorter_form() -> None:
    result = _choose("zh", {"zh-Hans": "hans", "zh-Hant": "hant"})
    assert result == LocalizedText("zh-Hans", "hans", "language")


def test_likely_region_before_the_template_default_of_the_language() -> None:
    result = _choose("fr-BE", {"fr-FR": "fr-FR"}, default_locale="fr-CA")
    assert result == LocalizedText("fr-FR", "fr-FR", "language")


def test_others_alphabetically_when_nothing_is_closer() -> None:
    result = _choose("fr-BE", {"fr-LU": "lu", "fr-CH": "ch", "fr-CA": "ca"})
    assert result == LocalizedText("fr-CA", "ca", "language")


def _with_fallbacks(requested: str | None, fallbacks: dict[str, str]) -> LocalizedText:
    return choose_text(
        requested=requested,
        localizations=EVERYWHERE,
        template_default_locale="en-US",
        template_default_text="default",
        configuration_default_locale="fr-BE",
        fallbacks=fallbacks,
    )


@pytest.mark.parametrize(
    ("requested", "fallbacks", "expected"),
    [
        # the template's own fallback for the tag wins over CLDR
        ("fr-BE", {"fr-BE": "fr-CA"}, LocalizedText("fr-CA", "fr-CA", "fallback")),
        ("fr_be", {"FR-be": "fr-ca"}, LocalizedText("fr-CA", "fr-CA", "fallback")),
        # a fallback for the language applies to each of its regions
        ("fr-LU", {"fr": "fr-CH"}, LocalizedText("fr-CH", "fr-CH", "fallback")),
        ("fr", {"fr": "fr-CH"}, LocalizedText("fr-CH", "fr-CH", "fallback")),
        # ... the tag's own one first
        ("fr-LU", {"fr": "fr-CH", "fr-LU": "fr-CA"}, LocalizedText("fr-CA", "fr-CA", "fallback")),
        # a chain through locales without a text
        (
            "fr-BE",
            {"fr-BE": "fr-LU", "fr-LU": "fr-CA"},
            LocalizedText("fr-CA", "fr-CA", "fallback"),
        ),
        # across languages
        ("ca-ES", {"ca": "es-ES"}, LocalizedText("es-ES", "es-ES", "fallback")),
        # a fallback to a locale without a text is ignored; so is a loop
        ("fr-BE", {"fr-BE": "fr-LU"}, LocalizedText("fr-FR", "fr-FR", "language")),
        (
            "fr-BE",
            {"fr-BE": "fr-LU", "fr-LU": "fr-BE"},
            LocalizedText("fr-FR", "fr-FR", "language"),
        ),
        # an exact text beats a fallback
        ("fr-FR", {"fr-FR": "fr-CA"}, LocalizedText("fr-FR", "fr-FR", "exact")),
        # the configuration's default goes through the fallbacks too
        (None, {"fr-BE": "fr-CH"}, LocalizedText("fr-CH", "fr-CH", "configuration_default")),
    ],
)
def test_choose_text_template_fallbacks(
    requested: str | None, fallbacks: dict[str, str], expected: LocalizedText
) -> None:
    assert _with_fallbacks(requested, fallbacks) == expected


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("fr", ("fr", "Latn", "FR")),
        ("pt", ("pt", "Latn", "BR")),
        ("en", ("en", "Latn", "US")),
        ("fr-CH", ("fr", "Latn", "CH")),
        ("zh-TW", ("zh", "Hant", "TW")),
        ("zh-hk", ("zh", "Hant", "HK")),
        ("sr-Latn", ("sr", "Latn", "RS")),
        ("es-419", ("es", "Latn", "419")),
    ],
)
def test_maximize(tag: str, expected: tuple[str, str | None, str | None]) -> None:
    assert maximize(tag) == expected
