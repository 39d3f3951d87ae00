"""Planning one contact of a send request: what its message says, to whom, or why not.

Pure: no I/O, no clock. The send service plans every contact of a request with
:func:`plan_contact`, then applies the rules that need the database (consent, the WhatsApp
window, frequency caps, contact windows) to the plans.

A contact is rejected, with a reason, when its number is not a phone number, a reference is
too long, it names another configuration or channel, its locale is unknown, a placeholder has
no value, its text is empty or too long for the provider, or it asks for an approved template
on a channel other than WhatsApp. The text is the contact's language, else the same language
in another region, else the configuration's default language, else the template's default
text (:func:`~outbound.domain.locales.choose_text`). An SMS gets its encoding and segment
count; an approved WhatsApp template gets its positional parameters. A contact without opt-in
is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from outbound.domain.encoding import sms_info
from outbound.domain.identifiers import canonical_guid
from outbound.domain.locales import LocalizedText, choose_text, normalize_locale
from outbound.domain.numbers import normalize_number
from outbound.domain.statuses import MessageStatus
from outbound.domain.templates import ParsedTemplate, parse_template, render
from outbound.errors import InvalidLocaleError, InvalidNumberError, MissingPlaceholderError
from outbound.texts import N_

__all__ = [
    "CONTEXT_KEYS",
    "MAX_BODY_CHARACTERS",
    "MAX_REFERENCE_CHARACTERS",
    "ContactPlan",
    "ContactRequest",
    "TemplateTexts",
    "plan_contact",
]

# Context items that are not placeholder values.
CONTEXT_KEYS = frozenset(
    {"regardingobjectid", "entityrelationshipname", "msdyn_ocoutboundconfigurationid"}
)
# What one concatenated SMS or WhatsApp message can carry at most (each provider has its own).
MAX_BODY_CHARACTERS = 1600
# The columns holding regardingobjectid and entityrelationshipname.
MAX_REFERENCE_CHARACTERS = 200


class ContactRequest(Protocol):
    """One contact as a send request gives it (the API's ``ContactItem`` is one)."""

    @property
    def tocontactid(self) -> str: ...
    @property
    def optin(self) -> bool: ...
    @property
    def locale(self) -> str | int | None: ...
    @property
    def channelid(self) -> str | None: ...
    @property
    def contextitems(self) -> Mapping[str, object]: ...
    @property
    def sendastemplate(self) -> bool: ...
    @property
    def templateparameters(self) -> Mapping[str, str] | None: ...


@dataclass(frozen=True)
class TemplateTexts:
    """A template's texts (one version of them), parsed once per request."""

    default_locale: str
    default_text: str
    localizations: Mapping[str, str]
    parsed: Mapping[str, ParsedTemplate]
    fallbacks: Mapping[str, str] = field(default_factory=dict)
    # WhatsApp: the approved template of the default locale, and of each localization.
    content_sid: str | None = None
    content_sids: Mapping[str, str] = field(default_factory=dict)
    version: int | None = None

    @classmethod
    def of(
        cls,
        default_locale: str,
        default_text: str,
        localizations: Mapping[str, str],
        *,
        fallbacks: Mapping[str, str] | None = None,
        content_sid: str | None = None,
        content_sids: Mapping[str, str] | None = None,
        version: int | None = None,
    ) -> TemplateTexts:
        texts = {default_text, *localizations.values()}
        return cls(
            default_locale=default_locale,
            default_text=default_text,
            localizations=dict(localizations),
            parsed={t: parse_template(t) for t in texts},
            fallbacks=dict(fallbacks or {}),
            content_sid=content_sid,
            content_sids=dict(content_sids or {}),
            version=version,
        )

    def approved(self, chosen: LocalizedText) -> tuple[LocalizedText, str | None]:
        """The text and approved template (Content SID) to send as a WhatsApp template.

        Twilio's content templates have one language each: the chosen language's own
        approved template when it has one, else the default locale's, and then the default
        text, which is what the customer reads. A template without any keeps its choice.
        """
        if not self.content_sid and not self.content_sids:
            return chosen, None
        if chosen.locale == self.default_locale:
            return chosen, self.content_sid
        sid = self.content_sids.get(chosen.locale)
        if sid:
            return chosen, sid
        return (
            LocalizedText(self.default_locale, self.default_text, "template_default"),
            self.content_sid,
        )


@dataclass
class ContactPlan:
    """What becomes of one contact: the message row's content and its first status."""

    status: MessageStatus
    reason: str | None = None
    to_number: str | None = None
    locale: str | None = None
    body: str | None = None
    encoding: str | None = None
    segments: int | None = None
    template_parameters: dict[str, str] | None = None
    # WhatsApp sent as an approved template: the one of the language sent (Content SID).
    content_sid: str | None = None
    template_version: int | None = None
    regarding_object_id: str | None = None
    entity_relationship_name: str | None = None
    # Later than now when the contact window is closed: the message waits for it to open.
    scheduled_at: datetime | None = None
    # The contact's zone, when a contact window applies (checked again before sending).
    time_zone: str | None = None


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def plan_contact(
    contact: ContactRequest,
    *,
    configuration_id: str,
    channel_type: str,
    channel_id: str,
    configuration_default_locale: str | None,
    texts: TemplateTexts,
    default_region: str | None,
    max_body: int = MAX_BODY_CHARACTERS,
) -> ContactPlan:
    """Decide the outcome of one contact. Pure: no I/O, no clock."""
    context = contact.contextitems
    plan = ContactPlan(
        status=MessageStatus.QUEUED,
        regarding_object_id=_text(context.get("regardingobjectid")),
        entity_relationship_name=_text(context.get("entityrelationshipname")),
    )
    try:
        plan.to_number = normalize_number(contact.tocontactid, default_region)
    except InvalidNumberError as exc:
        plan.status, plan.reason = MessageStatus.REJECTED, exc.reason
        return plan
    for key, value in (
        ("regardingobjectid", plan.regarding_object_id),
        ("entityrelationshipname", plan.entity_relationship_name),
    ):
        if value is not None and len(value) > MAX_REFERENCE_CHARACTERS:
            plan.status = MessageStatus.REJECTED
            plan.reason = N_(
                "invalid_context: %(key)s is longer than %(limit)s characters",
                key=key,
                limit=MAX_REFERENCE_CHARACTERS,
            )
            plan.regarding_object_id = plan.entity_relationship_name = None
            return plan
    named_config = _text(context.get("msdyn_ocoutboundconfigurationid"))
    if named_config is not None and canonical_guid(named_config) != canonical_guid(
        configuration_id
    ):
        plan.status = MessageStatus.REJECTED
        plan.reason = N_("configuration_mismatch: msdyn_ocoutboundconfigurationid names another")
        return plan
    if contact.channelid is not None and contact.channelid.strip().lower() not in {
        channel_type,
        channel_id.lower(),
    }:
        plan.status = MessageStatus.REJECTED
        plan.reason = N_(
            "channel_mismatch: the configuration sends by %(channel)s", channel=channel_type
        )
        return plan
    requested: str | None = None
    if contact.locale is not None and str(contact.locale).strip():
        try:
            requested = normalize_locale(contact.locale)
        except InvalidLocaleError:
            plan.status, plan.reason = MessageStatus.REJECTED, "invalid_locale"
            return plan
    chosen = choose_text(
        requested=requested,
        localizations=texts.localizations,
        template_default_locale=texts.default_locale,
        template_default_text=texts.default_text,
        configuration_default_locale=configuration_default_locale,
        fallbacks=texts.fallbacks,
    )
    approved_template = contact.sendastemplate and channel_type == "whatsapp"
    if approved_template:
        chosen, plan.content_sid = texts.approved(chosen)
    plan.locale = chosen.locale
    plan.template_version = texts.version
    template = texts.parsed.get(chosen.text) or parse_template(chosen.text)
    values = {k: v for k, v in context.items() if k.lower() not in CONTEXT_KEYS}
    parameters = contact.templateparameters if approved_template else None
    try:
        if parameters is not None:
            # The approved template's variables are what the customer reads: the stored body
            # puts each one where its position's placeholder is (the chosen text's
            # placeholders in order of first appearance, as when they are derived from the
            # context). A placeholder without a parameter takes its context value, or stays
            # written as it is; the contact is never rejected for it.
            by_position = {
                key: parameters[str(i)]
                for i, key in enumerate(template.placeholders, 1)
                if parameters.get(str(i)) is not None
            }
            plan.body = render(template, {**values, **by_position}, keep_missing=True)
        else:
            plan.body = render(template, values)
    except MissingPlaceholderError as exc:
        plan.status, plan.reason = MessageStatus.REJECTED, f"missing_placeholder: {exc.key}"
        return plan
    if not plan.body.strip() and not contact.sendastemplate:
        plan.status, plan.reason = MessageStatus.REJECTED, "empty_body"
        return plan
    if len(plan.body) > max_body:
        plan.status = MessageStatus.REJECTED
        plan.reason = N_(
            "body_too_long: %(length)s characters (limit %(limit)s)",
            length=len(plan.body),
            limit=max_body,
        )
        return plan
    if contact.sendastemplate and channel_type != "whatsapp":
        plan.status = MessageStatus.REJECTED
        plan.reason = N_("sendastemplate_needs_whatsapp: approved templates are a WhatsApp feature")
        return plan
    if channel_type == "sms":
        # Encoding and segments are SMS notions; WhatsApp carries text as it is.
        info = sms_info(plan.body)
        plan.encoding, plan.segments = info.encoding.value, info.segments
    if contact.sendastemplate:
        if contact.templateparameters is not None:
            plan.template_parameters = dict(contact.templateparameters)
        else:
            # Positional variables of the approved template follow the placeholders' order.
            # Each value is resolved and formatted exactly as in the rendered text.
            plan.template_parameters = {
                str(i): render(parse_template("{" + key + "}"), values)
                for i, key in enumerate(template.placeholders, 1)
            }
    if not contact.optin:
        plan.status, plan.reason = MessageStatus.SKIPPED, "opted_out"
    return plan
