"""Unit tests for outbound.domain.recipients: a record's context as a contact item."""

from __future__ import annotations

import textwrap
from datetime import date
from typing import Any

import pytest

from outbound.domain.flow_documents import parse_flow_document
from outbound.domain.recipients import MappingError, check_expression, render_recipient


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


HEAD = """\
name: n
configuration: c
"""

CONTACT: dict[str, Any] = {
    "name": "Ada Lovelace",
    "mobile_phone": "+33612345678",
    "whatsapp_number": "+33700000000",
    "consent": {"sms": True, "whatsapp": "no"},
    "preferred_language": "fr-FR",
    "time_zone": "Europe/Paris",
}
CASE: dict[str, Any] = {"id": "case-1", "title": "Broken boiler", "number": "CAS-0042"}


def test_render_defaults_for_sms() -> None:
    assert render_recipient({}, {"contact": CONTACT}, "sms") == {
        "tocontactid": "+33612345678",
        "optin": True,
        "locale": "fr-FR",
        "timezone": "Europe/Paris",
        "contextitems": {"CustomerName": "Ada Lovelace"},
    }


def test_render_defaults_for_whatsapp() -> None:
    item = render_recipient({}, {"contact": CONTACT}, "whatsapp")
    assert item["tocontactid"] == "+33700000000"
    assert item["optin"] is False


def test_render_case_defaults() -> None:
    item = render_recipient({}, {"contact": CONTACT, "case": CASE}, "sms")
    assert item["contextitems"] == {
        "CustomerName": "Ada Lovelace",
        "CaseName": "Broken boiler",
        "CaseNumber": "CAS-0042",
        "regardingobjectid": "case-1",
        "entityrelationshipname": "incident_msdyn_ocoutboundmessages",
    }


def test_render_no_case_defaults_when_case_is_none() -> None:
    item = render_recipient({}, {"contact": CONTACT, "case": None}, "sms")
    assert item["contextitems"] == {"CustomerName": "Ada Lovelace"}


def test_render_given_context_items_override_and_remove_defaults() -> None:
    recipient = {"contextitems": {"CustomerName": "{contact.name}!", "CaseNumber": None}}
    item = render_recipient(recipient, {"contact": CONTACT, "case": CASE}, "sms")
    assert item["contextitems"]["CustomerName"] == "Ada Lovelace!"
    assert "CaseNumber" not in item["contextitems"]
    assert item["contextitems"]["CaseName"] == "Broken boiler"


def test_render_exact_placeholder_keeps_the_raw_value() -> None:
    context = {"contact": {**CONTACT, "score": 7, "ratio": 0.25, "vip": False, "nested": {}}}
    recipient = {
        "contextitems": {
            "Score": "{contact.score}",
            "Ratio": "{ contact.ratio }",
            "Vip": "{contact.vip}",
            "Literal": 3,
            "Flag": True,
        }
    }
    items = render_recipient(recipient, context, "sms")["contextitems"]
    assert items["Score"] == 7
    assert items["Ratio"] == 0.25
    assert items["Vip"] is False
    assert items["Literal"] == 3
    assert items["Flag"] is True


def test_render_interpolation_and_escaping() -> None:
    context = {"contact": {**CONTACT, "score": 7, "vip": True, "gone": None}}
    recipient = {
        "contextitems": {
            "Greeting": "Hello {contact.name}, score {contact.score}",
            "Flags": "vip={contact.vip} gone=[{contact.gone}] absent=[{contact.nothing}]",
            "Braces": "{{literal}} {{{contact.score}}}",
            "Plain": "no placeholders",
        }
    }
    items = render_recipient(recipient, context, "sms")["contextitems"]
    assert items["Greeting"] == "Hello Ada Lovelace, score 7"
    assert items["Flags"] == "vip=true gone=[] absent=[]"
    assert items["Braces"] == "{literal} {7}"
    assert items["Plain"] == "no placeholders"


def test_render_drops_empty_context_items() -> None:
    context = {"contact": {**CONTACT, "name": ""}, "case": {"id": None}}
    items = render_recipient({}, context, "sms")["contextitems"]
    assert items == {"entityrelationshipname": "incident_msdyn_ocoutboundmessages"}


def test_render_dates_become_iso_text() -> None:
    context = {"contact": {**CONTACT, "born": date(1815, 12, 10)}}
    items = render_recipient({"contextitems": {"Born": "{contact.born}"}}, context, "sms")
    assert items["contextitems"]["Born"] == "1815-12-10"


def test_render_non_scalar_context_item_is_an_error() -> None:
    with pytest.raises(MappingError) as caught:
        render_recipient({"contextitems": {"C": "{contact.consent}"}}, {"contact": CONTACT}, "sms")
    assert caught.value.field == "contextitems.C"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("Yes", True),
        ("1", True),
        ("y", True),
        ("ON", True),
        (1, True),
        ("false", False),
        ("No", False),
        ("0", False),
        ("n", False),
        ("off", False),
        ("", False),
        ("  ", False),
        (None, False),
        (0, False),
    ],
)
def test_render_optin_coercion(value: Any, expected: bool) -> None:
    context = {"contact": {**CONTACT, "consent": {"sms": value}}}
    assert render_recipient({}, context, "sms")["optin"] is expected


