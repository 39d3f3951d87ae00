"""Contacts and cases, and the events their changes raise.

Each change and its event are written in one transaction (:func:`record_event`): flows never
see an event for a change that was rolled back, nor miss one that was committed. Events of other
systems (``order.delayed``) are stored the same way by :meth:`RecordService.post_event`. The
field rules are in :mod:`outbound.domain.contacts`, the CSV import of contacts in
:mod:`outbound.services.contact_import`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Case, Contact, Event, new_id
from outbound.clock import Clock
from outbound.config import Settings
from outbound.domain.contacts import (
    Problem,
    case_record,
    changed_fields,
    check_custom,
    clean_contact,
    contact_record,
    merge_custom,
)
from outbound.errors import ConflictError, InvalidRequestError, NotFoundError
from outbound.records_schemas import (
    CaseCreate,
    CaseOut,
    CaseStatus,
    CaseUpdate,
    ContactCreate,
    ContactOut,
    ContactUpdate,
    EventIn,
    EventOut,
    ImportResult,
)
from outbound.schemas import Page
from outbound.services.contact_import import (
    CSV_COLUMNS,
    IMPORT_CHUNK_ROWS,
    ContactImport,
    ImportInputError,
    text_lines,
)
from outbound.services.events import record_event
from outbound.services.pagination import MAX_PAGE_SIZE, fetch_page

__all__ = [
    "CASE_NUMBER_PREFIX",
    "CSV_COLUMNS",
    "IMPORT_CHUNK_ROWS",
    "ImportInputError",
    "RecordService",
    "text_lines",
]


CASE_NUMBER_PREFIX = "CAS-"
CASE_NUMBER_DIGITS = 6
# Collisions only happen between concurrent writers (or with numbers given by hand), so a
# few attempts suffice; past them a random number cannot collide in practice.
SEQUENTIAL_NUMBER_ATTEMPTS = 10
NUMBER_ATTEMPTS = 20
MAX_EVENT_RECORD_BYTES = 64 * 1024
RESERVED_EVENT_PREFIXES = ("contact.", "case.")

# Status changes a case may make, and the event each raises.
_TRANSITIONS = {
    ("active", "resolved"): "case.resolved",
    ("active", "canceled"): "case.canceled",
    ("resolved", "active"): "case.reactivated",
    ("canceled", "active"): "case.reactivated",
}


def _lock_key(org_id: str) -> int:
    """A PostgreSQL advisory lock key (signed 64 bits) for the case numbers of an org."""
    digest = hashlib.sha256(f"case-number:{org_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _contact_out(c: Contact) -> ContactOut:
    return ContactOut.model_validate(
        {**contact_record(c), "created_at": c.created_at, "updated_at": c.updated_at}
    )


def _case_out(c: Case) -> CaseOut:
    return CaseOut.model_validate(c)


def _event_out(e: Event) -> EventOut:
    return EventOut.model_validate(e)


def _raise_first(problems: list[Problem]) -> None:
    if problems:
        name, message = problems[0]
        raise InvalidRequestError(f"{name}: {message}", field=name)


# --- event cursors ------------------------------------------------------------------------


def _event_cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"event:{event_id}".encode()).decode().rstrip("=")


def _event_before(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
        prefix, _, number = raw.partition(":")
        if prefix != "event" or not number.isdigit():
            raise ValueError(raw)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidRequestError("malformed cursor", field="cursor") from exc


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidRequestError(f"limit must be between 1 and {MAX_PAGE_SIZE}", field="limit")


# --- the service --------------------------------------------------------------------------


class RecordService:
    """Contacts, cases and events: CRUD, CSV import of contacts, and external events."""

    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self._db = db
        self._clock = clock
        self._region = settings.default_region
        self._import = ContactImport(db, clock, self._region)

    @contextmanager
    def _write(
        self, conflict: str = "conflicting change", field: str | None = None
    ) -> Iterator[Session]:
        """A write transaction whose unique-key and foreign-key failures (a concurrent
        writer got there first) become 409 instead of 500."""
        try:
            with self._db.transaction() as session:
                yield session
        except sa.exc.IntegrityError as exc:
            raise ConflictError(conflict, field=field) from exc

    def _contact_event(
        self, session: Session, type: str, contact: Contact, source: str, **extra: Any
    ) -> None:
        data = {"contact": contact_record(contact), **extra}
        record_event(
            session,
            org_id=contact.org_id,
            type=type,
            record_type="contact",
            record_id=contact.id,
            data=data,
            source=source,
            now=self._clock.now(),
        )

    def _case_event(
        self, session: Session, type: str, case: Case, source: str, **extra: Any
    ) -> None:
        record_event(
            session,
            org_id=case.org_id,
            type=type,
            record_type="case",
            record_id=case.id,
            data=self._case_data(session, case, **extra),
            source=source,
            now=self._clock.now(),
        )

    # --- contacts -------------------------------------------------------------------------

    @staticmethod
    def _load_contact(
        session: Session, org_id: str, contact_id: str, *, lock: bool = False
    ) -> Contact:
        query = sa.select(Contact).where(Contact.id == contact_id, Contact.org_id == org_id)
        if lock:
            query = query.with_for_update()
        contact = session.execute(query).scalar_one_or_none()
        if contact is None:
            raise NotFoundError(f"no contact {contact_id!r}")
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
                f"another contact has the external_id {external_id!r}", field="external_id"
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
        _raise_first(problems)
        now = self._clock.now()
        contact = Contact(
            id=new_id(),
            org_id=org_id,
            custom=merge_custom({}, data.custom),
            created_at=now,
            updated_at=now,
            **values,
        )
        with self._write("another contact has this external_id", "external_id") as session:
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
            _raise_first(problems)
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
        _raise_first(problems)
        with self._write("another contact has this external_id", "external_id") as session:
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
        has_cases = "the contact is the customer of cases; delete them or change their contact"
        with self._write(has_cases) as session:
            contact = self._load_contact(session, org_id, contact_id, lock=True)
            cases = session.execute(
                sa.select(sa.func.count())
                .select_from(Case)
                .where(Case.org_id == org_id, Case.contact_id == contact_id)
            ).scalar_one()
            if cases:
                raise ConflictError(
                    f"the contact is the customer of {cases} case(s); delete them or change "
                    "their contact first",
                    code="contact_has_cases",
                )
            session.delete(contact)
            session.flush()
            self._contact_event(session, "contact.deleted", contact, source)

    # --- contact import -------------------------------------------------------------------

    def import_contacts(
        self, org_id: str, lines: Iterable[str], *, dry_run: bool = False, source: str = "import"
    ) -> ImportResult:
        """Create or update contacts from CSV text, read line by line: see
        :meth:`ContactImport.run <outbound.services.contact_import.ContactImport.run>`.

        Raises :class:`ImportInputError` when the header is missing or unusable.
        """
        return self._import.run(org_id, lines, dry_run=dry_run, source=source)

    # --- cases ----------------------------------------------------------------------------

    @staticmethod
    def _load_case(session: Session, org_id: str, case_id: str, *, lock: bool = False) -> Case:
        query = sa.select(Case).where(Case.id == case_id, Case.org_id == org_id)
        if lock:
            # Two concurrent changes of one case must not both see it active (two events).
            query = query.with_for_update()
        case = session.execute(query).scalar_one_or_none()
        if case is None:
            raise NotFoundError(f"no case {case_id!r}")
        return case

    @staticmethod
    def _check_contact(session: Session, org_id: str, contact_id: str) -> None:
        # FOR KEY SHARE (PostgreSQL): the contact cannot be deleted before this commits.
        found = session.execute(
            sa.select(Contact.id)
            .where(Contact.id == contact_id, Contact.org_id == org_id)
            .with_for_update(read=True, key_share=True)
        ).first()
        if found is None:
            raise InvalidRequestError(f"no contact {contact_id!r}", field="contact_id")

    @staticmethod
    def _check_number(session: Session, org_id: str, number: str) -> None:
        taken = session.execute(
            sa.select(Case.id).where(Case.org_id == org_id, Case.number == number)
        ).first()
        if taken is not None:
            raise ConflictError(f"another case has the number {number!r}", field="number")

    @staticmethod
    def _next_number(session: Session, org_id: str) -> int:
        """One more than the highest generated number of the organisation."""
        low = CASE_NUMBER_PREFIX + "0" * CASE_NUMBER_DIGITS
        high = CASE_NUMBER_PREFIX + "9" * CASE_NUMBER_DIGITS
        top = session.execute(
            sa.select(sa.func.max(Case.number)).where(
                Case.org_id == org_id,
                Case.number >= low,
                Case.number <= high,
                sa.func.length(Case.number) == len(low),
            )
        ).scalar_one_or_none()
        digits = (top or low)[len(CASE_NUMBER_PREFIX) :]
        return int(digits) + 1 if digits.isdigit() else 1

    def _add_numbered(self, session: Session, org_id: str, build: Callable[[str], Case]) -> Case:
        """Insert the case under the next free number; a concurrent writer may take the same
        one, which the unique constraint refuses: then try the next."""
        if self._db.dialect == "postgresql":
            # Writers of one organisation take turns choosing (SQLite has a single writer
            # already); without this, under load they keep choosing the same next number.
            session.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(org_id))))
        sequence = self._next_number(session, org_id)
        for attempt in range(NUMBER_ATTEMPTS):
            if attempt < SEQUENTIAL_NUMBER_ATTEMPTS:
                number = f"{CASE_NUMBER_PREFIX}{sequence:0{CASE_NUMBER_DIGITS}d}"
            else:
                number = f"{CASE_NUMBER_PREFIX}{secrets.token_hex(5).upper()}"
            case = build(number)
            savepoint = session.begin_nested()
            try:
                session.add(case)
                session.flush()
            except sa.exc.IntegrityError:
                savepoint.rollback()
                taken = session.execute(
                    sa.select(Case.id).where(Case.org_id == org_id, Case.number == number)
                ).first()
                if taken is None:
                    raise
                sequence = max(sequence + 1, self._next_number(session, org_id))
                continue
            savepoint.commit()
            return case
        raise ConflictError("could not choose a free case number; try again", field="number")

    def _case_data(self, session: Session, case: Case, **extra: Any) -> dict[str, Any]:
        contact = None
        if case.contact_id is not None:
            contact = session.execute(
                sa.select(Contact).where(
                    Contact.id == case.contact_id, Contact.org_id == case.org_id
                )
            ).scalar_one_or_none()
        return {
            "case": case_record(case),
            "contact": contact_record(contact) if contact is not None else None,
            **extra,
        }

    def create_case(self, org_id: str, data: CaseCreate, *, source: str = "api") -> CaseOut:
        problems: list[Problem] = []
        check_custom(data.custom, problems)
        _raise_first(problems)
        now = self._clock.now()

        def build(number: str) -> Case:
            return Case(
                id=new_id(),
                org_id=org_id,
                number=number,
                title=data.title,
                contact_id=data.contact_id,
                status=data.status.value,
                custom=merge_custom({}, data.custom),
                created_at=now,
                updated_at=now,
                resolved_at=now if data.status is CaseStatus.RESOLVED else None,
            )

        conflict = f"another case has the number {data.number!r}"
        with self._write(conflict, "number") as session:
            if data.contact_id is not None:
                self._check_contact(session, org_id, data.contact_id)
            if data.number is None:
                case = self._add_numbered(session, org_id, build)
            else:
                self._check_number(session, org_id, data.number)
                case = build(data.number)
                session.add(case)
                session.flush()
            self._case_event(session, "case.created", case, source)
        return _case_out(case)

    def get_case(self, org_id: str, case_id: str) -> CaseOut:
        with self._db.read() as session:
            return _case_out(self._load_case(session, org_id, case_id))

    def list_cases(
        self,
        org_id: str,
        cursor: str | None,
        limit: int,
        *,
        status: CaseStatus | None = None,
        contact_id: str | None = None,
        number: str | None = None,
    ) -> Page[CaseOut]:
        query = sa.select(Case).where(Case.org_id == org_id)
        if status is not None:
            query = query.where(Case.status == status.value)
        if contact_id is not None:
            query = query.where(Case.contact_id == contact_id)
        if number is not None:
            query = query.where(Case.number == number)
        return fetch_page(self._db, query, Case.created_at, Case.id, cursor, limit, _case_out)

    def update_case(
        self, org_id: str, case_id: str, data: CaseUpdate, *, source: str = "api"
    ) -> CaseOut:
        given = data.model_fields_set
        for name in ("number", "title", "status"):
            if name in given and getattr(data, name) is None:
                raise InvalidRequestError(f"{name}: cannot be null", field=name)
        problems: list[Problem] = []
        if data.custom is not None:
            check_custom(data.custom, problems)
        _raise_first(problems)
        with self._write(f"another case has the number {data.number!r}", "number") as session:
            case = self._load_case(session, org_id, case_id, lock=True)
            now = self._clock.now()
            before = case_record(case)
            if data.number is not None and data.number != case.number:
                self._check_number(session, org_id, data.number)
                case.number = data.number
            if data.title is not None:
                case.title = data.title
            if "contact_id" in given:
                if data.contact_id is not None and data.contact_id != case.contact_id:
                    self._check_contact(session, org_id, data.contact_id)
                case.contact_id = data.contact_id
            if data.custom is not None:
                case.custom = merge_custom(case.custom or {}, data.custom)
            event_type = "case.updated"
            if data.status is not None and data.status.value != case.status:
                event_type = self._move(case, data.status, now)
            changes = changed_fields(before, case_record(case))
            if changes:
                case.updated_at = now
                self._case_event(session, event_type, case, source, changes=changes)
        return _case_out(case)

    @staticmethod
    def _move(case: Case, status: CaseStatus, now: datetime) -> str:
        """Change the case's status; returns the type of the event the change raises."""
        event_type = _TRANSITIONS.get((case.status, status.value))
        if event_type is None:
            raise ConflictError(
                f"a {case.status} case cannot become {status.value}; reactivate it first",
                field="status",
                code="invalid_status_change",
            )
        case.status = status.value
        case.resolved_at = now if status is CaseStatus.RESOLVED else None
        return event_type

    def set_case_status(
        self, org_id: str, case_id: str, status: CaseStatus, *, source: str = "api"
    ) -> CaseOut:
        """Resolve, cancel or reactivate a case (409 if it already has that status)."""
        with self._write() as session:
            case = self._load_case(session, org_id, case_id, lock=True)
            if case.status == status.value:
                raise ConflictError(
                    f"the case is already {status.value}",
                    field="status",
                    code="invalid_status_change",
                )
            now = self._clock.now()
            before = case_record(case)
            event_type = self._move(case, status, now)
            case.updated_at = now
            changes = changed_fields(before, case_record(case))
            self._case_event(session, event_type, case, source, changes=changes)
        return _case_out(case)

    def resolve_case(self, org_id: str, case_id: str) -> CaseOut:
        return self.set_case_status(org_id, case_id, CaseStatus.RESOLVED)

    def cancel_case(self, org_id: str, case_id: str) -> CaseOut:
        return self.set_case_status(org_id, case_id, CaseStatus.CANCELED)

    def reactivate_case(self, org_id: str, case_id: str) -> CaseOut:
        return self.set_case_status(org_id, case_id, CaseStatus.ACTIVE)

    def delete_case(self, org_id: str, case_id: str, *, source: str = "api") -> None:
        with self._write() as session:
            case = self._load_case(session, org_id, case_id, lock=True)
            session.delete(case)
            session.flush()
            self._case_event(session, "case.deleted", case, source)

    # --- events ---------------------------------------------------------------------------

    def post_event(self, org_id: str, data: EventIn) -> EventOut:
        """Store an event of another system; flows that wait for its type will react."""
        if data.type.lower().startswith(RESERVED_EVENT_PREFIXES):
            raise InvalidRequestError(
                "type: contact.* and case.* events are raised by changes of contacts and cases",
                field="type",
            )
        try:
            size = len(json.dumps(data.record, allow_nan=False).encode())
        except ValueError as exc:
            raise InvalidRequestError(
                "record: NaN and infinity are not JSON", field="record"
            ) from exc
        if size > MAX_EVENT_RECORD_BYTES:
            raise InvalidRequestError(
                f"record: at most {MAX_EVENT_RECORD_BYTES} bytes of JSON", field="record"
            )
        with self._db.transaction() as session:
            event = record_event(
                session,
                org_id=org_id,
                type=data.type,
                record_type="external",
                record_id=data.record_id,
                data={"record": data.record},
                source="external",
                now=self._clock.now(),
            )
        return _event_out(event)

    def list_events(
        self,
        org_id: str,
        cursor: str | None,
        limit: int,
        *,
        type: str | None = None,
        record_id: str | None = None,
    ) -> Page[EventOut]:
        """Events newest first."""
        _check_limit(limit)
        query = sa.select(Event).where(Event.org_id == org_id)
        if type is not None:
            query = query.where(Event.type == type)
        if record_id is not None:
            query = query.where(Event.record_id == record_id)
        if cursor:
            query = query.where(Event.id < _event_before(cursor))
        query = query.order_by(Event.id.desc()).limit(limit + 1)
        with self._db.read() as session:
            rows = list(session.execute(query).scalars())
        more = len(rows) > limit
        rows = rows[:limit]
        return Page[EventOut](
            data=[_event_out(e) for e in rows],
            next_cursor=_event_cursor(rows[-1].id) if more else None,
        )
