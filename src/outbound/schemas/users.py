"""API models of users and their presence.

Field rules come from :mod:`outbound.domain.users`; a refused value is a 422 naming the field
(``languages[1]``). Passwords are write-only :class:`~pydantic.SecretStr` values, never trimmed,
never shown in a ``repr`` and never returned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, TypeAlias

from pydantic import (
    AfterValidator,
    Field,
    PlainValidator,
    SecretStr,
    StrictBool,
    StrictInt,
    WithJsonSchema,
)

from outbound.domain.users import (
    DEFAULT_CAPACITY,
    MAX_CAPACITY,
    MAX_EMAIL_CHARS,
    MAX_LANGUAGES,
    MAX_PASSWORD_CHARS,
    MAX_SKILL_CHARS,
    MAX_SKILLS,
    MIN_PASSWORD_CHARS,
    PresenceStatus,
    UserRole,
    check_password,
    clean_email,
    clean_language,
    clean_skill,
    unique_languages,
    unique_skills,
)
from outbound.domain.windows import validate_zone
from outbound.schemas.base import InputModel, OutputModel
from outbound.texts import N_

__all__ = [
    "PresenceIn",
    "PresenceOut",
    "UserCreate",
    "UserOut",
    "UserUpdate",
]


def _password(value: Any) -> SecretStr:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        raise ValueError(N_("must be a string"))
    return SecretStr(check_password(value))


Email: TypeAlias = Annotated[
    str,
    AfterValidator(clean_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": MAX_EMAIL_CHARS}),
]
Language: TypeAlias = Annotated[
    str,
    AfterValidator(clean_language),
    WithJsonSchema({"type": "string", "description": "BCP-47 tag (fr, fr-FR)"}),
]
Skill: TypeAlias = Annotated[
    str,
    AfterValidator(clean_skill),
    WithJsonSchema({"type": "string", "maxLength": MAX_SKILL_CHARS}),
]
Languages: TypeAlias = Annotated[
    list[Language], Field(max_length=MAX_LANGUAGES), AfterValidator(unique_languages)
]
Skills: TypeAlias = Annotated[
    list[Skill], Field(max_length=MAX_SKILLS), AfterValidator(unique_skills)
]
Capacity: TypeAlias = Annotated[StrictInt, Field(ge=0, le=MAX_CAPACITY)]
TimeZone: TypeAlias = Annotated[
    str,
    AfterValidator(validate_zone),
    WithJsonSchema({"type": "string", "description": "IANA time zone (Europe/Paris)"}),
]
Password: TypeAlias = Annotated[
    SecretStr,
    PlainValidator(_password),
    WithJsonSchema(
        {
            "type": "string",
            "format": "password",
            "writeOnly": True,
            "minLength": MIN_PASSWORD_CHARS,
            "maxLength": MAX_PASSWORD_CHARS,
        }
    ),
]


class UserCreate(InputModel):
    """A new user. Without a password the user can only use API keys made for them."""

    email: Email = Field(description="Unique in the organisation; stored in lower case.")
    name: str = Field(min_length=1, max_length=200, description="Display name.")
    role: UserRole = UserRole.AGENT
    languages: Languages = Field(
        default_factory=list, description="Languages spoken, BCP-47 (fr-FR, es)."
    )
    skills: Skills = Field(default_factory=list, description="Free labels (billing, VIP).")
    capacity: Capacity = Field(
        DEFAULT_CAPACITY, description="Units of work the user takes at once (0-100)."
    )
    active: StrictBool = True
    time_zone: TimeZone | None = None
    ui_language: Language | None = Field(None, description="Language of the console.")
    password: Password | None = Field(
        None, description=f"Write-only; at least {MIN_PASSWORD_CHARS} characters."
    )


class UserUpdate(InputModel):
    """Fields to change. ``null`` clears ``time_zone``, ``ui_language`` and ``password``;
    the other fields cannot be null."""

    never_null: ClassVar[frozenset[str]] = frozenset(
        {"email", "name", "role", "languages", "skills", "capacity", "active"}
    )

    email: Email | None = None
    name: str | None = Field(None, min_length=1, max_length=200)
    role: UserRole | None = None
    languages: Languages | None = None
    skills: Skills | None = None
    capacity: Capacity | None = None
    active: StrictBool | None = None
    time_zone: TimeZone | None = None
    ui_language: Language | None = None
    password: Password | None = None


class PresenceIn(InputModel):
    status: PresenceStatus


class PresenceOut(OutputModel):
    """A user's presence; ``online`` is whether work can be given to them now."""

    user_id: str
    status: PresenceStatus
    online: bool = Field(
        description="available, active, and seen (any request or a heartbeat) within "
        "OUTBOUND_PRESENCE_TIMEOUT_SECONDS."
    )
    since: datetime | None = Field(description="When the status was last changed.")
    last_seen_at: datetime | None


class UserOut(OutputModel):
    id: str
    email: str
    name: str
    role: UserRole
    languages: list[str]
    skills: list[str]
    capacity: int
    active: bool
    time_zone: str | None
    ui_language: str | None
    has_password: bool
    presence: PresenceOut
    created_at: datetime
    updated_at: datetime
