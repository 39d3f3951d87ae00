"""The people of an organisation: their roles, presence statuses and the rules of their fields.

A user is someone who works in the service (an admin, a supervisor or an agent), unlike a
contact, who receives messages. The rules here are shared by the API and the command line;
each raises :class:`ValueError` with a message that never quotes the value (an e-mail address
is personal data and ends up in logs).

Roles are ordered: a user's API keys may not have a role above the user's own
(:func:`key_roles_for`); ``sender`` (a key for integrations) is only for admins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

from outbound.domain.locales import normalize_locale
from outbound.errors import InvalidLocaleError
from outbound.texts import N_

__all__ = [
    "DEFAULT_CAPACITY",
    "MAX_CAPACITY",
    "MAX_EMAIL_CHARS",
    "MAX_LANGUAGES",
    "MAX_PASSWORD_CHARS",
    "MAX_SKILLS",
    "MAX_SKILL_CHARS",
    "MIN_PASSWORD_CHARS",
    "PresenceStatus",
    "UserRole",
    "check_password",
    "clean_email",
    "clean_language",
    "clean_skill",
    "key_roles_for",
    "skill_key",
    "unique_languages",
    "unique_skills",
]

DEFAULT_CAPACITY = 3
MAX_CAPACITY = 100
MAX_EMAIL_CHARS = 254
MAX_LANGUAGES = 20
MAX_SKILLS = 50
MAX_SKILL_CHARS = 100
MIN_PASSWORD_CHARS = 10
# Argon2 takes any length; the bound only keeps a request from making the hash expensive.
MAX_PASSWORD_CHARS = 1024


class UserRole(StrEnum):
    """What a user may do: admins manage the organisation, supervisors oversee agents."""

    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"


class PresenceStatus(StrEnum):
    """What a user says they are doing; only ``available`` users can be given work."""

    AVAILABLE = "available"
    BUSY = "busy"
    DND = "dnd"
    AWAY = "away"
    OFFLINE = "offline"


_KEY_ROLES: dict[UserRole, frozenset[str]] = {
    UserRole.ADMIN: frozenset({"admin", "sender", "supervisor", "agent"}),
    UserRole.SUPERVISOR: frozenset({"supervisor", "agent"}),
    UserRole.AGENT: frozenset({"agent"}),
}


def key_roles_for(role: UserRole | str) -> frozenset[str]:
    """The roles an API key of a user with ``role`` may have (never more than the user's)."""
    return _KEY_ROLES[UserRole(role)]


# --- e-mail addresses ---------------------------------------------------------------------

_LOCAL_CHARS = re.compile(r"[^\s@\"(),:;<>\[\]\\]+")
_LABEL = re.compile(r"[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?")


def clean_email(value: str) -> str:
    """``value`` as a stored e-mail address: trimmed and in lower case.

    Addresses compare without regard to case (nobody relies on a case-sensitive mailbox), so
    they are stored in lower case and unique per organisation in that form. The check is the
    practical one of sign-up forms: ``local@domain.tld``, no spaces or quoting, a domain of
    at least two labels with a top-level one that is not all digits.
    """
    text = value.strip().lower()
    if not text:
        raise ValueError(N_("must not be empty"))
    if len(text) > MAX_EMAIL_CHARS:
        raise ValueError(
            N_("must be at most %(max_length)s characters", max_length=MAX_EMAIL_CHARS)
        )
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(N_("must be an e-mail address such as user@example.org"))
    if len(local) > 64 or not _LOCAL_CHARS.fullmatch(local):
        raise ValueError(N_("the part before @ is not valid in an e-mail address"))
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise ValueError(N_("the part before @ is not valid in an e-mail address"))
    labels = domain.split(".")
    if (
        len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValueError(N_("the domain is not valid in an e-mail address (example.org)"))
    return text


# --- languages and skills -----------------------------------------------------------------


def clean_language(value: str) -> str:
    """``value`` as a canonical BCP-47 tag (``FR_fr`` → ``fr-FR``, ``es`` stays ``es``)."""
    try:
        return normalize_locale(value)
    except InvalidLocaleError:
        raise ValueError(N_("must be a BCP-47 language tag such as fr, fr-FR or zh-Hant")) from None


def unique_languages(tags: Iterable[str]) -> list[str]:
    """Canonical tags without repeats, in the order first given."""
    return list(dict.fromkeys(tags))


def clean_skill(value: str) -> str:
    """A skill label: trimmed, inner runs of spaces made one; :class:`ValueError` if empty."""
    text = " ".join(value.split())
    if not text:
        raise ValueError(N_("must not be empty"))
    if len(text) > MAX_SKILL_CHARS:
        raise ValueError(
            N_("must be at most %(max_length)s characters", max_length=MAX_SKILL_CHARS)
        )
    return text


def skill_key(label: str) -> str:
    """What two skill labels are compared by: ``Billing`` and ``billing`` are one skill."""
    return " ".join(label.split()).casefold()


def unique_skills(labels: Iterable[str]) -> list[str]:
    """Skills without repeats (compared by :func:`skill_key`), first spelling kept, in order."""
    seen: dict[str, str] = {}
    for label in labels:
        seen.setdefault(skill_key(label), label)
    return list(seen.values())


# --- passwords ----------------------------------------------------------------------------


def check_password(value: str) -> str:
    """``value`` unchanged if it is acceptable as a password (length only: a long phrase
    beats composition rules); :class:`ValueError` otherwise. Never trimmed."""
    if len(value) < MIN_PASSWORD_CHARS:
        raise ValueError(
            N_("must be at least %(min_length)s characters", min_length=MIN_PASSWORD_CHARS)
        )
    if len(value) > MAX_PASSWORD_CHARS:
        raise ValueError(
            N_("must be at most %(max_length)s characters", max_length=MAX_PASSWORD_CHARS)
        )
    return value
