"""Creating and updating contacts from a CSV file, read line by line.

The file is never held whole: :func:`text_lines` decodes it as it arrives, and rows are
written (with their events) in transactions of :data:`IMPORT_CHUNK_ROWS`. The field rules are
those of the API (:mod:`outbound.domain.contacts`).
"""

from __future__ import annotations

import codecs
import csv
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Contact, new_id
from outbound.clock import Clock
from outbound.domain.contacts import (
    CONTACT_FIELDS,
    Problem,
    changed_fields,
    check_custom,
    clean_contact,
    contact_record,
)
from outbound.domain.flags import parse_flag
from outbound.errors import ImportInputError, message_of
from outbound.schemas import MAX_IMPORT_ERRORS, ImportResult, ImportRowError
from outbound.services.events import record_events
from outbound.texts import N_

__all__ = [
    "CSV_COLUMNS",
    "IMPORT_CHUNK_ROWS",
    "ContactImport",
    "text_lines",
]

log = logging.getLogger(__name__)

CSV_COLUMNS = CONTACT_FIELDS
CUSTOM_PREFIX = "custom."
IMPORT_CHUNK_ROWS = 500
MAX_LINE_CHARS = 1 << 20
MAX_COLUMN_NAME_CHARS = 100


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
                N_("a line is longer than %(limit)s characters", limit=MAX_LINE_CHARS),
                field="body",
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
            N_(
                "the first row must be a header naming the columns "
                "(external_id,name,mobile_phone,...)"
            ),
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
                N_("column %(position)s of the header has no usable name", position=position),
                field="header",
            )
        if len(column.name) > MAX_COLUMN_NAME_CHARS:
            raise ImportInputError(
                N_(
                    "column %(position)s: names are at most %(limit)s characters",
                    position=position,
                    limit=MAX_COLUMN_NAME_CHARS,
                ),
                field="header",
            )
        if column.field in {c.field for c in columns}:
            raise ImportInputError(
                N_("column %(column)r appears twice", column=column.field), field="header"
            )
        columns.append(column)
    if not {"external_id", "mobile_phone"} & {c.field for c in columns}:
        raise ImportInputError(
            N_("the header needs an external_id or a mobile_phone column to match contacts"),
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
) -> tuple[_Row, list[Problem]]:
    problems: list[Problem] = []
    if len(cells) != len(header):
        problems.append(
            (
                None,
                N_(
                    "has %(fields)s fields; the header has %(columns)s",
                    fields=len(cells),
                    columns=len(header),
                ),
            )
        )
        return _Row(number, {}, {}), problems
    values: dict[str, Any] = {}
    custom: dict[str, str] = {}
    for column, cell in zip(header, cells, strict=True):
        value = cell.strip()
        if not value:
            continue  # an empty cell leaves the field as it is
        if "\x00" in value:
            problems.append((column.field, N_("must not contain the NUL character (U+0000)")))
        elif "\ufffd" in value:
            problems.append((column.field, N_("is not valid UTF-8 text")))
        elif column.custom:
            custom[column.name] = value
            check_custom({column.name: value}, problems)
        elif column.name in {"consent_sms", "consent_whatsapp"}:
            try:
                values[column.name] = parse_flag(value)
            except ValueError as exc:
                problems.append((column.name, message_of(exc)))
        else:
            values.update(clean_contact({column.name: value}, region, problems))
    if not problems and not values.get("external_id") and not values.get("mobile_phone"):
        problems.append(("mobile_phone", N_("a row needs a mobile_phone or an external_id")))
    return _Row(number, values, custom), problems


def _apply_row(contact: Contact, row: _Row) -> None:
    for name, value in row.values.items():
        setattr(contact, name, value)
    if row.custom:
        contact.custom = {**(contact.custom or {}), **row.custom}


# --- the outcome --------------------------------------------------------------------------


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
    # Dry run: what earlier chunks would have written, which later rows must match.
    simulated: _Simulated = field(default_factory=lambda: _Simulated())

    def fail(self, row: int, problems: list[Problem]) -> None:
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


# --- the use case -------------------------------------------------------------------------


