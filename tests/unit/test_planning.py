"""Planning one contact: language, placeholders, limits, encoding, WhatsApp templates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from outbound.domain.planning import (
    MAX_BODY_CHARACTERS,
    MAX_REFERENCE_CHARACTERS,
    ContactPlan,
    TemplateTexts,
    plan_contact,
)
from outbound.domain.statuses import MessageStatus

CONFIG_ID = "0f8c1d2e-0000-4000-8000-00000000c0f1"
CHANNEL_ID = "5a1b2c3d-0000-4000-8000-0000000c4a77"
TEXTS = TemplateTexts.of(
    "en-US",
    "Hi {CustomerName}, your case {CaseName} was updated.",
    {"fr-FR": "Bonjour {CustomerName}, dossier {CaseName}.", "de": "Hallo {CustomerName}."},
)
NAMES = {"CustomerName": "Ana", "CaseName": "CAS-01"}


@dataclass(frozen=True)
class Contact:
    """A contact as any caller may give it: planning needs no API model."""

    tocontactid: str = "+33612345678"
    optin: bool = True
    locale: str | int | None = None
    channelid: str | None = None
    contextitems: Mapping[str, object] = field(default_factory=lambda: dict(NAMES))
    sendastemplate: bool = False
    templateparameters: Mapping[str, str] | None = None


def plan(
    contact: Contact | None = None,
    *,
    channel_type: str = "sms",
    texts: TemplateTexts = TEXTS,
    configuration_default_locale: str | None = None,
    **options: Any,
) -> ContactPlan:
    return plan_contact(
        contact or Contact(),
        configuration_id=CONFIG_ID,
        channel_type=channel_type,
        channel_id=CHANNEL_ID,
        configuration_default_locale=configuration_default_locale,
        texts=texts,
        default_region=options.pop("default_region", None),
        **options,
    )


def rejected(result: ContactPlan) -> str:
    assert result.status is MessageStatus.REJECTED
    assert result.reason is not None
    return result.reason


def test_a_queued_sms_is_rendered_in_the_contacts_language() -> None:
    result = plan(
        Contact(
            tocontactid="06 12 34 56 78",
            locale="fr-fr",
            contextitems={**NAMES, "regardingobjectid": " CAS-01 ", "entityrelationshipname": ""},
        ),
        default_region="fr",
    )
    assert result == ContactPlan(
        status=MessageStatus.QUEUED,
        to_number="+33612345678",
        locale="fr-FR",
        body="Bonjour Ana, dossier CAS-01.",
        encoding="GSM-7",
        segments=1,
        regarding_object_id="CAS-01",
    )


@pytest.mark.parametrize(
    ("requested", "configuration_default", "expected"),
    [
        ("fr-CA", None, "fr-FR"),  # the same language in another region
        (1036, None, "fr-FR"),  # a Windows LCID
        ("de-AT", None, "de"),
        ("es-ES", "fr-FR", "fr-FR"),  # no Spanish: the configuration's language
        ("es-ES", "it-IT", "en-US"),  # nor Italian: the template's default text
        (None, None, "en-US"),
        ("  ", "de-DE", "de"),
    ],
)
def test_language_falls_back_from_region_to_configuration_to_template(
    requested: str | int | None, configuration_default: str | None, expected: str
) -> None:
    result = plan(Contact(locale=requested), configuration_default_locale=configuration_default)
    assert (result.status, result.locale) == (MessageStatus.QUEUED, expected)


def test_an_unknown_locale_is_rejected() -> None:
    assert rejected(plan(Contact(locale="xx-nope-123"))) == "invalid_locale"


def test_a_placeholder_without_a_value_is_rejected() -> None:
    result = plan(Contact(contextitems={"CustomerName": "Ana"}))
    assert rejected(result) == "missing_placeholder: CaseName"


def test_references_are_not_placeholder_values() -> None:
    texts = TemplateTexts.of("en-US", "About {regardingobjectid}", {})
    result = plan(Contact(contextitems={"regardingobjectid": "CAS-01"}), texts=texts)
    assert rejected(result) == "missing_placeholder: regardingobjectid"


def test_values_are_formatted_and_inserted_literally() -> None:
    texts = TemplateTexts.of("en-US", "{A} {B} {C}", {})
    result = plan(Contact(contextitems={"A": 3, "B": True, "C": "{A}"}), texts=texts)
    assert result.body == "3 true {A}"


@pytest.mark.parametrize(
    ("tocontactid", "reason"),
    [
        ("   ", "invalid_number: empty"),
        ("hello", "invalid_number: not a phone number"),
        ("06 12 34 56 78", "invalid_number: missing country code"),
        ("+33 6 12", "invalid_number: not a valid number"),
    ],
)
def test_a_number_that_is_not_one_is_rejected(tocontactid: str, reason: str) -> None:
    result = plan(Contact(tocontactid=tocontactid))
    assert rejected(result) == reason
    assert result.to_number is None and result.body is None


def test_a_reference_longer_than_its_column_is_rejected_without_it() -> None:
    long = "x" * (MAX_REFERENCE_CHARACTERS + 1)
    result = plan(Contact(contextitems={**NAMES, "entityrelationshipname": long}))
    assert rejected(result) == (
        f"invalid_context: entityrelationshipname is longer than {MAX_REFERENCE_CHARACTERS} "
        "characters"
    )
    assert result.regarding_object_id is None and result.entity_relationship_name is None


def test_a_contact_naming_another_configuration_is_rejected() -> None:
    same = {**NAMES, "msdyn_ocoutboundconfigurationid": CONFIG_ID.upper()}
    assert plan(Contact(contextitems=same)).status is MessageStatus.QUEUED
    other = {**NAMES, "msdyn_ocoutboundconfigurationid": "another"}
    assert rejected(plan(Contact(contextitems=other))).startswith("configuration_mismatch:")


@pytest.mark.parametrize("channelid", ["sms", " SMS ", CHANNEL_ID.upper()])
def test_a_contact_may_name_the_channel_by_type_or_id(channelid: str) -> None:
    assert plan(Contact(channelid=channelid)).status is MessageStatus.QUEUED


def test_a_contact_naming_another_channel_is_rejected() -> None:
    result = plan(Contact(channelid="whatsapp"))
    assert rejected(result) == "channel_mismatch: the configuration sends by sms"


def test_an_empty_body_is_rejected() -> None:
    texts = TemplateTexts.of("en-US", "{Text}", {})
    assert rejected(plan(Contact(contextitems={"Text": "  "}), texts=texts)) == "empty_body"


def test_the_body_limit_is_the_providers() -> None:
    texts = TemplateTexts.of("en-US", "{Text}", {})
    longest = Contact(contextitems={"Text": "a" * MAX_BODY_CHARACTERS})
    assert plan(longest, texts=texts).status is MessageStatus.QUEUED
    too_long = Contact(contextitems={"Text": "a" * (MAX_BODY_CHARACTERS + 1)})
    assert rejected(plan(too_long, texts=texts)) == (
        f"body_too_long: {MAX_BODY_CHARACTERS + 1} characters (limit {MAX_BODY_CHARACTERS})"
    )
    assert plan(too_long, texts=texts, max_body=2048).status is MessageStatus.QUEUED


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("€" * 80, "GSM-7", 1),  # two septets each
        ("ł" * 70, "UCS-2", 1),
        ("ł" * 71, "UCS-2", 2),
    ],
)
def test_an_sms_gets_its_encoding_and_segments(text: str, encoding: str, segments: int) -> None:
    texts = TemplateTexts.of("en-US", "{Text}", {})
    result = plan(Contact(contextitems={"Text": text}), texts=texts)
    assert (result.encoding, result.segments) == (encoding, segments)


def test_whatsapp_text_has_no_sms_encoding() -> None:
    result = plan(channel_type="whatsapp")
    assert result.status is MessageStatus.QUEUED
    assert (result.encoding, result.segments) == (None, None)


def test_an_approved_template_gets_the_placeholders_in_order() -> None:
    result = plan(Contact(sendastemplate=True, locale="fr-FR"), channel_type="whatsapp")
    assert result.status is MessageStatus.QUEUED
    assert result.body == "Bonjour Ana, dossier CAS-01."
    assert result.template_parameters == {"1": "Ana", "2": "CAS-01"}


def test_an_approved_template_takes_the_parameters_given() -> None:
    contact = Contact(sendastemplate=True, templateparameters={"1": "Bob"})
    result = plan(contact, channel_type="whatsapp")
    assert result.template_parameters == {"1": "Bob"}


def test_parameters_without_context_slugs_render_the_body_by_position() -> None:
    contact = Contact(
        sendastemplate=True,
        locale="fr-FR",
        contextitems={"regardingobjectid": "CAS-01"},
        templateparameters={"1": "Bob", "2": "CAS-02"},
    )
    result = plan(contact, channel_type="whatsapp")
    assert result.status is MessageStatus.QUEUED
    assert result.body == "Bonjour Bob, dossier CAS-02."
    assert result.template_parameters == {"1": "Bob", "2": "CAS-02"}


def test_parameters_win_over_context_and_missing_ones_stay_written() -> None:
    contact = Contact(sendastemplate=True, templateparameters={"2": "CAS-02"})
    assert plan(contact, channel_type="whatsapp").body == "Hi Ana, your case CAS-02 was updated."
    contact = Contact(sendastemplate=True, contextitems={}, templateparameters={"2": "CAS-02"})
    result = plan(contact, channel_type="whatsapp")
    assert (result.status, result.body) == (
        MessageStatus.QUEUED,
        "Hi {CustomerName}, your case CAS-02 was updated.",
    )


def test_parameters_do_not_excuse_a_missing_placeholder_of_free_form_text() -> None:
    contact = Contact(contextitems={}, templateparameters={"1": "Bob", "2": "CAS-02"})
    assert rejected(plan(contact, channel_type="whatsapp")) == "missing_placeholder: CustomerName"


SIDS = TemplateTexts.of(
    "en-US",
    "Hi {CustomerName}.",
    {"fr-FR": "Bonjour {CustomerName}.", "de-DE": "Hallo {CustomerName}."},
    content_sid="HXen",
    content_sids={"fr-FR": "HXfr"},
    version=7,
)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("fr-FR", ("fr-FR", "HXfr", "Bonjour Ana.")),
        ("fr-BE", ("fr-FR", "HXfr", "Bonjour Ana.")),
        ("en-GB", ("en-US", "HXen", "Hi Ana.")),
        # no approved German template: the default's, and so the default's text
        ("de-DE", ("en-US", "HXen", "Hi Ana.")),
        (None, ("en-US", "HXen", "Hi Ana.")),
    ],
)
def test_an_approved_template_is_the_one_of_the_language_sent(
    locale: str | None, expected: tuple[str, str, str]
) -> None:
    result = plan(Contact(sendastemplate=True, locale=locale), channel_type="whatsapp", texts=SIDS)
    assert (result.locale, result.content_sid, result.body) == expected
    assert result.template_version == 7


def test_free_form_text_keeps_its_language_and_has_no_content_sid() -> None:
    result = plan(Contact(locale="de-DE"), channel_type="whatsapp", texts=SIDS)
    assert (result.locale, result.content_sid, result.body) == ("de-DE", None, "Hallo Ana.")


def test_a_localization_without_a_default_content_sid_has_none() -> None:
    texts = TemplateTexts.of(
        "en-US", "Hi.", {"fr-FR": "Salut.", "de": "Hallo."}, content_sids={"fr-FR": "HXfr"}
    )
    result = plan(Contact(sendastemplate=True, locale="de"), channel_type="whatsapp", texts=texts)
    assert (result.locale, result.content_sid) == ("en-US", None)
    result = plan(Contact(sendastemplate=True, locale="fr"), channel_type="whatsapp", texts=texts)
    assert (result.locale, result.content_sid) == ("fr-FR", "HXfr")


def test_a_template_without_content_sids_keeps_the_chosen_language() -> None:
    result = plan(Contact(sendastemplate=True, locale="de"), channel_type="whatsapp")
    assert (result.locale, result.content_sid) == ("de", None)


def test_the_template_fallbacks_choose_the_text() -> None:
    texts = TemplateTexts.of(
        "en-US", "Hi.", {"fr-FR": "Salut.", "fr-CA": "Allo."}, fallbacks={"fr-BE": "fr-CA"}
    )
    assert plan(Contact(locale="fr-BE"), texts=texts).locale == "fr-CA"
    assert plan(Contact(locale="fr-CH"), texts=texts).locale == "fr-FR"


def test_an_approved_template_may_have_an_empty_body() -> None:
    texts = TemplateTexts.of("en-US", "{Text}", {})
    contact = Contact(sendastemplate=True, contextitems={"Text": ""})
    result = plan(contact, channel_type="whatsapp", texts=texts)
    assert (result.status, result.body, result.template_parameters) == (
        MessageStatus.QUEUED,
        "",
        {"1": ""},
    )


def test_approved_templates_need_whatsapp() -> None:
    result = plan(Contact(sendastemplate=True))
    assert rejected(result).startswith("sendastemplate_needs_whatsapp:")


def test_a_contact_without_opt_in_is_skipped_with_its_message_planned() -> None:
    result = plan(Contact(optin=False))
    assert (result.status, result.reason) == (MessageStatus.SKIPPED, "opted_out")
    assert result.body == "Hi Ana, your case CAS-01 was updated."


def test_rejections_win_over_a_missing_opt_in() -> None:
    result = plan(Contact(optin=False, contextitems={}))
    assert rejected(result) == "missing_placeholder: CustomerName"
