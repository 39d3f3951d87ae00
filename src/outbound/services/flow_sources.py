"""Where a flow run's recipients come from: contacts, cases, an uploaded list, or one event.

A run reads its source in key order from its checkpoint (the cursor), a page at a time, never
all at once (:func:`record_pages`): contacts and cases by id, uploaded rows by number. Each
record becomes the context a flow's conditions and recipient mapping read (``contact``,
``case``, ``record``, ``row``, ``event``, ``params``, ``run``). The simple conditions on a
case's status are pushed down to SQL (:func:`source_query`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.models import Case, Contact, Event, Flow, FlowRun, FlowRunRow
from outbound.domain.contacts import case_record, contact_record
from outbound.domain.flags import TRUE_WORDS
from outbound.domain.flows import Condition, FlowDefinition

__all__ = [
    "PAGE_SIZE",
    "contact_from_row",
    "count_records",
    "event_context",
    "record_pages",
    "run_conditions",
    "run_definition",
    "source_query",
]

PAGE_SIZE = 500


def _truthy(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in TRUE_WORDS


def contact_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """A contact-shaped view of an uploaded row, so a flow's default mapping reads it too.

    Columns: ``mobile_phone`` (or ``phone``), ``whatsapp_number``, ``name``,
    ``preferred_language`` (or ``locale``/``language``), ``time_zone`` (or ``timezone``),
    ``consent_sms``/``consent_whatsapp`` (or ``optin``, for both); every column stays readable
    as ``record.<column>``.
    """
    phone = row.get("mobile_phone") or row.get("phone") or row.get("tocontactid")
    optin = row.get("optin")
    return {
        "id": row.get("id") or row.get("external_id"),
        "name": row.get("name"),
        "mobile_phone": phone,
        "whatsapp_number": row.get("whatsapp_number") or phone,
        "preferred_language": row.get("preferred_language")
        or row.get("locale")
        or row.get("language"),
        "time_zone": row.get("time_zone") or row.get("timezone"),
        "consent": {
            "sms": _truthy(row.get("consent_sms", optin)) or False,
            "whatsapp": _truthy(row.get("consent_whatsapp", optin)) or False,
        },
        "custom": row,
    }


def event_context(event: Event, session: Session | None = None) -> dict[str, Any]:
    """What a flow sees of an event: ``event``, and the records its data carries."""
    data = dict(event.data or {})
    context: dict[str, Any] = {
        "event": {
            "id": event.id,
            "type": event.type,
            "record_type": event.record_type,
            "record_id": event.record_id,
            "source": event.source,
            "occurred_at": event.occurred_at.isoformat(),
        },
        **data,
    }
    if "record" not in context:
        context["record"] = data.get("case") or data.get("contact")
    record = context.get("record")
    if (
        session is not None
        and context.get("contact") is None
        and isinstance(record, dict)
        and isinstance(record.get("contact_id"), str)
    ):
        # Another system's record may name one of our contacts.
        contact = session.execute(
            sa.select(Contact).where(
                Contact.org_id == event.org_id, Contact.id == record["contact_id"]
            )
        ).scalar_one_or_none()
        if contact is not None:
            context["contact"] = contact_record(contact)
    return context


def run_definition(run: FlowRun, session: Session) -> FlowDefinition:
    """The definition the run started with (that of its flow, for runs stored without one)."""
    stored = (run.params or {}).get("definition")
    if stored is None:
        flow = session.get(Flow, run.flow_id)
        assert flow is not None
        stored = flow.definition
    return FlowDefinition.from_dict(stored)


def run_conditions(run: FlowRun, definition: FlowDefinition) -> list[Condition]:
    """The flow's conditions and those the run was started with (``--where``, the API's
    ``conditions``)."""
    extra = [
        Condition(field=c["field"], op=c.get("op", "eq"), value=c.get("value"))
        for c in (run.params or {}).get("conditions", [])
    ]
    return [*definition.conditions, *extra]


def source_query(run: FlowRun, definition: FlowDefinition) -> sa.Select[Any]:
    """The run's records as a query, with the simple conditions pushed down to SQL."""
    if run.source == "cases":
        query = sa.select(Case.id).where(Case.org_id == run.org_id)
        for condition in run_conditions(run, definition):
            if condition.field in {"case.status", "record.status"}:
                if condition.op == "eq" and isinstance(condition.value, str):
                    query = query.where(Case.status == condition.value)
                elif condition.op == "in" and isinstance(condition.value, list):
                    query = query.where(Case.status.in_([str(v) for v in condition.value]))
        return query
    return sa.select(Contact.id).where(Contact.org_id == run.org_id)


