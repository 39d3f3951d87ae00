"""Cases: a customer's support cases, as the service keeps them."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CaseStatus"]


class CaseStatus(StrEnum):
    """Where a case stands; each change raises an event, such as case.resolved."""

    ACTIVE = "active"
    RESOLVED = "resolved"
    CANCELED = "canceled"
