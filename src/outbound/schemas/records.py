"""API models of the built-in records (contacts, cases), their CSV import, and events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, TypeAlias

from pydantic import Field, StrictBool, StringConstraints

from outbound.domain.cases import CaseStatus
from outbound.schemas.base import ContextValue, InputModel, LocaleValue, OutputModel, Said

__all__ = [
    "MAX_IMPORT_ERRORS",
    "CaseCreate",
    "CaseOut",
    "CaseUpdate",
    "Consent",
    "ConsentIn",
    "ConsentUpdate",
    "ContactCreate",
    "ContactOut",
    "ContactUpdate",
    "EventIn",
    "EventOut",
    "ImportResult",
    "ImportRowError",
]

MAX_IMPORT_ERRORS = 1000
MAX_CUSTOM_FIELDS = 100
EVENT_TYPE_PATTERN = r"^[A-Za-z][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*$"

CustomKey: TypeAlias = Annotated[str, StringConstraints(min_length=1, max_length=100)]
CustomFields: TypeAlias = dict[CustomKey, ContextValue]


# --- Contacts ---------------------------------------------------------------------------


class Consent(OutputModel):
    """Whether the contact agreed to receive messages on each channel."""

    sms: bool = False
    whatsapp: bool = False


class ConsentIn(InputModel):
    sms: StrictBool = False
    whatsapp: StrictBool = False


class ConsentUpdate(InputModel):
    sms: StrictBool | None = None
    whatsapp: StrictBool | None = None


class ContactCreate(InputModel):
    external_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Your system's id for the contact; unique in the organisation.",
    )
    name: str | None = Field(None, min_length=1, max_length=200)
    mobile_phone: str | None = Field(
        None, min_length=1, max_length=64, description="Any format; stored as E.164."
    )
    whatsapp_number: str | None = Field(None, min_length=1, max_length=64)
    preferred_language: LocaleValue = Field(
        None, description="BCP-47 tag (fr-FR) or Windows LCID (1036); stored as BCP-47."
    )
    consent: ConsentIn = Field(default_factory=ConsentIn)
    time_zone: str | None = Field(
        None, min_length=1, max_length=64, description="IANA time zone (Europe/Paris)."
    )
    custom: CustomFields = Field(default_factory=dict, max_length=MAX_CUSTOM_FIELDS)


class ContactUpdate(InputModel):
    """Fields to change; ``null`` clears a field. ``custom`` is merged (``null`` removes a key)."""

    external_id: str | None = Field(None, min_length=1, max_length=200)
    name: str | None = Field(None, min_length=1, max_length=200)
    mobile_phone: str | None = Field(None, min_length=1, max_length=64)
    whatsapp_number: str | None = Field(None, min_length=1, max_length=64)
    preferred_language: LocaleValue = None
    consent: ConsentUpdate | None = None
    time_zone: str | None = Field(None, min_length=1, max_length=64)
    custom: CustomFields | None = Field(None, max_length=MAX_CUSTOM_FIELDS)


class ContactOut(OutputModel):
    id: str
    external_id: str | None
    name: str | None
    mobile_phone: str | None
    whatsapp_number: str | None
    preferred_language: str | None
    consent: Consent
    time_zone: str | None
    custom: dict[str, Any]
    created_at: datetime
    updated_at: datetime


# --- Cases ------------------------------------------------------------------------------


class CaseCreate(InputModel):
    number: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Unique in the organisation; generated (CAS-000001, ...) when absent.",
    )
    title: str = Field(min_length=1, max_length=500)
    contact_id: str | None = Field(
        None, min_length=1, max_length=36, description="The customer: a contact's id."
    )
    status: CaseStatus = CaseStatus.ACTIVE
    custom: CustomFields = Field(default_factory=dict, max_length=MAX_CUSTOM_FIELDS)


class CaseUpdate(InputModel):
    """Fields to change. A status change raises ``case.resolved``, ``case.canceled`` or
    ``case.reactivated`` instead of ``case.updated``."""

    never_null: ClassVar[frozenset[str]] = frozenset({"number", "title", "status"})

    number: str | None = Field(None, min_length=1, max_length=100)
    title: str | None = Field(None, min_length=1, max_length=500)
    contact_id: str | None = Field(None, min_length=1, max_length=36)
    status: CaseStatus | None = None
    custom: CustomFields | None = Field(None, max_length=MAX_CUSTOM_FIELDS)


class CaseOut(OutputModel):
    id: str
    number: str
    title: str
    status: CaseStatus
    contact_id: str | None
    custom: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None


# --- Events -----------------------------------------------------------------------------


class EventIn(InputModel):
    """An event of another system (``order.delayed``) that flows can react to."""

    type: str = Field(
        min_length=1,
        max_length=100,
        pattern=EVENT_TYPE_PATTERN,
        description="Dotted name such as order.delayed; contact.* and case.* are reserved.",
    )
    record: dict[str, Any] = Field(description="The record the event is about (JSON object).")
    record_id: str | None = Field(None, min_length=1, max_length=200)


class EventOut(OutputModel):
    id: str = Field(
        description="evt_ and 26 letters: unique, and telling nothing of other organisations."
    )
    type: str
    record_type: str = Field(description="contact, case, or external.")
    record_id: str | None
    data: dict[str, Any]
    source: str
    occurred_at: datetime
    processed_at: datetime | None


# --- CSV import -------------------------------------------------------------------------


class ImportRowError(OutputModel):
    row: int = Field(
        description="The row's position in the file, the header being row 1: the first data "
        "row is row 2, as a spreadsheet numbers them."
    )
    field: str | None = Field(description="The column at fault, if one is.")
    message: Said


class ImportResult(OutputModel):
    dry_run: bool
    rows: int = Field(description="Data rows read (blank lines are not counted).")
    created: int
    updated: int
    unchanged: int = Field(description="Rows matching a contact that they did not change.")
    failed: int = Field(description="Rows refused; the others were imported.")
    error_count: int = Field(description="Every error found, including those not listed.")
    errors: list[ImportRowError] = Field(
        description=f"The first {MAX_IMPORT_ERRORS} errors, in file order."
    )
    stopped: Said | None = Field(
        None, description="Why the file could not be read to its end, if it could not."
    )


class ErasureIn(InputModel):
    """``POST /v1/erasures``: a phone number to erase everywhere in the organisation."""

    phone_number: str = Field(min_length=1, max_length=64)
