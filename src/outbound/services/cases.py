"""Cases: create, read, list, change, resolve, cancel, reactivate and delete them.

Each change and its event (``case.created``, ``case.resolved``, ...) are written in one
transaction (:class:`~outbound.services.events.RecordWriter`); the event carries the case and
its contact as flows see them. Two concurrent changes of one case lock its row (on
PostgreSQL), so they cannot both see it ``active`` and both raise ``case.resolved``. Generated
numbers (``CAS-000001``) are chosen under a per-organisation advisory lock on PostgreSQL, and
the unique ``(org_id, number)`` makes a writer that still collides take the next number.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.models import Case, Contact, new_id
from outbound.domain.cases import CaseStatus
from outbound.domain.contacts import (
    Problem,
    case_record,
    changed_fields,
    check_custom,
    contact_record,
    merge_custom,
)
from outbound.errors import ConflictError, InvalidRequestError, NotFoundError
from outbound.schemas import CaseCreate, CaseOut, CaseUpdate, Page
from outbound.services.events import RecordWriter, raise_first
from outbound.services.pagination import fetch_page
from outbound.texts import N_

__all__ = ["CASE_NUMBER_PREFIX", "CaseService"]

CASE_NUMBER_PREFIX = "CAS-"
CASE_NUMBER_DIGITS = 6
# Collisions only happen between concurrent writers (or with numbers given by hand), so a
# few attempts suffice; past them a random number cannot collide in practice.
SEQUENTIAL_NUMBER_ATTEMPTS = 10
NUMBER_ATTEMPTS = 20

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


def _case_out(c: Case) -> CaseOut:
    return CaseOut.model_validate(c)


class CaseService(RecordWriter):
    """Cases of an organisation: CRUD and status changes; every change raises its event."""

    def _case_event(
        self, session: Session, type: str, case: Case, source: str, **extra: Any
    ) -> None:
        self._add_event(
            session,
            org_id=case.org_id,
            type=type,
            record_type="case",
            record_id=case.id,
            data=self._case_data(session, case, **extra),
            source=source,
        )

    @staticmethod
    def _load_case(session: Session, org_id: str, case_id: str, *, lock: bool = False) -> Case:
        query = sa.select(Case).where(Case.id == case_id, Case.org_id == org_id)
        if lock:
            # Two concurrent changes of one case must not both see it active (two events).
            query = query.with_for_update()
        case = session.execute(query).scalar_one_or_none()
        if case is None:
            raise NotFoundError(N_("no case %(case)r", case=case_id))
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
            raise InvalidRequestError(
                N_("no contact %(contact)r", contact=contact_id), field="contact_id"
            )

    @staticmethod
    def _check_number(session: Session, org_id: str, number: str) -> None:
        taken = session.execute(
            sa.select(Case.id).where(Case.org_id == org_id, Case.number == number)
        ).first()
        if taken is not None:
            raise ConflictError(
                N_("another case has the number %(number)r", number=number), field="number"
            )

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
        raise ConflictError(N_("could not choose a free case number; try again"), field="number")

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
        raise_first(problems)
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

        conflict = N_("another case has the number %(number)r", number=data.number)
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
        problems: list[Problem] = []
        if data.custom is not None:
            check_custom(data.custom, problems)
        raise_first(problems)
        with self._write(
            N_("another case has the number %(number)r", number=data.number), "number"
        ) as session:
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
                N_(
                    "a %(status)s case cannot become %(new_status)s; reactivate it first",
                    status=case.status,
                    new_status=status.value,
                ),
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
                    N_("the case is already %(status)s", status=status.value),
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