class ContactImport:
    """Imports contacts from CSV into the organisation given, raising their events."""

    def __init__(self, db: Database, clock: Clock, region: str) -> None:
        self._db = db
        self._clock = clock
        self._region = region

    def run(
        self, org_id: str, lines: Iterable[str], *, dry_run: bool = False, source: str = "import"
    ) -> ImportResult:
        """Create or update contacts from CSV text, read line by line.

        The first row names the columns: those of :data:`CSV_COLUMNS`, and any other (or
        ``custom.<name>``) is a custom field. A row updates the contact with its
        ``external_id`` when it has one, else the one with its ``mobile_phone``; otherwise it
        creates one. An empty cell leaves the field unchanged. Rows are written (with their
        events) in transactions of :data:`IMPORT_CHUNK_ROWS`; a refused row is reported and
        skipped. ``dry_run`` validates and matches without writing, counting each row as the
        import would (a contact repeated anywhere in the file is created once, then updated
        or unchanged).

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
                        raise ImportInputError(
                            N_("unreadable header: %(error)s", error=str(exc)), field="header"
                        ) from exc
                    state.rows += 1
                    state.fail(
                        number, [(None, N_("not readable as CSV: %(error)s", error=str(exc)))]
                    )
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
                ImportRowError(
                    row=number + 1,
                    field=None,
                    message=N_("stopped: %(reason)s", reason=exc.message),
                )
            )
        if header is None:
            raise ImportInputError(
                N_("the file is empty; it needs a header row (external_id,name,mobile_phone,...)"),
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
                        state.fail(row.number, [(None, N_("conflicted with a concurrent change"))])
        state.flush_errors()

    def _write_chunk(self, org_id: str, rows: list[_Row], state: _ImportState, source: str) -> None:
        """Upsert ``rows`` in one transaction; counts are added to ``state`` once committed."""
        now = self._clock.now()
        dry_run = state.dry_run
        with (
            self._db.read() if dry_run else self._db.transaction() as session,
            session.no_autoflush,
        ):
            known = _Known.load(session, org_id, rows)
            if dry_run:
                state.simulated.overlay(known, rows)
            chunk = _ChunkWriter(session, known, source, now)
            for row in rows:
                chunk.write(row, dry_run=dry_run)
            if not dry_run:
                session.flush()
                record_events(session, chunk.events)
        if dry_run:
            for contact in chunk.touched:
                state.simulated.record(contact)
        chunk.outcome.add_to(state)


# --- writing one chunk ----------------------------------------------------------------------


@dataclass
class _ChunkOutcome:
    """What writing one chunk did; added to the import's counts once committed."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failures: list[tuple[int, list[Problem]]] = field(default_factory=list)

    def add_to(self, state: _ImportState) -> None:
        state.created += self.created
        state.updated += self.updated
        state.unchanged += self.unchanged
        for number, problems in self.failures:
            state.fail(number, problems)


@dataclass
class _Known:
    """The organisation's contacts a chunk's rows may match, by ``external_id`` and by
    ``mobile_phone``; kept current as rows create contacts and change numbers, so that a row
    matches what an earlier row of the chunk wrote."""

    org_id: str
    by_external: dict[str, Contact]
    by_phone: defaultdict[str, list[Contact]]

    @classmethod
    def load(cls, session: Session, org_id: str, rows: list[_Row]) -> _Known:
        """The contacts ``rows`` name: by ``external_id``, else by ``mobile_phone``."""
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
        by_phone: defaultdict[str, list[Contact]] = defaultdict(list)
        if phones:
            found = session.execute(
                sa.select(Contact)
                .where(Contact.org_id == org_id, Contact.mobile_phone.in_(phones))
                .order_by(Contact.created_at, Contact.id)
            ).scalars()
            for c in found:
                by_phone[c.mobile_phone or ""].append(c)
        return cls(org_id, by_external, by_phone)

    def candidates(self, row: _Row) -> list[Contact]:
        """The contacts the row may update: the one with its ``external_id`` when it has
        one, else those with its ``mobile_phone`` (oldest first)."""
        external_id = row.values.get("external_id")
        if external_id:
            found = self.by_external.get(external_id)
            return [found] if found is not None else []
        return self.by_phone.get(row.values["mobile_phone"], [])

    def add(self, contact: Contact) -> None:
        if contact.external_id:
            self.by_external[contact.external_id] = contact
        if contact.mobile_phone:
            self.by_phone[contact.mobile_phone].append(contact)

    def renumber(self, contact: Contact, old_phone: str | None) -> None:
        """The contact's ``mobile_phone`` was ``old_phone``."""
        if contact.mobile_phone == old_phone:
            return
        if old_phone and contact in self.by_phone.get(old_phone, []):
            self.by_phone[old_phone].remove(contact)
        if contact.mobile_phone:
            self.by_phone[contact.mobile_phone].append(contact)


