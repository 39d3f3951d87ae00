"""Roles: what an API key may do in its organisation."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Role"]


class Role(StrEnum):
    """What an API key may do (a key of a user acts as that user too)."""

    ADMIN = "admin"
    SENDER = "sender"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
