"""The rules of a user's fields: e-mail, languages, skills, passwords and key roles."""

from __future__ import annotations

import pytest

from outbound.domain.users import (
    MAX_PASSWORD_CHARS,
    MAX_SKILL_CHARS,
    UserRole,
    check_password,
    clean_email,
    clean_language,
    clean_skill,
    key_roles_for,
    skill_key,
    unique_languages,
    unique_skills,
)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("ana@example.com", "ana@example.com"),
        ("  Ana.Lopez@Example.COM ", "ana.lopez@example.com"),
        ("a.b+tag@mail.example.co.uk", "a.b+tag@mail.example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("josé@exämple.fr", "josé@exämple.fr"),
        ("x@a-b.io", "x@a-b.io"),
    ],
)
def test_email_addresses_are_trimmed_and_lower_cased(given: str, stored: str) -> None:
    assert clean_email(given) == stored


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "ana",
        "ana@",
        "@example.com",
        "ana@example",
        "ana@@example.com",
        "ana lopez@example.com",
        "ana@exa mple.com",
        ".ana@example.com",
        "ana.@example.com",
        "an..a@example.com",
        "ana@-example.com",
        "ana@example-.com",
        "ana@example..com",
        "ana@exa_mple.com",
        "ana@example.123",
        '"ana"@example.com',
        "ana<x>@example.com",
        "a" * 65 + "@example.com",
        "ana@" + "e" * 250 + ".com",
    ],
)
def test_malformed_email_addresses_are_refused_without_quoting_them(bad: str) -> None:
    with pytest.raises(ValueError) as caught:
        clean_email(bad)
    if bad.strip():
        assert bad.strip() not in str(caught.value)


def test_languages_are_canonical_bcp47_tags_without_repeats() -> None:
    tags = [clean_language(v) for v in ["FR_fr", "fr-FR", "es", " zh-hant-tw ", "1036"]]
    assert tags == ["fr-FR", "fr-FR", "es", "zh-Hant-TW", "fr-FR"]
    assert unique_languages(tags) == ["fr-FR", "es", "zh-Hant-TW"]
    for bad in ["", "xx-YY", "english", "fr-FR-u-co-phonebk", "und"]:
        with pytest.raises(ValueError, match="BCP-47"):
            clean_language(bad)


def test_skills_are_trimmed_and_deduplicated_ignoring_case() -> None:
    labels = [
        clean_skill(v) for v in ["  Billing ", "billing", "VIP\tclients", "vip  CLIENTS", "x"]
    ]
    assert labels == ["Billing", "billing", "VIP clients", "vip CLIENTS", "x"]
    assert unique_skills(labels) == ["Billing", "VIP clients", "x"]
    assert skill_key(" Returns  desk ") == skill_key("returns desk") == "returns desk"
    with pytest.raises(ValueError, match="empty"):
        clean_skill(" \t ")
    with pytest.raises(ValueError, match=str(MAX_SKILL_CHARS)):
        clean_skill("s" * (MAX_SKILL_CHARS + 1))


def test_passwords_need_ten_characters_and_are_never_trimmed() -> None:
    assert check_password(" 123456789") == " 123456789"
    assert check_password("p" * MAX_PASSWORD_CHARS) == "p" * MAX_PASSWORD_CHARS
    for bad in ["", "123456789", "p" * (MAX_PASSWORD_CHARS + 1)]:
        with pytest.raises(ValueError):
            check_password(bad)


def test_a_key_never_has_a_role_above_its_user() -> None:
    assert key_roles_for(UserRole.AGENT) == {"agent"}
    assert key_roles_for("supervisor") == {"supervisor", "agent"}
    assert key_roles_for(UserRole.ADMIN) == {"admin", "sender", "supervisor", "agent"}
    with pytest.raises(ValueError):
        key_roles_for("sender")
