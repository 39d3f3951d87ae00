"""Contacts, cases and events of an organisation, as the one service the API and the command
line call.

Each concept has its own module: contacts and their CSV import in
:mod:`outbound.services.contacts`, cases in :mod:`outbound.services.cases`, events (and what
writing a record and its event in one transaction means) in :mod:`outbound.services.events`.
"""

from __future__ import annotations

from outbound.adapters.db.engine import Database
from outbound.clock import Clock
from outbound.config import DEFAULT_REGION
from outbound.services.cases import CaseService
from outbound.services.contacts import ContactService
from outbound.services.events import EventService

__all__ = ["RecordService"]


class RecordService(ContactService, CaseService, EventService):
    """Contacts, cases and events: CRUD, CSV import of contacts, and external events."""

    def __init__(self, db: Database, clock: Clock, *, default_region: str = DEFAULT_REGION) -> None:
        super().__init__(db, clock, default_region=default_region)
