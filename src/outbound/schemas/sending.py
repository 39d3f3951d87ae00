"""API models of the send request (``POST /v1/outbound/send``) and its answer."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from outbound.domain.identifiers import GUID_LENGTH, canonical_guid
from outbound.domain.windows import validate_zone
from outbound.schemas.base import (
    InputModel,
    LocaleValue,
    OutputModel,
    Said,
    context_value_checks,
)
from outbound.texts import N_

__all__ = [
    "MAX_CONTEXT_VALUE_CHARACTERS",
    "ContactItem",
    "ContactOutcome",
    "SendIn",
    "SendOut",
    "SendWarning",
]

_SURROGATE: Final = re.compile("[\ud800-\udfff]")

# Members that pages of Microsoft's documentation spelled wrongly, and the field they meant.
_MISSPELLINGS: Final = {"option": "optin"}

MAX_CONTEXT_VALUE_CHARACTERS = 2000
"""The longest text one context item (or template parameter) may hold: a template's text is at
most 2,000 characters, so a longer value could only make a message no provider takes."""

_CHECKS: Final = context_value_checks(MAX_CONTEXT_VALUE_CHARACTERS)
ContextItemValue: TypeAlias = Annotated[str | int | float | bool | None, _CHECKS[0], _CHECKS[1]]


class ContactItem(InputModel):
    """One contact of a send request, as Dynamics 365 flows send it."""

    # Texts are kept as written: context values go into the message as they are.
    model_config = ConfigDict(str_strip_whitespace=False)

    tocontactid: str = Field(min_length=1, max_length=100)
    optin: StrictBool
    locale: LocaleValue = None
    channelid: str | None = Field(None, max_length=100)
    contextitems: dict[str, ContextItemValue] = Field(default_factory=dict)
    sendastemplate: StrictBool = False
    templateparameters: (
        dict[str, Annotated[str, Field(max_length=MAX_CONTEXT_VALUE_CHARACTERS)]] | None
    ) = None
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


_CONTACT_FIELDS: Final = frozenset(ContactItem.model_fields)


def _printable(key: Any) -> str:
    """A member's name as a warning may show and store it (short, no control characters)."""
    text = str(key)
    if not text.isprintable() or _SURROGATE.search(text):
        text = ascii(text)[1:-1]
    return text if len(text) <= 100 else text[:99] + "…"


def _known_members(item: dict[Any, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A contact item without the members it does not have, and a warning for each."""
    known: dict[str, Any] = {}
    warnings: list[tuple[str, str]] = []
    for key, value in item.items():
        meant = _MISSPELLINGS.get(key) if isinstance(key, str) else None
        if key in _CONTACT_FIELDS:
            known[key] = value
        elif meant is not None and meant not in item:
            known[meant] = value
            warnings.append((key, N_("read as %(field)s", field=meant)))
        else:
            warnings.append((_printable(key), N_("unknown field, ignored")))
    return known, warnings


class SendIn(InputModel):
    """A send request.

    Members a contact item does not have (flows send ``contactid`` and extra columns) do not
    refuse the request: the contact is read without them, and :attr:`warnings` lists each.
    ``option``, which Microsoft's pages once wrote for ``optin``, is read as ``optin``, with a
    warning. Unknown members of the request itself are refused.
    """

    model_config = ConfigDict(str_strip_whitespace=False)
    _warnings: list[tuple[int, str, str]] = PrivateAttr(default_factory=list)

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
            raise ValueError(N_("must be an outbound configuration's id (a GUID)"))
        return guid

    @model_validator(mode="wrap")
    @classmethod
    def _lenient_contacts(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        contacts = data.get("contacts") if isinstance(data, dict) else None
        if not isinstance(contacts, list):
            return handler(data)
        warnings: list[tuple[int, str, str]] = []
        cleaned: list[Any] | None = None
        for index, item in enumerate(contacts):
            # The usual contact has only known members: one set comparison.
            if isinstance(item, dict) and not item.keys() <= _CONTACT_FIELDS:
                known, found = _known_members(item)
                warnings.extend((index, key, message) for key, message in found)
                if cleaned is None:
                    cleaned = list(contacts)
                cleaned[index] = known
        if cleaned is None:
            return handler(data)
        request = handler({**data, "contacts": cleaned})
        if isinstance(request, SendIn):
            request._warnings = warnings
        return request

    @property
    def warnings(self) -> list[tuple[int, str, str]]:
        """``(index, member, why)`` of each member of a contact ignored or read as another."""
        return list(self._warnings)


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
    message: Said


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
