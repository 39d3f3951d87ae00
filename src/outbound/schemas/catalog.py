"""API models of the catalog: API keys, channels, templates and outbound configurations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeAlias

from pydantic import (
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from outbound.domain.channels import ChannelType, ProviderName
from outbound.domain.conversations import ConversationMode
from outbound.domain.roles import Role
from outbound.domain.windows import (
    MAX_CAP_COUNT,
    MAX_CAP_PERIOD_SECONDS,
    format_clock,
    parse_clock,
    parse_period,
    validate_zone,
)
from outbound.schemas.base import ContextValue, InputModel, LocaleValue, OutputModel, Said
from outbound.texts import N_

__all__ = [
    "DEFAULT_TEXT_LIMIT",
    "LOCALIZED_TEXT_LIMIT",
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyOut",
    "ChannelCreate",
    "ChannelOut",
    "ChannelUpdate",
    "ConfigurationCreate",
    "ConfigurationOut",
    "ConfigurationUpdate",
    "ContactWindowSpec",
    "FrequencyCapSpec",
    "LocaleChoice",
    "NamedRef",
    "PreviewIn",
    "PreviewOut",
    "TemplateChangeOut",
    "TemplateCreate",
    "TemplateOut",
    "TemplateUpdate",
    "TemplateVersionOut",
    "TemplateWarning",
]

DEFAULT_TEXT_LIMIT = 2000
LOCALIZED_TEXT_LIMIT = 1000


# --- API keys ---------------------------------------------------------------------------


class ApiKeyCreate(InputModel):
    role: Role
    name: str = Field("api key", min_length=1, max_length=200)
    user_id: str | None = Field(
        None,
        min_length=1,
        max_length=36,
        description="The user the key acts as; its role may not be above the user's.",
    )


class ApiKeyCreated(OutputModel):
    id: str
    org_id: str
    name: str
    role: Role
    user_id: str | None
    prefix: str = Field(description="The key's first characters, to recognise it by.")
    key: str = Field(description="The secret; shown once, only its hash is stored.")
    created_at: datetime


class ApiKeyOut(OutputModel):
    """A key as listed: never its secret, only its first characters."""

    id: str
    prefix: str
    name: str
    role: Role
    user_id: str | None
    created_at: datetime
    last_used_at: datetime | None = Field(
        description="When the key was last used, to the minute (it is not written on every "
        "request)."
    )
    revoked_at: datetime | None


# --- Channels ---------------------------------------------------------------------------


class ChannelCreate(InputModel):
    name: str = Field(min_length=1, max_length=200)
    type: ChannelType
    provider: ProviderName
    sender: str = Field(min_length=1, max_length=64, description="Sender number or ID.")
    base_url: str | None = Field(None, max_length=500, pattern=r"^https?://")
    credentials: dict[str, str] = Field(default_factory=dict, description="Write-only.")
    options: dict[str, Any] = Field(default_factory=dict)
    rate_per_second: float | None = Field(
        None,
        gt=0,
        le=10_000,
        description="Most sends per second for this sender (e.g. 1 for a US long code), "
        "shared by every worker.",
    )


class ChannelUpdate(InputModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    sender: str | None = Field(None, min_length=1, max_length=64)
    base_url: str | None = Field(None, max_length=500, pattern=r"^https?://")
    credentials: dict[str, str] | None = None
    options: dict[str, Any] | None = None
    rate_per_second: float | None = Field(None, gt=0, le=10_000)


class ChannelOut(OutputModel):
    id: str
    name: str
    type: ChannelType
    provider: ProviderName
    sender: str
    base_url: str | None
    has_credentials: bool
    credential_fields: list[str]
    options: dict[str, Any]
    rate_per_second: float | None
    healthy: bool
    health_detail: str | None
    webhook_url: str = Field(
        description="Where the provider must send delivery reports and inbound messages."
    )
    created_at: datetime
    updated_at: datetime


# --- Templates --------------------------------------------------------------------------


class TemplateCreate(InputModel):
    name: str = Field(min_length=1, max_length=200)
    channel_type: ChannelType
    default_locale: str = Field(min_length=1, max_length=35)
    default_text: str = Field(min_length=1, max_length=DEFAULT_TEXT_LIMIT)
    localizations: dict[str, str] = Field(default_factory=dict)
    content_sid: str | None = Field(
        None, max_length=64, description="WhatsApp: the provider's approved template reference."
    )
    content_sids: dict[str, str] = Field(
        default_factory=dict,
        description="WhatsApp: the approved template of each localization, by its locale.",
    )
    fallbacks: dict[str, str] = Field(
        default_factory=dict,
        description="The template's own language fallbacks: locale -> locale with a text.",
    )


class TemplateUpdate(InputModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    default_locale: str | None = Field(None, min_length=1, max_length=35)
    default_text: str | None = Field(None, min_length=1, max_length=DEFAULT_TEXT_LIMIT)
    localizations: dict[str, str] | None = None
    content_sid: str | None = Field(None, max_length=64)
    content_sids: dict[str, str] | None = None
    fallbacks: dict[str, str] | None = None


class TemplateOut(OutputModel):
    id: str
    name: str
    channel_type: ChannelType
    default_locale: str
    default_text: str
    localizations: dict[str, str]
    placeholders: list[str]
    content_sid: str | None
    content_sids: dict[str, str]
    fallbacks: dict[str, str]
    version: int
    created_at: datetime
    updated_at: datetime


class NamedRef(OutputModel):
    id: str
    name: str


class TemplateWarning(OutputModel):
    """Something a change does to those who send with the template."""

    code: str
    message: Said
    placeholders: list[str]
    configurations: list[NamedRef]
    flows: list[NamedRef]


class TemplateChangeOut(TemplateOut):
    """The template after a change (or as it would be, on a dry run), and its warnings."""

    dry_run: bool = False
    warnings: list[TemplateWarning] = Field(default_factory=list)


class TemplateVersionOut(OutputModel):
    version: int
    name: str
    default_locale: str
    default_text: str
    localizations: dict[str, str]
    placeholders: list[str]
    content_sid: str | None
    content_sids: dict[str, str]
    fallbacks: dict[str, str]
    created_by_key_id: str | None
    created_by_user_id: str | None
    created_at: datetime


class PreviewIn(InputModel):
    locale: LocaleValue = None
    values: dict[str, ContextValue] = Field(default_factory=dict)
    locales: list[str | int] = Field(
        default_factory=list,
        max_length=100,
        description="Locales to show the chosen text of (default: the template's own).",
    )


class LocaleChoice(OutputModel):
    """The text a contact of ``requested`` would get, and how it was chosen."""

    requested: str
    locale: str
    match: str


class PreviewOut(OutputModel):
    locale: str
    match: str
    text: str
    encoding: str
    segments: int
    characters: int
    units: int
    choices: list[LocaleChoice]


# --- Outbound configurations ------------------------------------------------------------


class ContactWindowSpec(InputModel):
    """When a configuration's messages may reach a contact: a daily span of local time.

    A message accepted outside the window is queued for the moment the window next opens.
    """

    start: str = Field(
        description="Opening time, HH:MM on a 24-hour clock, in the contact's time zone.",
        examples=["08:00"],
    )
    end: str = Field(
        description="Closing time, HH:MM; earlier than start for a window crossing midnight.",
        examples=["20:00"],
    )
    days: list[Annotated[StrictInt, Field(ge=1, le=7)]] | None = Field(
        None,
        min_length=1,
        description="ISO weekdays the window opens on (1 = Monday … 7 = Sunday); null for "
        "every day. A window crossing midnight belongs to the day it opens.",
        examples=[[1, 2, 3, 4, 5]],
    )
    time_zone: str | None = Field(
        None,
        max_length=64,
        description="IANA time zone used when the contact's is unknown (a contact item's "
        "timezone, else its number's zone when the number has only one); UTC when null.",
        examples=["Europe/Paris"],
    )

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str, info: ValidationInfo) -> str:
        text = format_clock(parse_clock(value))
        if info.field_name == "end" and info.data.get("start") == text:
            raise ValueError(N_("must differ from start (a window of no length never opens)"))
        return text

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[int] | None) -> list[int] | None:
        return None if value is None else sorted(set(value))

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else validate_zone(value)


CapPeriod: TypeAlias = Annotated[
    int,
    BeforeValidator(parse_period),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": MAX_CAP_PERIOD_SECONDS},
                {"type": "string", "pattern": r"^\s*(\d+|(\d+\s*[wdhmsWDHMS]\s*)+)$"},
            ],
            "examples": ["24h", 86400],
        },
        mode="validation",
    ),
]


class FrequencyCapSpec(InputModel):
    """At most ``count`` messages of a configuration to one contact per rolling period.

    Messages over the cap are recorded as skipped (reason ``frequency_cap``).
    """

    count: StrictInt = Field(ge=1, le=MAX_CAP_COUNT, examples=[3])
    period: CapPeriod = Field(
        description="The period in seconds, or as a duration such as 90m, 24h, 7d or 1w; "
        "always answered in seconds.",
    )


class ConfigurationCreate(InputModel):
    name: str = Field(min_length=1, max_length=200)
    show_in_timeline: StrictBool = False
    channel_type: ChannelType
    channel_id: str = Field(min_length=1, max_length=36)
    template_id: str = Field(min_length=1, max_length=36)
    default_locale: str | None = Field(None, min_length=1, max_length=35)
    conversation_mode: ConversationMode = ConversationMode.ON_RESPONSE
    fallback_channel_id: str | None = Field(
        None,
        min_length=1,
        max_length=36,
        description="A channel of the same type on another provider, used when this one fails.",
    )
    active: StrictBool = True
    contact_window: ContactWindowSpec | None = Field(
        None, description="When messages may reach a contact; null to send at any time."
    )
    frequency_cap: FrequencyCapSpec | None = Field(
        None, description="How many messages one contact may get per period; null for no cap."
    )
    allow_duplicate_numbers: StrictBool = Field(
        False,
        description="Send one message per contact when a request names the same number more "
        "than once; by default the first is sent and the others are skipped "
        "(duplicate_in_request).",
    )


class ConfigurationUpdate(InputModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    show_in_timeline: StrictBool | None = None
    channel_id: str | None = Field(None, min_length=1, max_length=36)
    template_id: str | None = Field(None, min_length=1, max_length=36)
    default_locale: str | None = Field(None, min_length=1, max_length=35)
    conversation_mode: ConversationMode | None = None
    fallback_channel_id: str | None = Field(None, min_length=1, max_length=36)
    active: StrictBool | None = None
    contact_window: ContactWindowSpec | None = Field(
        None, description="Replaces the whole window when given; null removes it."
    )
    frequency_cap: FrequencyCapSpec | None = Field(
        None, description="Replaces the cap when given; null removes it."
    )
    allow_duplicate_numbers: StrictBool | None = None


class ConfigurationOut(OutputModel):
    id: str
    name: str
    show_in_timeline: bool
    channel_type: ChannelType
    channel_id: str
    template_id: str
    default_locale: str | None
    conversation_mode: ConversationMode
    fallback_channel_id: str | None
    active: bool
    contact_window: ContactWindowSpec | None = None
    frequency_cap: FrequencyCapSpec | None = None
    allow_duplicate_numbers: bool = False
    created_at: datetime
    updated_at: datetime
