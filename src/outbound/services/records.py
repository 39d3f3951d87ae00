"""Contacts and cases, their CSV import, and the events their changes raise.

Each change and its event are written in one transaction (:func:`record_event`): flows never
see an event for a change that was rolled back, nor miss one that was committed. Events of other
systems (``order.delayed``) are stored the same way by :meth:`RecordService.post_event`.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import csv
import hashlib
import json
import logging
import math
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import available_timezones

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Case, Contact, Event, new_id
from outbound.clock import Clock
from outbound.config import Settings
from outbound.domain.locales import normalize_locale
from outbound.domain.numbers import (
    REASON_EMPTY,
    REASON_MISSING_COUNTRY_CODE,
    REASON_NOT_A_NUMBER,
    normalize_number,
)
from outbound.errors import (
    ConflictError,
    InvalidLocaleError,
    InvalidNumberError,
    InvalidRequestError,
    NotFoundError,
)
from outbound.records_schemas import (
    MAX_IMPORT_ERRORS,
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
    ImportRowError,
)
from outbound.schemas import Page
from outbound.services.events import record_event, record_events
from outbound.services.pagination import MAX_PAGE_SIZE, fetch_page

__all__ = [
    "CASE_NUMBER_PREFIX",
    "CSV_COLUMNS",
    "IMPORT_CHUNK_ROWS",
    "ImportInputError",
    "RecordService",
    "case_record",
    "contact_record",
    "text_lines",
]

log = logging.getLogger(__name__)

CASE_NUMBER_PREFIX = "CAS-"
CASE_NUMBER_DIGITS = 6
# Collisions only happen between concurrent writers (or with numbers given by hand), so a
# few attempts suffice; past them a random number cannot collide in practice.
SEQUENTIAL_NUMBER_ATTEMPTS = 10
NUMBER_ATTEMPTS = 20
MAX_CUSTOM_VALUE_CHARS = 2000
MAX_EVENT_RECORD_BYTES = 64 * 1024
RESERVED_EVENT_PREFIXES = ("contact.", "case.")

CSV_COLUMNS = (
    "external_id",
    "name",
    "mobile_phone",
    "whatsapp_number",
    "preferred_language",
    "consent_sms",
    "consent_whatsapp",
    "time_zone",
)
CUSTOM_PREFIX = "custom."
IMPORT_CHUNK_ROWS = 500
MAX_LINE_CHARS = 1 << 20
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})

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


class ImportInputError(InvalidRequestError):
    """The CSV cannot be imported at all: no usable header, or a line too long to be a row."""


# --- records as flows see them ------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def contact_record(c: Contact) -> dict[str, Any]:
    """A contact as a JSON-safe dict (event data, flow context)."""
    return {
        "id": c.id,
        "external_id": c.external_id,
        "name": c.name,
        "mobile_phone": c.mobile_phone,
        "whatsapp_number": c.whatsapp_number,
        "preferred_language": c.preferred_language,
        "consent": {"sms": bool(c.consent_sms), "whatsapp": bool(c.consent_whatsapp)},
        "time_zone": c.time_zone,
        "custom": dict(c.custom or {}),
        "created_at": _iso(c.created_at),
        "updated_at": _iso(c.updated_at),
    }


def case_record(c: Case) -> dict[str, Any]:
    """A case as a JSON-safe dict (event data, flow context)."""
    return {
        "id": c.id,
        "number": c.number,
        "title": c.title,
        "status": c.status,
        "contact_id": c.contact_id,
        "custom": dict(c.custom or {}),
        "created_at": _iso(c.created_at),
        "updated_at": _iso(c.updated_at),
        "resolved_at": _iso(c.resolved_at),
    }


def _contact_out(c: Contact) -> ContactOut:
    return ContactOut.model_validate(
        {**contact_record(c), "created_at": c.created_at, "updated_at": c.updated_at}
    )


def _case_out(c: Case) -> CaseOut:
    return CaseOut.model_validate(c)


def _event_out(e: Event) -> EventOut:
    return EventOut.model_validate(e)


def _changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """``{field: {"old": ..., "new": ...}}`` for each field of a record that changed."""
    return {
        key: {"old": before[key], "new": after[key]}
        for key in after
        if key != "updated_at" and before.get(key) != after[key]
    }


# --- field rules shared by the API and the import -----------------------------------------


@cache
def _time_zones() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def _text(value: Any, limit: int) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    if len(text) > limit:
        raise ValueError(f"must be at most {limit} characters")
    return text


_NUMBER_PROBLEMS = {
    REASON_EMPTY: "must not be empty",
    REASON_NOT_A_NUMBER: "not a phone number",
    REASON_MISSING_COUNTRY_CODE: "needs a country code (+33...)",
}


def _phone(value: Any, region: str) -> str:
    # The number itself stays out of the message: messages end up in logs.
    try:
        return normalize_number(str(value), region)
    except InvalidNumberError as exc:
        raise ValueError(_NUMBER_PROBLEMS.get(exc.reason, "not a valid phone number")) from exc


def _language(value: Any, _region: str) -> str:
    try:
        return normalize_locale(value)
    except InvalidLocaleError as exc:
        raise ValueError("not a BCP-47 language tag (fr-FR) or a Windows LCID (1036)") from exc


def _time_zone(value: Any, _region: str) -> str:
    zone = _time_zones().get(str(value).strip().lower())
    if zone is None:
        raise ValueError("not an IANA time zone such as Europe/Paris")
    return zone


def _flag(value: Any, _region: str) -> bool:
    return bool(value)


_CLEANERS: dict[str, Callable[[Any, str], Any]] = {
    "external_id": lambda v, _r: _text(v, 200),
    "name": lambda v, _r: _text(v, 200),
    "mobile_phone": _phone,
    "whatsapp_number": _phone,
    "preferred_language": _language,
    "consent_sms": _flag,
    "consent_whatsapp": _flag,
    "time_zone": _time_zone,
}


def _clean_contact(
    values: Mapping[str, Any], region: str, problems: list[tuple[str | None, str]]
) -> dict[str, Any]:
    """Normalise the contact columns given (``None`` clears one); add ``(field, message)``
    to ``problems`` for each value refused."""
    clean: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            clean[name] = None
            continue
        try:
            clean[name] = _CLEANERS[name](value, region)
        except ValueError as exc:
            problems.append((name, str(exc)))
    return clean


def _clean_custom(values: Mapping[str, Any], problems: list[tuple[str | None, str]]) -> None:
    for key, value in values.items():
        name = f"custom.{key}"
        if isinstance(value, str) and len(value) > MAX_CUSTOM_VALUE_CHARS:
            problems.append((name, f"must be at most {MAX_CUSTOM_VALUE_CHARS} characters"))
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append((name, "must be a finite number"))


def _raise_first(problems: list[tuple[str | None, str]]) -> None:
    if problems:
        name, message = problems[0]
        raise InvalidRequestError(f"{name}: {message}", field=name)


def _merge(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``changes`` into custom fields; a ``None`` value removes its key."""
    merged = {**current, **changes}
    return {k: v for k, v in merged.items() if v is not None}


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


