"""Settings read from the environment: yes/no words, and errors naming the variable."""

from __future__ import annotations

import pytest

from outbound.config import SettingsError, load_settings


@pytest.mark.parametrize(
    ("word", "expected"),
    [("true", True), ("on", True), ("Yes", True), ("1", True), ("off", False), ("NO", False)],
)
def test_yes_no_settings_take_the_flag_words(
    monkeypatch: pytest.MonkeyPatch, word: str, expected: bool
) -> None:
    monkeypatch.setenv("OUTBOUND_WORKER_ENABLED", word)
    monkeypatch.setenv("OUTBOUND_MIGRATE_ON_START", word)
    settings = load_settings()
    assert settings.worker_enabled is expected
    assert settings.migrate_on_start is expected


def test_a_yes_no_setting_given_another_word_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OUTBOUND_WORKER_ENABLED", "maybe")
    with pytest.raises(SettingsError, match=r"OUTBOUND_WORKER_ENABLED: .*must be true or false"):
        load_settings()


def test_yes_no_settings_given_in_code_stay_as_they_are() -> None:
    assert load_settings(worker_enabled=False, opentelemetry=True).worker_enabled is False
