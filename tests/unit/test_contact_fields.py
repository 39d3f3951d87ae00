"""Unit tests for outbound.domain.contacts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from outbound.domain.contacts import (
    CONTACT_FIELDS,
    MAX_CUSTOM_VALUE_CHARS,
    MAX_EXTERNAL_ID_CHARS,
    MAX_NAME_CHARS,
    Problem,
    case_record,
    changed_fields,
    check_custom,
    clean_contact,
    clean_flag,
    clean_language,
    clean_phone,
    clean_text,
    clean_time_zone,
    contact_record,
    merge_custom,
)

# --- text -----------------------------------------------------------------------------------


def test_text_is_stripped() -> None:
    assert clean_text("  Ana Lima \t", 200) == "Ana Lima"


def test_text_is_read_from_any_value() -> None:
    assert clean_text(42, 200) == "42"


@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_empty_text_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        clean_text(value, 200)


def test_text_may_reach_its_limit_but_not_pass_it() -> None:
    assert clean_text("x" * 10, 10) == "x" * 10
    with pytest.raises(ValueError, match="must be at most 10 characters"):
        clean_text("x" * 11, 10)


def test_the_limit_counts_the_stripped_text() -> None:
    assert clean_text("  " + "x" * 10 + "  ", 10) == "x" * 10


# --- phone numbers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("+33 6 12 34 56 78", "FR", "+33612345678"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+33612345678", "", "+33612345678"),
        ("whatsapp:+33612345678", "FR", "+33612345678"),
        ("(201) 555-0123", "US", "+12015550123"),
    ],
)
def test_phone_numbers_become_e164(value: str, region: str, expected: str) -> None:
    assert clean_phone(value, region) == expected


@pytest.mark.parametrize(
    ("value", "region", "message"),
    [
        ("   ", "FR", "must not be empty"),
        ("abc", "FR", "not a phone number"),
        ("06 12 34 56 78", "", "needs a country code (+33...)"),
        ("+1 555 000", "FR", "not a valid phone number"),
    ],
)
def test_refused_phone_numbers_say_why(value: str, region: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        clean_phone(value, region)
    assert str(caught.value) == message


def test_a_refused_number_is_not_quoted() -> None:
    # The messages reach logs; a phone number must not.
    with pytest.raises(ValueError) as caught:
        clean_phone("0612345678", "")
    assert "0612345678" not in str(caught.value)
    assert "612345678" not in str(caught.value)


# --- languages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("fr-FR", "fr-FR"),
        ("fr_fr", "fr-FR"),
        (" en-us ", "en-US"),
        (1036, "fr-FR"),
        ("3084", "fr-CA"),
    ],
)
def test_languages_become_bcp47_tags(value: str | int, expected: str) -> None:
    assert clean_language(value) == expected


@pytest.mark.parametrize("value", ["", "klingon", "xx-YY-ZZ", True, 1.5])
def test_unknown_languages_are_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="not a BCP-47 language tag"):
        clean_language(value)


# --- time zones -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Europe/Paris", "Europe/Paris"),
        ("europe/paris", "Europe/Paris"),
        (" AMERICA/NEW_YORK ", "America/New_York"),
        ("utc", "UTC"),
    ],
)
def test_time_zones_take_their_iana_spelling(value: str, expected: str) -> None:
    assert clean_time_zone(value) == expected


@pytest.mark.parametrize("value", ["", "Mars/Olympus", "../../etc/passwd", "Europe/", "+02:00"])
def test_unknown_time_zones_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not an IANA time zone"):
        clean_time_zone(value)


# --- consent flags --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), (False, False), (1, True), (0, False)]
)
def test_json_flags_are_taken_by_their_truth(value: object, expected: bool) -> None:
    assert clean_flag(value) is expected


# --- a contact ------------------------------------------------------------------------------


def test_the_contact_fields() -> None:
    assert CONTACT_FIELDS == (
        "external_id",
        "name",
        "mobile_phone",
        "whatsapp_number",
        "preferred_language",
        "consent_sms",
        "consent_whatsapp",
        "time_zone",
    )


def test_every_field_is_cleaned() -> None:
    problems: list[Problem] = []
    clean = clean_contact(
        {
            "external_id": " C-1 ",
            "name": " Ana ",
            "mobile_phone": "06 12 34 56 78",
            "whatsapp_number": "+33 6 98 76 54 32",
            "preferred_language": "fr_fr",
            "consent_sms": 1,
            "consent_whatsapp": 0,
            "time_zone": "europe/paris",
        },
        "FR",
        problems,
    )
    assert problems == []
    assert clean == {
        "external_id": "C-1",
        "name": "Ana",
        "mobile_phone": "+33612345678",
        "whatsapp_number": "+33698765432",
        "preferred_language": "fr-FR",
        "consent_sms": True,
        "consent_whatsapp": False,
        "time_zone": "Europe/Paris",
    }


def test_none_clears_a_field() -> None:
    problems: list[Problem] = []
    assert clean_contact({"name": None, "time_zone": None}, "FR", problems) == {
        "name": None,
        "time_zone": None,
    }
    assert problems == []


def test_refused_values_are_reported_in_order_and_left_out() -> None:
    problems: list[Problem] = [("earlier", "kept")]
    clean = clean_contact(
        {"name": "Ana", "mobile_phone": "abc", "time_zone": "Mars/Olympus", "external_id": ""},
        "FR",
        problems,
    )
    assert clean == {"name": "Ana"}
    assert problems == [
        ("earlier", "kept"),
        ("mobile_phone", "not a phone number"),
        ("time_zone", "not an IANA time zone such as Europe/Paris"),
        ("external_id", "must not be empty"),
    ]


def test_names_and_external_ids_have_limits() -> None:
    problems: list[Problem] = []
    clean_contact(
        {"name": "x" * (MAX_NAME_CHARS + 1), "external_id": "x" * (MAX_EXTERNAL_ID_CHARS + 1)},
        "FR",
        problems,
    )
    assert problems == [
        ("name", f"must be at most {MAX_NAME_CHARS} characters"),
        ("external_id", f"must be at most {MAX_EXTERNAL_ID_CHARS} characters"),
    ]


def test_national_numbers_are_read_in_the_region_given() -> None:
    problems: list[Problem] = []
    assert clean_contact({"mobile_phone": "(201) 555-0123"}, "US", problems) == {
        "mobile_phone": "+12015550123"
    }
    assert problems == []


def test_only_contact_fields_can_be_cleaned() -> None:
    with pytest.raises(KeyError):
        clean_contact({"nickname": "Ana"}, "FR", [])


# --- custom fields --------------------------------------------------------------------------


def test_custom_values_within_the_rules_pass() -> None:
    problems: list[Problem] = []
    check_custom(
        {
            "plan": "x" * MAX_CUSTOM_VALUE_CHARS,
            "score": 1.5,
            "visits": 3,
            "vip": True,
            "tags": ["a", "b"],
            "address": {"city": "Lyon"},
            "gone": None,
        },
        problems,
    )
    assert problems == []


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_custom_numbers_must_be_finite(value: float) -> None:
    problems: list[Problem] = []
    check_custom({"score": value}, problems)
    assert problems == [("custom.score", "must be a finite number")]


def test_custom_text_has_a_limit() -> None:
    problems: list[Problem] = []
    check_custom({"plan": "x" * (MAX_CUSTOM_VALUE_CHARS + 1), "tier": "gold"}, problems)
    assert problems == [
        ("custom.plan", f"must be at most {MAX_CUSTOM_VALUE_CHARS} characters"),
    ]


def test_custom_changes_merge_and_none_removes() -> None:
    current = {"plan": "basic", "tier": "gold", "visits": 3}
    merged = merge_custom(current, {"plan": "pro", "tier": None, "new": 0})
    assert merged == {"plan": "pro", "visits": 3, "new": 0}
    assert current == {"plan": "basic", "tier": "gold", "visits": 3}


def test_removing_an_absent_custom_field_is_harmless() -> None:
    assert merge_custom({}, {"plan": None}) == {}


# --- records as flows see them --------------------------------------------------------------


@dataclass
class _Contact:
    id: str = "c-1"
    external_id: str | None = "C-1"
    name: str | None = "Ana"
    mobile_phone: str | None = "+33612345678"
    whatsapp_number: str | None = None
    preferred_language: str | None = "fr-FR"
    consent_sms: bool = True
    consent_whatsapp: bool = False
    time_zone: str | None = "Europe/Paris"
    custom: dict[str, Any] | None = field(default_factory=lambda: {"plan": "pro"})
    created_at: datetime | None = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    updated_at: datetime | None = None


def test_contact_record() -> None:
    assert contact_record(_Contact()) == {
        "id": "c-1",
        "external_id": "C-1",
        "name": "Ana",
        "mobile_phone": "+33612345678",
        "whatsapp_number": None,
        "preferred_language": "fr-FR",
        "consent": {"sms": True, "whatsapp": False},
        "time_zone": "Europe/Paris",
        "custom": {"plan": "pro"},
        "created_at": "2024-05-01T09:30:00+00:00",
        "updated_at": None,
    }


def test_contact_record_copies_custom_fields() -> None:
    contact = _Contact()
    record = contact_record(contact)
    record["custom"]["plan"] = "basic"
    assert contact.custom == {"plan": "pro"}


def test_contact_record_of_unset_custom_fields() -> None:
    assert contact_record(_Contact(custom=None))["custom"] == {}


@dataclass
class _Case:
    id: str = "k-1"
    number: str = "CAS-000001"
    title: str = "Broken screen"
    status: str = "resolved"
    contact_id: str | None = "c-1"
    custom: dict[str, Any] | None = field(default_factory=lambda: {"priority": "high"})
    created_at: datetime | None = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    updated_at: datetime | None = None
    resolved_at: datetime | None = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)


def test_case_record() -> None:
    assert case_record(_Case()) == {
        "id": "k-1",
        "number": "CAS-000001",
        "title": "Broken screen",
        "status": "resolved",
        "contact_id": "c-1",
        "custom": {"priority": "high"},
        "created_at": "2024-05-01T09:30:00+00:00",
        "updated_at": None,
        "resolved_at": "2024-05-02T10:00:00+00:00",
    }


def test_case_record_copies_custom_fields() -> None:
    case = _Case()
    case_record(case)["custom"]["priority"] = "low"
    assert case.custom == {"priority": "high"}
    assert case_record(_Case(custom=None))["custom"] == {}


def test_changed_fields() -> None:
    before = {"name": "Ana", "time_zone": "Europe/Paris", "custom": {}, "updated_at": "t0"}
    after = {"name": "Ana L", "time_zone": None, "custom": {}, "updated_at": "t1"}
    assert changed_fields(before, after) == {
        "name": {"old": "Ana", "new": "Ana L"},
        "time_zone": {"old": "Europe/Paris", "new": None},
    }


def test_no_changes() -> None:
    record = contact_record(_Contact())
    assert changed_fields(record, dict(record, updated_at="later")) == {}