# --- CSV reading --------------------------------------------------------------------------


def text_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decode UTF-8 byte chunks (a leading BOM is dropped) into lines, each ending in ``\\n``
    except perhaps the last, holding at most one line in memory.

    Bytes that are not UTF-8 become U+FFFD, which the import refuses row by row. Only ``\\n``
    ends a line: the csv module handles ``\\r\\n`` and line breaks inside quoted fields.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        start = 0
        while (end := pending.find("\n", start)) >= 0:
            yield pending[start : end + 1]
            start = end + 1
        pending = pending[start:]
        if len(pending) > MAX_LINE_CHARS:
            raise ImportInputError(
                f"a line is longer than {MAX_LINE_CHARS} characters", field="body"
            )
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


@dataclass(frozen=True)
class _Column:
    name: str
    custom: bool

    @property
    def field(self) -> str:
        return f"{CUSTOM_PREFIX}{self.name}" if self.custom else self.name


def _read_header(cells: list[str]) -> list[_Column]:
    if not cells or all(not c.strip() for c in cells):
        raise ImportInputError(
            "the first row must be a header naming the columns (external_id,name,mobile_phone,...)",
            field="header",
        )
    columns: list[_Column] = []
    for position, cell in enumerate(cells, start=1):
        name = cell.strip()
        if name.lower().startswith(CUSTOM_PREFIX):
            column = _Column(name[len(CUSTOM_PREFIX) :].strip(), custom=True)
        elif name.lower() in CSV_COLUMNS:
            column = _Column(name.lower(), custom=False)
        else:
            column = _Column(name, custom=True)
        if not column.name or "\x00" in column.name or "\ufffd" in column.name:
            raise ImportInputError(
                f"column {position} of the header has no usable name", field="header"
            )
        if len(column.name) > 100:
            raise ImportInputError(
                f"column {position}: names are at most 100 characters", field="header"
            )
        if column.field in {c.field for c in columns}:
            raise ImportInputError(f"column {column.field!r} appears twice", field="header")
        columns.append(column)
    if not {"external_id", "mobile_phone"} & {c.field for c in columns}:
        raise ImportInputError(
            "the header needs an external_id or a mobile_phone column to match contacts",
            field="header",
        )
    return columns


