"""Contacts: create, read, list, change and delete them, and import them from CSV.

Each change and its event (``contact.created``, ``contact.updated``, ``contact.deleted``) are
written in one transaction (:class:`~outbound.services.events.RecordWriter`). The field rules
are in :mod:`outbound.domain.contacts`, the CSV import in
:mod:`outbound.services.contact_import`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Case, Contact, Message, new_id
from outbound.adapters.queue.outbox import Outbox
from outbound.clock import Clock
from outbound.config import DEFAULT_REGION
from outbound.domain.contacts import (
    Problem,
    changed_fields,
    check_custom,
    clean_contact,
    contact_record,
    merge_custom,
)
from outbound.domain.statuses import MessageStatus
from outbound.errors import ConflictError, NotFoundError
from outbound.schemas import (
    ContactCreate,
    ContactOut,
    ContactUpdate,
    ImportResult,
    Page,
)
from outbound.services.contact_import import ContactImport
from outbound.services.events import RecordWriter, raise_first
from outbound.services.pagination import fetch_page
from outbound.texts import N_

__all__ = ["CONTACT_DELETED", "ContactService"]

CONTACT_DELETED = "contact_deleted"
"""The reason of a message skipped because its contact was deleted before it was sent."""


def _contact_out(c: Contact) -> ContactOut:
    return ContactOut.model_validate(
        {**contact_record(c), "created_at": c.created_at, "updated_at": c.updated_at}
    )


class ContactService(RecordWriter):
    """Contacts of an organisation: CRUD and CSV import; every change raises its event.

    Numbers without a country code are read in ``default_region``.
    """

    def __init__(self, db: Database, clock: Clock, *, default_region: str = DEFAULT_REGION) -> None:
        super().__init__(db, clock)
        self._region = default_region
        self._import = ContactImport(db, clock, default_region)

    def _contact_event(
        self, session: Session, type: str, contact: Contact, source: str, **extra: Any
    ) -> None:
        data = {"contact": contact_record(contact), **extra}
        self._add_event(
            session,
            org_id=contact.org_id,
            type=type,
            record_type="contact",
            record_id=contact.id,
            data=data,
            source=source,
        )

    @staticmethod
    def _load_contact(
        session: Session, org_id: str, contact_id: str, *, lock: bool = False
    ) -> Contact:
        query = sa.select(Contact).where(Contact.id == contact_id, Contact.org_id == org_id)
        if lock:
            query = query.with_for_update()
        contact = session.execute(query).scalar_one_or_none()
        if contact is None:
            raise NotFoundError(N_("no contact %(contact)r", contact=contact_id))
        return contact

    @staticmethod
    def _check_external_id(session: Session, org_id: str, external_id: str) -> None:
        taken = session.execute(
            sa.select(Contact.id).where(
                Contact.org_id == org_id, Contact.external_id == external_id
            )
        ).first()
        if taken is not None:
            raise ConflictError(
                N_(
                    "another contact has the external_id %(external_id)r",
                    external_id=external_id,
                ),
                field="external_id",
            )

    def create_contact(
        self, org_id: str, data: ContactCreate, *, source: str = "api"
    ) -> ContactOut:
        problems: list[Problem] = []
        values = clean_contact(
            {
                "external_id": data.external_id,
                "name": data.name,
                "mobile_phone": data.mobile_phone,
                "whatsapp_number": data.whatsapp_number,
                "preferred_language": data.preferred_language,
                "consent_sms": data.consent.sms,
                "consent_whatsapp": data.consent.whatsapp,
                "time_zone": data.time_zone,
            },
            self._region,
            problems,
        )
        check_custom(data.custom, problems)
        raise_first(problems)
        now = self._clock.now()
        contact = Contact(
            id=new_id(),
            org_id=org_id,
            custom=merge_custom({}, data.custom),
            created_at=now,
            updated_at=now,
            **values,
        )
        with self._write(N_("another contact has this external_id"), "external_id") as session:
            if contact.external_id is not None:
                self._check_external_id(session, org_id, contact.external_id)
            session.add(contact)
            session.flush()
            self._contact_event(session, "contact.created", contact, source)
        return _contact_out(contact)

    def get_contact(self, org_id: str, contact_id: str) -> ContactOut:
        with self._db.read() as session:
            return _contact_out(self._load_contact(session, org_id, contact_id))

    def list_contacts(
        self,
        org_id: str,
        cursor: str | None,
        limit: int,
        *,
        mobile_phone: str | None = None,
        external_id: str | None = None,
    ) -> Page[ContactOut]:
        query = sa.select(Contact).where(Contact.org_id == org_id)
        if mobile_phone is not None:
            problems: list[Problem] = []
            number = clean_contact({"mobile_phone": mobile_phone}, self._region, problems)
            raise_first(problems)
            query = query.where(Contact.mobile_phone == number["mobile_phone"])
        if external_id is not None:
            query = query.where(Contact.external_id == external_id)
        return fetch_page(
            self._db, query, Contact.created_at, Contact.id, cursor, limit, _contact_out
        )

    def update_contact(
        self, org_id: str, contact_id: str, data: ContactUpdate, *, source: str = "api"
    ) -> ContactOut:
        given = data.model_fields_set
        problems: list[Problem] = []
        columns = ("external_id", "name", "mobile_phone", "whatsapp_number")
        raw: dict[str, Any] = {name: getattr(data, name) for name in columns if name in given}
        if "preferred_language" in given:
            raw["preferred_language"] = data.preferred_language
        if "time_zone" in given:
            raw["time_zone"] = data.time_zone
        if data.consent is not None:
            if data.consent.sms is not None:
                raw["consent_sms"] = data.consent.sms
            if data.consent.whatsapp is not None:
                raw["consent_whatsapp"] = data.consent.whatsapp
        values = clean_contact(raw, self._region, problems)
        if data.custom is not None:
            check_custom(data.custom, problems)
        raise_first(problems)
        with self._write(N_("another contact has this external_id"), "external_id") as session:
            contact = self._load_contact(session, org_id, contact_id, lock=True)
            new_external = values.get("external_id")
            if new_external is not None and new_external != contact.external_id:
                self._check_external_id(session, org_id, new_external)
            before = contact_record(contact)
            for name, value in values.items():
                setattr(contact, name, value)
            if data.custom is not None:
                contact.custom = merge_custom(contact.custom or {}, data.custom)
            changes = changed_fields(before, contact_record(contact))
            if changes:
                contact.updated_at = self._clock.now()
                self._contact_event(session, "contact.updated", contact, source, changes=changes)
        return _contact_out(contact)

    def delete_contact(self, org_id: str, contact_id: str, *, source: str = "api") -> None:
        has_cases = N_("the contact is the customer of cases; delete them or change their contact")
        with self._write(has_cases) as session:
            contact = self._load_contact(session, org_id, contact_id, lock=True)
            cases = session.execute(
                sa.select(sa.func.count())
                .select_from(Case)
                .where(Case.org_id == org_id, Case.contact_id == contact_id)
            ).scalar_one()
            if cases:
                raise ConflictError(
                    N_(
                        "the contact is the customer of %(count)s case(s); delete them or change "
                        "their contact first",
                        count=cases,
                    ),
                    code="contact_has_cases",
                )
            session.delete(contact)
            session.flush()
            self._skip_queued_messages(session, contact)
            self._contact_event(session, "contact.deleted", contact, source)

    def _skip_queued_messages(self, session: Session, contact: Contact) -> None:
        """The messages still queued for a deleted contact's numbers are skipped
        (``contact_deleted``), unless another contact of the organisation has that number."""
        numbers = {"sms": contact.mobile_phone, "whatsapp": contact.whatsapp_number}
        for channel_type, number in numbers.items():
            if not number:
                continue
            column = Contact.mobile_phone if channel_type == "sms" else Contact.whatsapp_number
            shared = session.execute(
                sa.select(Contact.id).where(Contact.org_id == contact.org_id, column == number)
            ).first()
            if shared is not None:
                continue
            Outbox.end_queued(
                session,
                [
                    Message.org_id == contact.org_id,
                    Message.channel_type == channel_type,
                    Message.to_number == number,
                ],
                MessageStatus.SKIPPED,
                reason=CONTACT_DELETED,
                source="contact_deleted",
                now=self._clock.now(),
                detail="the contact was deleted before the message was sent",
            )

    def import_contacts(
        self, org_id: str, lines: Iterable[str], *, dry_run: bool = False, source: str = "import"
    ) -> ImportResult:
        """Create or update contacts from CSV text, read line by line: see
        :meth:`ContactImport.run <outbound.services.contact_import.ContactImport.run>`.

        Raises :class:`ImportInputError` when the header is missing or unusable.
        """
        return self._import.run(org_id, lines, dry_run=dry_run, source=source)