def test_render_optin_missing_is_false() -> None:
    context = {"contact": {"mobile_phone": "+33612345678"}}
    assert render_recipient({}, context, "sms")["optin"] is False


def test_render_optin_literal() -> None:
    context = {"contact": {**CONTACT, "consent": {"sms": False}}}
    assert render_recipient({"optin": True}, context, "sms")["optin"] is True


@pytest.mark.parametrize("value", ["maybe", 2, ["yes"]])
def test_render_optin_that_is_not_yes_or_no(value: Any) -> None:
    context = {"contact": {**CONTACT, "consent": {"sms": value}}}
    with pytest.raises(MappingError) as caught:
        render_recipient({}, context, "sms")
    assert caught.value.field == "optin"
    assert "is not yes or no" in caught.value.message
    assert str(caught.value).startswith("optin: ")


@pytest.mark.parametrize("phone", ["", "  ", None])
def test_render_empty_phone_is_an_error(phone: Any) -> None:
    context = {"contact": {**CONTACT, "mobile_phone": phone}}
    with pytest.raises(MappingError) as caught:
        render_recipient({}, context, "sms")
    assert caught.value.field == "tocontactid"
    assert caught.value.message == "no phone number (contact.mobile_phone is empty)"


def test_render_absent_whatsapp_number_is_an_error() -> None:
    context = {"contact": {"name": "x"}}
    with pytest.raises(MappingError, match=r"contact\.whatsapp_number is empty"):
        render_recipient({}, context, "whatsapp")


def test_render_empty_interpolated_phone_names_the_expression() -> None:
    recipient = {"tocontactid": "{contact.cc}{contact.number}"}
    with pytest.raises(MappingError) as caught:
        render_recipient(recipient, {"contact": {}}, "sms")
    assert caught.value.message == "no phone number ({contact.cc}{contact.number} is empty)"


def test_render_phone_that_is_not_text() -> None:
    context = {"contact": {**CONTACT, "mobile_phone": ["+33612345678"]}}
    with pytest.raises(MappingError, match="is not a phone number"):
        render_recipient({}, context, "sms")


def test_render_numbers_in_phone_are_text() -> None:
    context = {"contact": {**CONTACT, "mobile_phone": 33612345678}}
    assert render_recipient({}, context, "sms")["tocontactid"] == "33612345678"
    assert render_recipient({"tocontactid": 33699999999}, context, "sms")["tocontactid"] == (
        "33699999999"
    )
    recipient = {"tocontactid": "+{contact.cc}{contact.n}"}
    item = render_recipient(recipient, {"contact": {"cc": 33, "n": "612345678"}}, "sms")
    assert item["tocontactid"] == "+33612345678"


def test_render_locale_and_timezone_only_when_not_empty() -> None:
    context = {"contact": {**CONTACT, "preferred_language": "", "time_zone": None}}
    item = render_recipient({}, context, "sms")
    assert "locale" not in item
    assert "timezone" not in item
    context = {"contact": {**CONTACT, "lcid": 1036}}
    item = render_recipient({"locale": "{contact.lcid}"}, context, "sms")
    assert item["locale"] == "1036"


def test_render_template_fields() -> None:
    context = {"contact": {**CONTACT, "visits": 4}}
    recipient = {
        "sendastemplate": True,
        "templateparameters": {"1": "{contact.name}", "2": "{contact.visits}", "3": 9, "4": "{x}"},
    }
    item = render_recipient(recipient, context, "whatsapp")
    assert item["sendastemplate"] is True
    assert item["templateparameters"] == {"1": "Ada Lovelace", "2": "4", "3": "9", "4": ""}
    item = render_recipient({"sendastemplate": False}, context, "whatsapp")
    assert "sendastemplate" not in item
    assert "templateparameters" not in item


def test_render_bad_expression_is_a_mapping_error() -> None:
    with pytest.raises(MappingError) as caught:
        render_recipient({"locale": "{contact.lang"}, {"contact": CONTACT}, "sms")
    assert caught.value.field == "locale"


def test_render_parsed_recipient() -> None:
    definition = parse_flow_document(
        HEAD
        + doc("""
        trigger: {type: automatic, event: case.created}
        recipient:
          optin: "{contact.consent.marketing}"
          contextitems:
            CaseName: "#{case.number}: {case.title}"
          templateparameters: {1: "{contact.name}"}
        """)
    )
    context = {"contact": {**CONTACT, "consent": {"marketing": "yes"}}, "case": CASE}
    item = render_recipient(definition.recipient, context, "sms")
    assert item["optin"] is True
    assert item["contextitems"]["CaseName"] == "#CAS-0042: Broken boiler"
    assert item["templateparameters"] == {"1": "Ada Lovelace"}


@pytest.mark.parametrize("text", ["", "plain", "{contact.name}", "{{x}} {a.b}!", "}}"])
def test_check_expression_accepts(text: str) -> None:
    check_expression(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [("{contact.name", "unclosed '{'"), ("a}b", "unmatched '}'"), ("{a b}", "not a field path")],
)
def test_check_expression_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_expression(text)
