"""API models of the send request (``POST /v1/outbound/send``) and its answer."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from outbound.domain.windows import validate_zone
from outbound.schemas.base import ContextValue, InputModel, LocaleValue, OutputModel

__all__ = [
    "MAX_CONTEXT_VALUE_CHARACTERS",
    "ContactItem",
    "ContactOutcome",
    "SendIn",
    "SendOut",
    "SendWarning",
]

_SURROGATE: Final = re.compile("[\ud800-\udfff]")

# Fields that pages of Microsoft's documentation spelled wrongly, and the field they meant.
_MISSPELLINGS = {"option": "optin"}

MAX_CONTEXT_VALUE_CHARACTERS = 2000
"""The longest text one context item may hold: a template's text is at most 2,000 characters,
so a longer value could only make a message no provider takes."""


def _short_text(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_CONTEXT_VALUE_CHARACTERS:
        raise ValueError(
            f"must be at most {MAX_CONTEXT_VALUE_CHARACTERS} characters (got {len(value)})"
        )
    return value


def _printable(key: Any) -> str:
    """A member's name as a warning may show and store it (short, no control characters)."""
    text = str(key)
    if not text.isprintable() or _SURROGATE.search(text):
        text = ascii(text)[1:-1]
    return text if len(text) <= 100 else text[:99] + "…"


ContextItemValue = Annotated[ContextValue, AfterValidator(_short_text)]


class ContactItem(InputModel):
    """One contact of a send request, as Dynamics 365 flows send it.

    Unknown members (flows send ``contactid`` and extra columns) do not refuse the request: the
    contact is read without them, and :attr:`warnings` says what was ignored. ``option``, which
    Microsoft's pages once wrote for ``optin``, is read as ``optin``, with a warning.
    """

    # Texts are kept as written: context values go into the message as they are.
    model_config = ConfigDict(str_strip_whitespace=False, extra="ignore")
    _warnings: list[tuple[str, str]] = PrivateAttr(default_factory=list)

    tocontactid: str = Field(min_length=1, max_length=100)
    optin: StrictBool
    locale: LocaleValue = None
    channelid: str | None = Field(None, max_length=100)
    contextitems: dict[str, ContextItemValue] = Field(default_factory=dict)
    sendastemplate: StrictBool = False
    templateparameters: dict[str, Annotated[str, AfterValidator(_short_text)]] | None = None
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

    @model_validator(mode="wrap")
    @classmethod
    def _lenient(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if not isinstance(data, dict) or isinstance(data, ContactItem):
            return handler(data)
        known: dict[str, Any] = {}
        warnings: list[tuple[str, str]] = []
        for key, value in data.items():
            meant = _MISSPELLINGS.get(key) if isinstance(key, str) else None
            if key in cls.model_fields:
                known[key] = value
            elif meant is not None and meant not in data:
                known[meant] = value
                warnings.append((str(key), f"read as {meant}"))
            else:
                warnings.append((_printable(key), "unknown field, ignored"))
        item = handler(known)
        if isinstance(item, ContactItem):
            item._warnings = warnings
        return item

    @property
    def warnings(self) -> list[tuple[str, str]]:
        """The members ignored or read as another, with why: ``[("contactid", "...")]``."""
        return list(self._warnings)


class SendIn(InputModel):
    model_config = ConfigDict(str_strip_whitespace=False)

    configuration_id: str = Field(
        min_length=1,
        max_length=40,
        description="The outbound configuration's id; any case, with or without braces "
        "({6A75E67C-…}), as Dynamics 365 writes GUIDs.",
    )
    contacts: list[ContactItem] = Field(min_length=1)


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


class SendWarning(OutputModel):
    index: int = Field(description="The contact's position in contacts.")
    field: str = Field(description="The member, as contacts[3].contactid.")
    message: str


class SendOut(OutputModel):
    request_id: str
    configuration_id: str
    queued: int
    skipped: int
    rejected: int
    results: list[ContactOutcome]
    warnings: list[SendWarning] = Field(
        default_factory=list,
        description="Members of contact items that were ignored (unknown) or read as another "
        "field (option as optin); the contacts were processed all the same.",
    )