@dataclass
class _Row:
    number: int
    values: dict[str, Any]
    custom: dict[str, str]


def _parse_row(
    number: int, cells: list[str], header: list[_Column], region: str
) -> tuple[_Row, list[tuple[str | None, str]]]:
    problems: list[tuple[str | None, str]] = []
    if len(cells) != len(header):
        problems.append((None, f"has {len(cells)} fields; the header has {len(header)}"))
        return _Row(number, {}, {}), problems
    values: dict[str, Any] = {}
    custom: dict[str, str] = {}
    for column, cell in zip(header, cells, strict=True):
        value = cell.strip()
        if not value:
            continue  # an empty cell leaves the field as it is
        if "\x00" in value:
            problems.append((column.field, "must not contain the NUL character (U+0000)"))
        elif "\ufffd" in value:
            problems.append((column.field, "is not valid UTF-8 text"))
        elif column.custom:
            custom[column.name] = value
            _clean_custom({column.name: value}, problems)
        elif column.name in {"consent_sms", "consent_whatsapp"}:
            if value.lower() in _TRUE:
                values[column.name] = True
            elif value.lower() in _FALSE:
                values[column.name] = False
            else:
                problems.append((column.name, "must be true or false (yes/no, 1/0)"))
        else:
            values.update(_clean_contact({column.name: value}, region, problems))
    if not problems and not values.get("external_id") and not values.get("mobile_phone"):
        problems.append(("mobile_phone", "a row needs a mobile_phone or an external_id"))
    return _Row(number, values, custom), problems


def _apply_row(contact: Contact, row: _Row) -> None:
    for name, value in row.values.items():
        setattr(contact, name, value)
    if row.custom:
        contact.custom = {**(contact.custom or {}), **row.custom}


@dataclass
class _ImportState:
    dry_run: bool
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    error_count: int = 0
    errors: list[ImportRowError] = field(default_factory=list)
    pending_errors: list[ImportRowError] = field(default_factory=list)
    stopped: str | None = None

    def fail(self, row: int, problems: list[tuple[str | None, str]]) -> None:
        self.failed += 1
        self.pending_errors.extend(ImportRowError(row=row, field=f, message=m) for f, m in problems)

    def flush_errors(self) -> None:
        """Keep the errors in file order: a chunk's rows fail when read or when written."""
        self.pending_errors.sort(key=lambda e: e.row)
        self.error_count += len(self.pending_errors)
        room = MAX_IMPORT_ERRORS - len(self.errors)
        self.errors.extend(self.pending_errors[: max(room, 0)])
        self.pending_errors = []

    def result(self) -> ImportResult:
        return ImportResult(
            dry_run=self.dry_run,
            rows=self.rows,
            created=self.created,
            updated=self.updated,
            unchanged=self.unchanged,
            failed=self.failed,
            error_count=self.error_count,
            errors=self.errors,
            stopped=self.stopped,
        )


