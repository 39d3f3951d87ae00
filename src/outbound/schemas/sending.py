"""API models of the send request (``POST /v1/outbound/send``) and its answer."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, StrictBool, field_validator

from outbound.domain.identifiers import GUID_LENGTH, canonical_guid
from outbound.domain.windows import validate_zone
from outbound.schemas.base import ContextValue, InputModel, LocaleValue, OutputModel

__all__ = ["ContactItem", "ContactOutcome", "SendIn", "SendOut"]


class ContactItem(InputModel):
    """One contact of a send request, as Dynamics 365 flows send it."""

    # Texts are kept as written: context values go into the message as they are.
    model_config = ConfigDict(str_strip_whitespace=False)

    tocontactid: str = Field(min_length=1, max_length=100)
    optin: StrictBool
    locale: LocaleValue = None
    channelid: str | None = Field(None, max_length=100)
    contextitems: dict[str, ContextValue] = Field(default_factory=dict)
    sendastemplate: StrictBool = False
    templateparameters: dict[str, str] | None = None
    # Left out of dumps when absent, so that digests of requests without it do not change.
    timezone: str | None = Field(
        None,
        max_length=64,
        exclude_if=lambda value: value is None,
        description="The contact's IANA time zone (Europe/Paris), for the configuration's "
        "contact window; when absent, the number's zone, else the window's time_zone.",
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        text = value.strip() if value is not None else ""
        return validate_zone(text) if text else None


class SendIn(InputModel):
    model_config = ConfigDict(str_strip_whitespace=False)

    configuration_id: str = Field(
        min_length=1,
        max_length=40,
        description="The outbound configuration's id; any case, with or without braces "
        "({6A75E67C-…}), as Dynamics 365 writes GUIDs.",
    )
    contacts: list[ContactItem] = Field(min_length=1)

    @field_validator("configuration_id")
    @classmethod
    def _guid(cls, value: str) -> str:
        # Read as ours (braces, blanks and case set aside) before anything stores it.
        guid = canonical_guid(value)
        if len(guid) > GUID_LENGTH:
            raise ValueError("must be an outbound configuration's id (a GUID)")
        return guid


class ContactOutcome(OutputModel):
    index: int
    status: Literal["queued", "skipped", "rejected"]
    message_id: str
    to: str | None = Field(None, description="The E.164 number, when it could be normalised.")
    locale: str | None = None
    reason: str | None = None
    scheduled_at: datetime | None = Field(
        None,
        description="When a queued message will go out, if later than now: the contact "
        "window opens then (reason outside_contact_window).",
    )


class SendOut(OutputModel):
    request_id: str
    configuration_id: str
    queued: int
    skipped: int
    rejected: int
    results: list[ContactOutcome]