@dataclass
class _Simulated:
    """Dry run: the contacts earlier chunks created or changed, in memory only, indexed as
    :class:`_Known` is, so that a later row matches them as it would after a real write."""

    contacts: dict[str, Contact] = field(default_factory=dict)
    keys: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    by_external: dict[str, Contact] = field(default_factory=dict)
    by_phone: defaultdict[str, list[Contact]] = field(default_factory=lambda: defaultdict(list))

    def record(self, contact: Contact) -> None:
        old_external, old_phone = self.keys.get(contact.id, (None, None))
        if old_external and self.by_external.get(old_external) is contact:
            del self.by_external[old_external]
        if old_phone and contact in self.by_phone.get(old_phone, []):
            self.by_phone[old_phone].remove(contact)
        self.contacts[contact.id] = contact
        self.keys[contact.id] = (contact.external_id, contact.mobile_phone)
        if contact.external_id:
            self.by_external[contact.external_id] = contact
        if contact.mobile_phone:
            self.by_phone[contact.mobile_phone].append(contact)

    def overlay(self, known: _Known, rows: list[_Row]) -> None:
        """Put the simulated contacts ``rows`` may match in ``known``, in place of the
        database's (older) copies of them."""
        if not self.contacts:
            return
        known.by_external = {
            k: c for k, c in known.by_external.items() if c.id not in self.contacts
        }
        for phone, found in known.by_phone.items():
            known.by_phone[phone] = [c for c in found if c.id not in self.contacts]
        for row in rows:
            external_id = row.values.get("external_id")
            if external_id:
                if external_id in self.by_external:
                    known.by_external[external_id] = self.by_external[external_id]
                continue
            number = str(row.values.get("mobile_phone") or "")
            for contact in self.by_phone.get(number, []):
                if contact not in known.by_phone[number]:
                    known.by_phone[number].append(contact)


class _ChunkWriter:
    """Creates or updates the contact of each row of a chunk, keeping the events to raise."""

    def __init__(self, session: Session, known: _Known, source: str, now: datetime) -> None:
        self._session = session
        self._known = known
        self._source = source
        self._now = now
        self.outcome = _ChunkOutcome()
        self.events: list[dict[str, Any]] = []
        self.touched: list[Contact] = []

    def write(self, row: _Row, *, dry_run: bool) -> None:
        """Create or update the row's contact (only in memory when ``dry_run``)."""
        matches = self._known.candidates(row)
        if len(matches) > 1:
            problem = N_(
                "%(count)s contacts have this mobile_phone; add an external_id column to say "
                "which one",
                count=len(matches),
            )
            self.outcome.failures.append((row.number, [("mobile_phone", problem)]))
        elif matches:
            self._update(matches[0], row)
        else:
            self._create(row, dry_run=dry_run)

    def _create(self, row: _Row, *, dry_run: bool) -> None:
        contact = Contact(
            id=new_id(),
            org_id=self._known.org_id,
            external_id=None,
            name=None,
            mobile_phone=None,
            whatsapp_number=None,
            preferred_language=None,
            consent_sms=False,
            consent_whatsapp=False,
            time_zone=None,
            custom={},
            created_at=self._now,
            updated_at=self._now,
        )
        _apply_row(contact, row)
        if not dry_run:
            self._session.add(contact)
        self._known.add(contact)
        self.touched.append(contact)
        self._event("contact.created", contact, {"contact": contact_record(contact)})
        self.outcome.created += 1

    def _update(self, contact: Contact, row: _Row) -> None:
        before = contact_record(contact)
        old_phone = contact.mobile_phone
        _apply_row(contact, row)
        changes = changed_fields(before, contact_record(contact))
        if not changes:
            self.outcome.unchanged += 1
            return
        contact.updated_at = self._now
        self._known.renumber(contact, old_phone)
        self.touched.append(contact)
        self._event(
            "contact.updated", contact, {"contact": contact_record(contact), "changes": changes}
        )
        self.outcome.updated += 1

    def _event(self, type: str, contact: Contact, data: dict[str, Any]) -> None:
        self.events.append(
            {
                "org_id": self._known.org_id,
                "type": type,
                "record_type": "contact",
                "record_id": contact.id,
                "data": data,
                "source": self._source,
                "occurred_at": self._now,
            }
        )