def count_records(session: Session, run: FlowRun) -> int:
    """How many records the run's source holds (for progress)."""
    if run.source == "event":
        return 1
    if run.source == "csv":
        return int(
            session.execute(
                sa.select(sa.func.count())
                .select_from(FlowRunRow)
                .where(FlowRunRow.run_id == run.id)
            ).scalar_one()
        )
    query = source_query(run, run_definition(run, session))
    return int(
        session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    )


def record_pages(
    session: Session, run: FlowRun, definition: FlowDefinition
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The run's records after its cursor, in key order, as ``(key, flow context)``; the key
    of the last record read becomes the run's next cursor."""
    base = {
        "params": (run.params or {}).get("values", {}),
        "run": {"id": run.id, "trigger": run.trigger},
    }
    if run.source == "event":
        if run.cursor is None:
            context = _event_run_context(session, run)
            if context is not None:
                yield "event", {**base, **context}
        return
    after = run.cursor
    while True:
        if run.source == "csv":
            page = _row_page(session, run, after, base)
        elif run.source == "cases":
            page = _case_page(session, run, definition, after, base)
        else:
            page = _contact_page(session, run, after, base)
        yield from page
        if len(page) < PAGE_SIZE:
            return
        after = page[-1][0]


_Page = list[tuple[str, dict[str, Any]]]


def _row_page(session: Session, run: FlowRun, after: str | None, base: dict[str, Any]) -> _Page:
    start = int(after) if after is not None else 0
    rows = session.execute(
        sa.select(FlowRunRow.seq, FlowRunRow.data)
        .where(FlowRunRow.run_id == run.id, FlowRunRow.seq > start)
        .order_by(FlowRunRow.seq)
        .limit(PAGE_SIZE)
    ).all()
    return [
        (str(seq), {**base, "record": data, "row": data, "contact": contact_from_row(data)})
        for seq, data in rows
    ]


def _case_page(
    session: Session,
    run: FlowRun,
    definition: FlowDefinition,
    after: str | None,
    base: dict[str, Any],
) -> _Page:
    ids = source_query(run, definition).order_by(Case.id).limit(PAGE_SIZE)
    if after is not None:
        ids = ids.where(Case.id > after)
    rows = session.execute(
        sa.select(Case, Contact)
        .outerjoin(Contact, Contact.id == Case.contact_id)
        .where(Case.id.in_(ids.scalar_subquery()))
        .order_by(Case.id)
    ).all()
    page: _Page = []
    for case, contact in rows:
        record = case_record(case)
        page.append(
            (
                case.id,
                {
                    **base,
                    "case": record,
                    "record": record,
                    "contact": contact_record(contact) if contact else None,
                },
            )
        )
    return page


def _contact_page(session: Session, run: FlowRun, after: str | None, base: dict[str, Any]) -> _Page:
    query = (
        sa.select(Contact).where(Contact.org_id == run.org_id).order_by(Contact.id).limit(PAGE_SIZE)
    )
    if after is not None:
        query = query.where(Contact.id > after)
    page: _Page = []
    for contact in session.execute(query).scalars():
        record = contact_record(contact)
        page.append((contact.id, {**base, "contact": record, "record": record}))
    return page


def _event_run_context(session: Session, run: FlowRun) -> dict[str, Any] | None:
    event = session.get(Event, run.event_id) if run.event_id is not None else None
    if event is None:
        return None
    if not (run.params or {}).get("delayed"):
        return event_context(event, session)
    # A delayed run looks at the record as it is now ("if it is still resolved").
    context = event_context(event, session)
    if event.record_type == "case" and event.record_id:
        case = session.execute(
            sa.select(Case).where(Case.org_id == event.org_id, Case.id == event.record_id)
        ).scalar_one_or_none()
        if case is None:
            return None
        contact = session.get(Contact, case.contact_id) if case.contact_id else None
        record = case_record(case)
        context.update(
            case=record,
            record=record,
            contact=contact_record(contact) if contact is not None else None,
        )
    elif event.record_type == "contact" and event.record_id:
        found = session.execute(
            sa.select(Contact).where(Contact.org_id == event.org_id, Contact.id == event.record_id)
        ).scalar_one_or_none()
        if found is None:
            return None
        record = contact_record(found)
        context.update(contact=record, record=record)
    return context
