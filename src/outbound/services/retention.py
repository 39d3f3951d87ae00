"""Retention and erasure: message bodies and payloads past their time, a person on request.

- :meth:`Retention.purge_bodies`: the text, context and template parameters of messages
  accepted more than ``body_retention_days`` ago, and the text and raw payload of customers'
  messages received before then, are removed, in batches of their own transactions. Statuses,
  their history, the rollups and every other column stay: reports and tracking keep working.
- :meth:`Retention.erase_number` and :meth:`Retention.erase_contact`: every trace of a phone
  number in the organisation (messages to it, customers' messages from it, consent, the
  conversations' number, agents' notes, live updates of the event stream, webhook events, the
  rows of lists uploaded for flow runs, the contact) is removed or blanked, and an event
  records what was done (with the number masked).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import (
    Case,
    ConsentEvent,
    Contact,
    Conversation,
    ConversationNote,
    FlowRun,
    FlowRunRow,
    InboundMessage,
    Message,
    Recipient,
    SendRequest,
    StreamEvent,
)
from outbound.adapters.queue.webhooks import erase_numbers, scrub_numbers
from outbound.clock import Clock
from outbound.domain.numbers import mask_number, normalize_number
from outbound.errors import InvalidNumberError, InvalidRequestError, NotFoundError
from outbound.services.events import record_event
from outbound.texts import N_

__all__ = ["ERASED", "RETENTION_BATCH", "Retention"]

log = logging.getLogger(__name__)

RETENTION_BATCH = 1_000
ERASED = "erased"
"""What an erased number or text is replaced with where a value is required."""


class Retention:
    """Removes what must not be kept."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        body_retention_days: float | None = None,
        default_region: str | None = None,
        batch: int = RETENTION_BATCH,
    ) -> None:
        self._db = db
        self._clock = clock
        self._days = body_retention_days
        self._region = default_region
        self._batch = batch

    def purge_bodies(self) -> tuple[int, int]:
        """Remove bodies and payloads older than the retention; returns (messages, customers'
        messages) cleared. Nothing when no retention is set."""
        if self._days is None:
            return 0, 0
        cutoff = self._clock.now() - timedelta(days=self._days)
        messages = self._batches(
            sa.select(Message.id).where(
                Message.created_at < cutoff,
                sa.or_(
                    Message.body.is_not(None),
                    Message.context.is_not(None),
                    Message.template_parameters.is_not(None),
                ),
            ),
            lambda ids: (
                sa.update(Message)
                .where(Message.id.in_(ids))
                .values(body=None, context=sa.null(), template_parameters=sa.null())
            ),
        )
        inbound = self._batches(
            sa.select(InboundMessage.id).where(
                InboundMessage.received_at < cutoff, InboundMessage.body != ""
            ),
            lambda ids: (
                sa.update(InboundMessage).where(InboundMessage.id.in_(ids)).values(body="", raw={})
            ),
        )
        if messages or inbound:
            log.info("retention: cleared %s messages and %s customers' messages", messages, inbound)
        return messages, inbound

    def _batches(self, pick: sa.Select[Any], clear: Any) -> int:
        done = 0
        while True:
            with self._db.transaction() as session:
                ids = list(session.execute(pick.limit(self._batch)).scalars())
                if ids:
                    session.execute(clear(ids).execution_options(synchronize_session=False))
            done += len(ids)
            if len(ids) < self._batch:
                return done

    # --- erasure ------------------------------------------------------------------------

    def erase_number(self, org_id: str, number: str, *, source: str = "api") -> dict[str, Any]:
        """Erase every trace of ``number`` in the organisation; returns what was erased."""
        try:
            e164 = normalize_number(number, self._region)
        except InvalidNumberError as exc:
            raise InvalidRequestError(exc.reason, field="phone_number") from exc
        with self._db.transaction() as session:
            counts = self._erase(session, org_id, [e164])
            contacts = list(
                session.execute(
                    sa.select(Contact).where(
                        Contact.org_id == org_id,
                        sa.or_(Contact.mobile_phone == e164, Contact.whatsapp_number == e164),
                    )
                ).scalars()
            )
            for contact in contacts:
                self._erase_contact_row(session, contact)
            counts["contacts"] = len(contacts)
            return self._record(session, org_id, "number.erased", None, [e164], counts, source)

    def erase_contact(self, org_id: str, contact_id: str, *, source: str = "api") -> dict[str, Any]:
        """Erase a contact: its numbers everywhere, then the contact itself."""
        with self._db.transaction() as session:
            contact = session.execute(
                self._db.for_update(
                    sa.select(Contact).where(Contact.org_id == org_id, Contact.id == contact_id)
                )
            ).scalar_one_or_none()
            if contact is None:
                raise NotFoundError(N_("no contact %(contact)r", contact=contact_id))
            numbers = sorted({n for n in (contact.mobile_phone, contact.whatsapp_number) if n})
            counts = self._erase(session, org_id, numbers)
            self._erase_contact_row(session, contact)
            counts["contacts"] = 1
            return self._record(
                session, org_id, "contact.erased", contact_id, numbers, counts, source
            )

    @staticmethod
    def _erase_contact_row(session: Any, contact: Contact) -> None:
        # Cases keep their history without the person.
        session.execute(
            sa.update(Case).where(Case.contact_id == contact.id).values(contact_id=None)
        )
        session.execute(
            sa.update(Conversation)
            .where(Conversation.contact_id == contact.id)
            .values(contact_id=None)
        )
        session.delete(contact)
        session.flush()

    @staticmethod
    def _erase(session: Any, org_id: str, numbers: Iterable[str]) -> dict[str, Any]:
        numbers = list(numbers)
        if not numbers:
            return {
                "messages": 0,
                "inbound_messages": 0,
                "conversations": 0,
                "consent": 0,
                "webhook_events": 0,
                "conversation_notes": 0,
                "stream_events": 0,
                "flow_run_rows": 0,
                "send_responses": 0,
            }
        messages = session.execute(
            sa.update(Message)
            .where(Message.org_id == org_id, Message.to_number.in_(numbers))
            .values(
                to_number=None,
                to_raw=ERASED,
                body=None,
                context=sa.null(),
                template_parameters=sa.null(),
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        inbound = session.execute(
            sa.update(InboundMessage)
            .where(InboundMessage.org_id == org_id, InboundMessage.from_number.in_(numbers))
            .values(from_number=ERASED, body="", raw={})
            .execution_options(synchronize_session=False)
        ).rowcount
        conversations = session.execute(
            sa.update(Conversation)
            .where(Conversation.org_id == org_id, Conversation.customer_number.in_(numbers))
            .values(customer_number=ERASED)
            .execution_options(synchronize_session=False)
        ).rowcount
        consent = session.execute(
            sa.delete(ConsentEvent).where(
                ConsentEvent.org_id == org_id, ConsentEvent.number.in_(numbers)
            )
        ).rowcount
        # A number that withdrew consent stays withdrawn (the one row kept is what stops
        # sending to it again); everything else about it goes.
        session.execute(
            sa.delete(Recipient).where(
                Recipient.org_id == org_id,
                Recipient.number.in_(numbers),
                Recipient.opted_out.is_(False),
            )
        )
        # The integrator's copies: events for its webhooks, sent or still waiting.
        webhook_events = erase_numbers(session, org_id, numbers, ERASED)
        return {
            "messages": messages,
            "inbound_messages": inbound,
            "conversations": conversations,
            "consent": consent,
            "webhook_events": webhook_events,
            **_erase_elsewhere(session, org_id, numbers),
        }

    def _record(
        self,
        session: Any,
        org_id: str,
        kind: str,
        contact_id: str | None,
        numbers: list[str],
        counts: dict[str, Any],
        source: str,
    ) -> dict[str, Any]:
        now = self._clock.now()
        data = {"numbers": [mask_number(n) for n in numbers], "erased": counts}
        record_event(
            session,
            org_id=org_id,
            type=kind,
            record_type="contact",
            record_id=contact_id,
            data=data,
            source=source,
            now=now,
        )
        log.info("%s for %s: %s", kind, ", ".join(data["numbers"]), counts)
        return {**data, "erased_at": now.isoformat()}


def _naming(column: Any, numbers: Sequence[str]) -> sa.ColumnElement[bool]:
    """``column`` (a text, or a JSON document read as text) holds one of ``numbers``."""
    text = column if isinstance(column.type, sa.Text) else sa.cast(column, sa.Text)
    return sa.or_(*(text.contains(number, autoescape=True) for number in numbers))


def _erase_elsewhere(session: Any, org_id: str, numbers: Sequence[str]) -> dict[str, int]:
    """The number in the free texts and documents that may name it: agents' notes (the number
    replaced), live updates of the event stream and the rows of lists uploaded for flow runs
    (each text naming it replaced by ``erased``, message bodies cleared)."""
    notes = session.execute(
        sa.select(ConversationNote.id, ConversationNote.body).where(
            ConversationNote.org_id == org_id, _naming(ConversationNote.body, numbers)
        )
    ).all()
    for note in notes:
        body = note.body
        for number in numbers:
            body = body.replace(number, ERASED)
        session.execute(
            sa.update(ConversationNote).where(ConversationNote.id == note.id).values(body=body)
        )
    stream = session.execute(
        sa.select(StreamEvent.id, StreamEvent.payload).where(
            StreamEvent.org_id == org_id, _naming(StreamEvent.payload, numbers)
        )
    ).all()
    for event in stream:
        session.execute(
            sa.update(StreamEvent)
            .where(StreamEvent.id == event.id)
            .values(payload=scrub_numbers(event.payload, numbers, ERASED))
        )
    rows = session.execute(
        sa.select(FlowRunRow.run_id, FlowRunRow.seq, FlowRunRow.data)
        .join(FlowRun, FlowRun.id == FlowRunRow.run_id)
        .where(FlowRun.org_id == org_id, _naming(FlowRunRow.data, numbers))
    ).all()
    for row in rows:
        session.execute(
            sa.update(FlowRunRow)
            .where(FlowRunRow.run_id == row.run_id, FlowRunRow.seq == row.seq)
            .values(data=scrub_numbers(row.data, numbers, ERASED))
        )
    # Send responses kept for idempotent replays list each contact's number.
    responses = session.execute(
        sa.select(SendRequest.id, SendRequest.response).where(
            SendRequest.org_id == org_id,
            SendRequest.response.is_not(None),
            _naming(SendRequest.response, numbers),
        )
    ).all()
    for response in responses:
        session.execute(
            sa.update(SendRequest)
            .where(SendRequest.id == response.id)
            .values(response=scrub_numbers(response.response, numbers, ERASED))
        )
    return {
        "conversation_notes": len(notes),
        "stream_events": len(stream),
        "flow_run_rows": len(rows),
        "send_responses": len(responses),
    }