# --- the service --------------------------------------------------------------------------


class RecordService:
    """Contacts, cases and events: CRUD, CSV import of contacts, and external events."""

    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self._db = db
        self._clock = clock
        self._region = settings.default_region

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
        problems: list[tuple[str | None, str]] = []
        values = _clean_contact(
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
        _clean_custom(data.custom, problems)
        _raise_first(problems)
        now = self._clock.now()
        contact = Contact(
            id=new_id(),
            org_id=org_id,
            custom=_merge({}, data.custom),
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
            problems: list[tuple[str | None, str]] = []
            number = _clean_contact({"mobile_phone": mobile_phone}, self._region, problems)
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
        problems: list[tuple[str | None, str]] = []
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
        values = _clean_contact(raw, self._region, problems)
        if data.custom is not None:
            _clean_custom(data.custom, problems)
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
                contact.custom = _merge(contact.custom or {}, data.custom)
            changes = _changes(before, contact_record(contact))
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
        """Create or update contacts from CSV text, read line by line.

        The first row names the columns: those of :data:`CSV_COLUMNS`, and any other (or
        ``custom.<name>``) is a custom field. A row updates the contact with its
        ``external_id`` when it has one, else the one with its ``mobile_phone``; otherwise it
        creates one. An empty cell leaves the field unchanged. Rows are written (with their
        events) in transactions of :data:`IMPORT_CHUNK_ROWS`; a refused row is reported and
        skipped. ``dry_run`` validates and matches without writing (a contact repeated in two
        chunks then counts as created twice).

        Raises :class:`ImportInputError` when the header is missing or unusable.
        """
        state = _ImportState(dry_run=dry_run)
        reader = csv.reader(lines)
        header: list[_Column] | None = None
        chunk: list[_Row] = []
        number = 0
        try:
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    number += 1
                    if header is None:
                        raise ImportInputError(f"unreadable header: {exc}", field="header") from exc
                    state.rows += 1
                    state.fail(number, [(None, f"not readable as CSV: {exc}")])
                    continue
                number += 1
                if header is None:
                    header = _read_header(cells)
                    continue
                if all(not c.strip() for c in cells):
                    continue
                state.rows += 1
                row, problems = _parse_row(number, cells, header, self._region)
                if problems:
                    state.fail(number, problems)
                    continue
                chunk.append(row)
                if len(chunk) >= IMPORT_CHUNK_ROWS:
                    self._import_chunk(org_id, chunk, state, source)
                    chunk = []
        except ImportInputError as exc:
            if header is None:
                raise
            state.stopped = exc.message
            state.pending_errors.append(
                ImportRowError(row=number + 1, field=None, message=f"stopped: {exc.message}")
            )
        if header is None:
            raise ImportInputError(
                "the file is empty; it needs a header row (external_id,name,mobile_phone,...)",
                field="header",
            )
        self._import_chunk(org_id, chunk, state, source)
        log.info(
            "contacts import for org %s%s: %d rows, %d created, %d updated, %d failed",
            org_id,
            " (dry run)" if dry_run else "",
            state.rows,
            state.created,
            state.updated,
            state.failed,
        )
        return state.result()

    def _import_chunk(
        self, org_id: str, rows: list[_Row], state: _ImportState, source: str
    ) -> None:
        if rows:
            try:
                self._write_chunk(org_id, rows, state, source)
            except sa.exc.IntegrityError:
                # Another writer created one of these contacts meanwhile: read them again.
                try:
                    self._write_chunk(org_id, rows, state, source)
                except sa.exc.IntegrityError:
                    log.warning("contacts import for org %s: chunk conflicted twice", org_id)
                    for row in rows:
                        state.fail(row.number, [(None, "conflicted with a concurrent change")])
        state.flush_errors()

    def _write_chunk(self, org_id: str, rows: list[_Row], state: _ImportState, source: str) -> None:
        """Upsert ``rows`` in one transaction; counts are added to ``state`` once committed."""
        now = self._clock.now()
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        failures: list[tuple[int, list[tuple[str | None, str]]]] = []
        events: list[dict[str, Any]] = []
        dry_run = state.dry_run
        with (
            self._db.read() if dry_run else self._db.transaction() as session,
            session.no_autoflush,
        ):
            external_ids = {r.values["external_id"] for r in rows if r.values.get("external_id")}
            phones = {
                r.values["mobile_phone"]
                for r in rows
                if not r.values.get("external_id") and r.values.get("mobile_phone")
            }
            by_external: dict[str, Contact] = {}
            if external_ids:
                found = session.execute(
                    sa.select(Contact).where(
                        Contact.org_id == org_id, Contact.external_id.in_(external_ids)
                    )
                ).scalars()
                by_external = {c.external_id: c for c in found if c.external_id}
            by_phone: dict[str, list[Contact]] = defaultdict(list)
            if phones:
                found = session.execute(
                    sa.select(Contact)
                    .where(Contact.org_id == org_id, Contact.mobile_phone.in_(phones))
                    .order_by(Contact.created_at, Contact.id)
                ).scalars()
                for c in found:
                    by_phone[c.mobile_phone or ""].append(c)

            def event(type: str, contact: Contact, data: dict[str, Any]) -> None:
                events.append(
                    {
                        "org_id": org_id,
                        "type": type,
                        "record_type": "contact",
                        "record_id": contact.id,
                        "data": data,
                        "source": source,
                        "occurred_at": now,
                    }
                )

            for row in rows:
                external_id = row.values.get("external_id")
                if external_id:
                    target = by_external.get(external_id)
                else:
                    matches = by_phone.get(row.values["mobile_phone"], [])
                    if len(matches) > 1:
                        problem = (
                            f"{len(matches)} contacts have this mobile_phone; add an "
                            "external_id column to say which one"
                        )
                        failures.append((row.number, [("mobile_phone", problem)]))
                        continue
                    target = matches[0] if matches else None
                if target is None:
                    contact = Contact(
                        id=new_id(),
                        org_id=org_id,
                        external_id=None,
                        name=None,
                        mobile_phone=None,
                        whatsapp_number=None,
                        preferred_language=None,
                        consent_sms=False,
                        consent_whatsapp=False,
                        time_zone=None,
                        custom={},
                        created_at=now,
                        updated_at=now,
                    )
                    _apply_row(contact, row)
                    if not dry_run:
                        session.add(contact)
                    if contact.external_id:
                        by_external[contact.external_id] = contact
                    if contact.mobile_phone:
                        by_phone[contact.mobile_phone].append(contact)
                    event("contact.created", contact, {"contact": contact_record(contact)})
                    counts["created"] += 1
                    continue
                before = contact_record(target)
                old_phone = target.mobile_phone
                _apply_row(target, row)
                changes = _changes(before, contact_record(target))
                if not changes:
                    counts["unchanged"] += 1
                    continue
                target.updated_at = now
                if target.mobile_phone != old_phone:
                    if old_phone and target in by_phone.get(old_phone, []):
                        by_phone[old_phone].remove(target)
                    if target.mobile_phone:
                        by_phone[target.mobile_phone].append(target)
                event(
                    "contact.updated",
                    target,
                    {"contact": contact_record(target), "changes": changes},
                )
                counts["updated"] += 1
            if not dry_run:
                session.flush()
                record_events(session, events)
        state.created += counts["created"]
        state.updated += counts["updated"]
        state.unchanged += counts["unchanged"]
        for number, problems in failures:
            state.fail(number, problems)

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
        problems: list[tuple[str | None, str]] = []
        _clean_custom(data.custom, problems)
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
                custom=_merge({}, data.custom),
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
        problems: list[tuple[str | None, str]] = []
        if data.custom is not None:
            _clean_custom(data.custom, problems)
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
                case.custom = _merge(case.custom or {}, data.custom)
            event_type = "case.updated"
            if data.status is not None and data.status.value != case.status:
                event_type = self._move(case, data.status, now)
            changes = _changes(before, case_record(case))
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
            changes = _changes(before, case_record(case))
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
