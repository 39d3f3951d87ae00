"""The console's languages: choosing one, and a French catalog that misses no string."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from pydantic import BaseModel, Field, ValidationError

from outbound.console.i18n import (
    Translator,
    choose_language,
    choose_locale,
    parse_accept_language,
    validation_text,
)
from outbound.console.rendering import environment, render_with
from outbound.texts import N_

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "src" / "outbound" / "console"


def test_accept_language_is_read_by_quality() -> None:
    assert parse_accept_language("fr-CA,fr;q=0.9,en;q=0.5") == ["fr-CA", "fr", "en"]
    assert parse_accept_language("en;q=0.2, de, fr;q=0.8") == ["de", "fr", "en"]
    assert parse_accept_language("fr;q=0, en") == ["en"]
    assert parse_accept_language("*, en;q=abc") == []
    assert parse_accept_language(None) == []


def test_the_users_setting_comes_before_the_browser() -> None:
    assert choose_language("fr-FR", "en-US,en") == "fr"
    assert choose_language(None, "de-DE,fr;q=0.8,en;q=0.5") == "fr"
    assert choose_language("es", "es-ES") == "en"
    assert choose_language(None, None) == "en"


def test_dates_follow_the_region_of_the_tag_that_chose_the_language() -> None:
    assert choose_locale(None, "en-GB,en;q=0.8") == ("en", "en_GB")
    assert choose_locale("fr-CA", "en-GB") == ("fr", "fr_CA")
    assert choose_locale(None, "de-DE") == ("en", "en")
    moment = datetime(2026, 12, 5, 17, 4, 5, tzinfo=UTC)
    assert (
        Translator("en", "Europe/London", "en_GB").datetime(moment, "short") == "05/12/2026, 17:04"
    )


def test_dates_are_shown_in_the_users_zone_and_language() -> None:
    moment = datetime(2026, 12, 5, 17, 4, 5, tzinfo=UTC)
    assert Translator("fr", "Europe/Paris").datetime(moment) == "5 déc. 2026, 18:04:05"
    assert Translator("en", "America/New_York").datetime(moment) == "Dec 5, 2026, 12:04:05\u202fPM"
    assert Translator("en", "Not/AZone").datetime(moment) == "Dec 5, 2026, 5:04:05\u202fPM"
    assert Translator("fr").percent(0.1234) == "12,3\u00a0%"


def _extracted() -> set[str]:
    method_map = [
        ("**.py", "python"),
        ("console/templates/**.html", "jinja2"),
    ]
    options = {"console/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}
    ids: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(CONSOLE.parent),
        method_map,
        options,
        keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None},
    ):
        ids.add(message if isinstance(message, str) else message[0])
    return ids


def test_every_console_string_has_a_french_translation() -> None:
    with (CONSOLE / "locale" / "fr" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="fr")
    translated = {
        (m.id if isinstance(m.id, str) else m.id[0])
        for m in catalog
        if m.id
        and "fuzzy" not in m.flags
        and (m.string if isinstance(m.string, str) else all(m.string))
    }
    missing = sorted(_extracted() - translated)
    assert missing == [], f"run `make messages` and translate in messages.po: {missing}"


def test_a_service_text_is_said_in_french_with_its_values() -> None:
    message = N_("must be at most %(max_length)s characters", max_length=160)
    assert Translator("en").error(message) == "must be at most 160 characters"
    assert Translator("fr").error(message) == "doit compter au plus 160 caractères"
    # A plain string is looked up as it is; one the catalog lacks stays as written.
    assert Translator("fr").error("Field required") == "Champ obligatoire"
    assert Translator("fr").error("no such words") == "no such words"


def test_pydantic_errors_are_said_in_french() -> None:
    class Form(BaseModel):
        name: str = Field(max_length=3)
        size: int = Field(ge=2)
        wanted: str

    try:
        Form.model_validate({"name": "abcd", "size": "x"})
    except ValidationError as exc:
        said = {str(e["loc"][0]): Translator("fr").error(validation_text(e)) for e in exc.errors()}
    assert said == {
        "name": "doit compter au plus 3 caractères",
        "size": "La valeur doit être un nombre entier",
        "wanted": "Champ obligatoire",
    }


def test_a_text_printed_by_a_template_is_in_the_readers_language() -> None:
    page = environment.from_string("<p>{{ message }}</p>")
    message = N_("must be at most %(max_length)s characters", max_length=5)
    assert render_with(Translator("fr"), page, message=message) == (
        "<p>doit compter au plus 5 caractères</p>"
    )
    assert render_with(Translator("en"), page, message=message) == (
        "<p>must be at most 5 characters</p>"
    )


def test_the_text_counter_says_the_reason_of_a_fault_in_the_readers_language() -> None:
    from outbound.console.routes.templates import Counter

    page = environment.get_template("_text_counter.html")
    fault = Counter(error=N_("text must not be empty"), position=3, at="{")
    said = render_with(Translator("fr"), page, c=fault, t=Translator("fr"))
    assert "Erreur de champ au caractère 4 : le texte ne doit pas être vide" in said


def test_every_french_translation_keeps_the_placeholders_of_its_english() -> None:
    with (CONSOLE / "locale" / "fr" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="fr")
    faults = [(message.id, str(error)) for message, errors in catalog.check() for error in errors]
    assert faults == []


def test_a_translation_that_lost_a_placeholder_falls_back_to_the_english(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t = Translator("fr")
    monkeypatch.setattr(
        type(t._catalog), "gettext", lambda _self, _message: "au plus %(limit)s caractères"
    )
    message = N_("must be at most %(max_length)s characters", max_length=5)
    assert t.error(message) == "must be at most 5 characters"
