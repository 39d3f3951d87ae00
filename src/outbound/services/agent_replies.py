"""Agents answer customers: replies through the outbox, internal notes, canned responses.

An answer is an outbound message like any other (durable, retried, tracked, its delivery
reports applied), sent on the conversation's channel to the customer's number, and linked to the
conversation (``messages.conversation_id``) and, when the conversation answers a message linked
to a record, to that record's timeline. Only the conversation's agent, or a supervisor, answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import (
    CannedResponse,
    Case,
    Channel,
    Contact,
    Conversation,
    ConversationNote,
    Message,
    Template,
    User,
)
from outbound.adapters.metrics import Metrics
from outbound.clock import Clock
from outbound.domain.encoding import sms_info
from outbound.domain.locales import choose_text
from outbound.domain.planning import TemplateTexts
from outbound.domain.statuses import MessageStatus
from outbound.domain.templates import parse_template, render
from outbound.errors import (
    ConflictError,
    InvalidRequestError,
    MissingPlaceholderError,
    NotFoundError,
    PermissionDeniedError,
    TemplateSyntaxError,
    message_of,
)
from outbound.services.consent import WHATSAPP_WINDOW, numbers_in_window, opted_out_numbers
from outbound.services.conversation_log import publish, record_change
from outbound.services.lifecycle import Actor
from outbound.services.outbound_text import queue_text_message
from outbound.texts import N_

__all__ = ["AgentReplyService", "ReplyResult"]

MAX_REPLY_CHARACTERS = 1600
MAX_NOTE_CHARACTERS = 10_000
SHORTCODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


@dataclass(frozen=True)
class ReplyResult:
    """The answer as queued: its message id and how it will travel."""

    message_id: str
    conversation_id: str
    status: str
    body: str | None
    encoding: str | None
    segments: int | None
    locale: str | None
    created_at: datetime


class AgentReplyService:
    """Answers, notes and canned responses."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        max_attempts: int,
        metrics: Metrics | None = None,
        on_released: Callable[[str], object] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._max_attempts = max_attempts
        self._metrics = metrics
        # Called with an agent's id when an answer freed their capacity (an assignment pass).
        self._on_released = on_released

    # --- answers --------------------------------------------------------------------------

    def reply(
        self,
        actor: Actor,
        conversation_id: str,
        *,
        body: str | None = None,
        template_id: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> ReplyResult:
        if (body is None) == (template_id is None):
            raise InvalidRequestError(N_("give either body or template_id"), field="body")
        now = self._clock.now()
        with self._db.transaction(urgent=True) as session:
            conversation = self._conversation(session, actor.org_id, conversation_id, lock=True)
            if not actor.supervisor and conversation.assigned_to != actor.user_id:
                raise PermissionDeniedError(
                    N_(
                        "only the agent assigned to this conversation, or a supervisor, "
                        "may answer it"
                    )
                )
            if conversation.status not in {"active", "waiting", "wrap_up"}:
                hint = (
                    N_("accept it first")
                    if conversation.status == "open"
                    else N_("reopen it first")
                )
                raise ConflictError(
                    N_(
                        "cannot answer a conversation that is %(status)s; %(hint)s",
                        status=conversation.status,
                        hint=hint,
                    ),
                    code="invalid_state",
                    details={"status": conversation.status},
                )
            channel = session.get(Channel, conversation.channel_id)
            if channel is None:
                raise NotFoundError(N_("no channel %(channel)r", channel=conversation.channel_id))
            number = conversation.customer_number
            if number in opted_out_numbers(session, channel.id, [number]):
                raise ConflictError(
                    N_(
                        "the customer has withdrawn consent on this channel (STOP); "
                        "they can write START to receive messages again"
                    ),
                    code="consent_withdrawn",
                )
            context = self._context(session, conversation, actor)
            send_as_template = False
            template_parameters: dict[str, Any] | None = None
            locale: str | None = None
            content_sid: str | None = None
            template_version: int | None = None
            if template_id is not None:
                template = session.execute(
                    sa.select(Template).where(
                        Template.id == template_id, Template.org_id == actor.org_id
                    )
                ).scalar_one_or_none()
                if template is None:
                    raise InvalidRequestError(
                        N_("no template %(template)r", template=template_id), field="template_id"
                    )
                if template.channel_type != channel.type:
                    raise InvalidRequestError(
                        N_(
                            "template is for %(template_channel)s; this conversation is on "
                            "%(channel)s",
                            template_channel=template.channel_type,
                            channel=channel.type,
                        ),
                        field="template_id",
                    )
                chosen = choose_text(
                    requested=context.get("_locale"),
                    localizations=template.localizations,
                    template_default_locale=template.default_locale,
                    template_default_text=template.default_text,
                    configuration_default_locale=None,
                    fallbacks=template.fallbacks,
                )
                if channel.type == "whatsapp":
                    # The approved template of the language sent, and that language's text.
                    chosen, content_sid = TemplateTexts.of(
                        template.default_locale,
                        template.default_text,
                        template.localizations,
                        content_sid=template.content_sid,
                        content_sids=template.content_sids,
                    ).approved(chosen)
                template_version = template.version
                locale = chosen.locale
                values = {**context, **(parameters or {})}
                try:
                    text = render(chosen.text, values)
                except MissingPlaceholderError as exc:
                    raise InvalidRequestError(
                        N_("the template needs a value for {%(placeholder)s}", placeholder=exc.key),
                        field=f"parameters.{exc.key}",
                    ) from exc
                if channel.type == "whatsapp" and content_sid:
                    send_as_template = True
                    template_parameters = {
                        str(i): render("{" + key + "}", values)
                        for i, key in enumerate(parse_template(chosen.text).placeholders, 1)
                    }
            else:
                text = (body or "").strip()
                if not text:
                    raise InvalidRequestError(N_("must not be empty"), field="body")
            if len(text) > MAX_REPLY_CHARACTERS:
                raise InvalidRequestError(
                    N_(
                        "is %(length)s characters; the limit is %(limit)s",
                        length=len(text),
                        limit=MAX_REPLY_CHARACTERS,
                    ),
                    field="body" if template_id is None else "template_id",
                )
            if channel.type == "whatsapp" and not send_as_template:
                if number not in numbers_in_window(session, channel.id, [number], now):
                    templates = [
                        {"id": t.id, "name": t.name}
                        for t in session.execute(
                            sa.select(Template)
                            .where(
                                Template.org_id == actor.org_id,
                                Template.channel_type == "whatsapp",
                                Template.content_sid.is_not(None),
                            )
                            .order_by(Template.name)
                        ).scalars()
                    ]
                    raise ConflictError(
                        N_(
                            "the customer's last message is more than 24 hours old: WhatsApp only "
                            "allows an approved template now (template_id)"
                        ),
                        code="outside_whatsapp_window",
                        details={
                            "window_hours": int(WHATSAPP_WINDOW.total_seconds() // 3600),
                            "templates": templates,
                        },
                    )
            answered = (
                session.get(Message, conversation.answered_message_id)
                if conversation.answered_message_id
                else None
            )
            message_id = queue_text_message(
                session,
                channel,
                number,
                text,
                reason="agent_reply",
                now=now,
                max_attempts=self._max_attempts,
                conversation_id=conversation.id,
                locale=locale,
                template_id=template_id,
                template_version=template_version,
                configuration_id=conversation.configuration_id,
                sent_by_user_id=actor.user_id,
                send_as_template=send_as_template,
                template_parameters=template_parameters,
                content_sid=content_sid,
                regarding=answered,
            )
            info = sms_info(text) if channel.type == "sms" else None
            released = self._answered(session, conversation, actor, now)
            publish(
                session,
                actor.org_id,
                "message.queued",
                {
                    "conversation_id": conversation.id,
                    "message_id": message_id,
                    "direction": "outbound",
                    "status": MessageStatus.QUEUED.value,
                },
                now,
            )
        if released and self._on_released is not None:
            self._on_released(released)
        return ReplyResult(
            message_id=message_id,
            conversation_id=conversation_id,
            status=MessageStatus.QUEUED.value,
            body=text,
            encoding=info.encoding.value if info else None,
            segments=info.segments if info else None,
            locale=locale,
            created_at=now,
        )

    def _answered(
        self, session: Session, conversation: Conversation, actor: Actor, now: datetime
    ) -> str | None:
        """The agent answered: the conversation waits for the customer (no capacity).

        Returns the agent whose capacity this freed, if any."""
        values: dict[str, Any] = {
            "last_agent_message_at": now,
            "waiting_since": None,
            "updated_at": now,
            "last_message_at": now,
            "version": conversation.version + 1,
        }
        if conversation.first_response_at is None:
            values["first_response_at"] = now
            if self._metrics is not None and conversation.last_customer_message_at is not None:
                waited = (now - conversation.created_at).total_seconds()
                self._metrics.first_response.observe(max(0.0, waited))
        from_status = conversation.status
        if from_status == "active":
            values["status"] = "waiting"
        session.execute(
            sa.update(Conversation)
            .where(Conversation.id == conversation.id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        for name, value in values.items():
            set_committed_value(conversation, name, value)
        if from_status == "active" and conversation.assigned_to:
            session.execute(
                sa.update(User)
                .where(User.id == conversation.assigned_to)
                .values(last_released_at=now)
            )
        record_change(
            session,
            conversation,
            kind="agent_replied",
            now=now,
            actor_user_id=actor.user_id,
            from_status=from_status,
            to_status=conversation.status,
        )
        return conversation.assigned_to if from_status == "active" else None

    # --- notes ----------------------------------------------------------------------------

    def add_note(self, actor: Actor, conversation_id: str, body: str) -> ConversationNote:
        text = body.strip()
        if not text:
            raise InvalidRequestError(N_("must not be empty"), field="body")
        if len(text) > MAX_NOTE_CHARACTERS:
            raise InvalidRequestError(
                N_(
                    "is %(length)s characters; the limit is %(limit)s",
                    length=len(text),
                    limit=MAX_NOTE_CHARACTERS,
                ),
                field="body",
            )
        now = self._clock.now()
        with self._db.transaction() as session:
            conversation = self._conversation(session, actor.org_id, conversation_id)
            note = ConversationNote(
                org_id=actor.org_id,
                conversation_id=conversation.id,
                user_id=actor.user_id,
                body=text,
                created_at=now,
            )
            session.add(note)
            session.flush()
            publish(
                session,
                actor.org_id,
                "conversation.note",
                {"conversation_id": conversation.id, "note_id": note.id, "user_id": actor.user_id},
                now,
            )
            session.expunge(note)
            return note

    # --- canned responses -----------------------------------------------------------------

    def create_canned(
        self, org_id: str, shortcode: str, body: str, title: str | None
    ) -> CannedResponse:
        code = self._shortcode(shortcode)
        self._check_body(body)
        now = self._clock.now()
        with self._db.transaction() as session:
            if session.execute(
                sa.select(CannedResponse.id).where(
                    CannedResponse.org_id == org_id, CannedResponse.shortcode == code
                )
            ).first():
                raise ConflictError(
                    N_("a canned response /%(shortcode)s exists", shortcode=code), field="shortcode"
                )
            row = CannedResponse(
                org_id=org_id,
                shortcode=code,
                title=title,
                body=body,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            session.expunge(row)
            return row

    def list_canned(self, org_id: str) -> list[CannedResponse]:
        with self._db.read() as session:
            rows = list(
                session.execute(
                    sa.select(CannedResponse)
                    .where(CannedResponse.org_id == org_id)
                    .order_by(CannedResponse.shortcode)
                ).scalars()
            )
            for row in rows:
                session.expunge(row)
            return rows

    def update_canned(
        self,
        org_id: str,
        canned_id: str,
        *,
        shortcode: str | None,
        body: str | None,
        title: str | None,
        title_given: bool,
    ) -> CannedResponse:
        with self._db.transaction() as session:
            row = self._canned(session, org_id, canned_id)
            if shortcode is not None:
                code = self._shortcode(shortcode)
                clash = session.execute(
                    sa.select(CannedResponse.id).where(
                        CannedResponse.org_id == org_id,
                        CannedResponse.shortcode == code,
                        CannedResponse.id != row.id,
                    )
                ).first()
                if clash:
                    raise ConflictError(
                        N_("a canned response /%(shortcode)s exists", shortcode=code),
                        field="shortcode",
                    )
                row.shortcode = code
            if body is not None:
                self._check_body(body)
                row.body = body
            if title_given:
                row.title = title
            row.updated_at = self._clock.now()
            session.flush()
            session.expunge(row)
            return row

    def delete_canned(self, org_id: str, canned_id: str) -> None:
        with self._db.transaction() as session:
            session.delete(self._canned(session, org_id, canned_id))

    def render_canned(self, actor: Actor, conversation_id: str, shortcode: str) -> str:
        """A canned response's text with the conversation's values filled in."""
        with self._db.read() as session:
            conversation = self._conversation(session, actor.org_id, conversation_id)
            row = session.execute(
                sa.select(CannedResponse).where(
                    CannedResponse.org_id == actor.org_id,
                    CannedResponse.shortcode == shortcode.strip().lstrip("/").lower(),
                )
            ).scalar_one_or_none()
            if row is None:
                raise NotFoundError(N_("no canned response /%(shortcode)s", shortcode=shortcode))
            values = self._context(session, conversation, actor)
        try:
            return render(row.body, values)
        except MissingPlaceholderError as exc:
            raise ConflictError(
                N_("this conversation has no value for {%(placeholder)s}", placeholder=exc.key),
                code="missing_placeholder",
                details={"placeholder": exc.key},
            ) from exc

    # --- helpers --------------------------------------------------------------------------

    def _context(
        self, session: Session, conversation: Conversation, actor: Actor
    ) -> dict[str, Any]:
        """Values for placeholders: the answered message's context items, the contact, the case,
        and the agent."""
        values: dict[str, Any] = {}
        answered = (
            session.get(Message, conversation.answered_message_id)
            if conversation.answered_message_id
            else None
        )
        if answered is not None:
            values.update(
                {k: v for k, v in (answered.context or {}).items() if not k.startswith("_")}
            )
            if answered.locale:
                values["_locale"] = answered.locale
        contact = session.get(Contact, conversation.contact_id) if conversation.contact_id else None
        if contact is not None:
            if contact.name:
                values.setdefault("CustomerName", contact.name)
            if contact.preferred_language:
                values["_locale"] = contact.preferred_language
        if answered is not None and answered.regarding_object_id:
            case = session.execute(
                sa.select(Case).where(
                    Case.org_id == conversation.org_id,
                    sa.or_(
                        Case.id == answered.regarding_object_id,
                        Case.number == answered.regarding_object_id,
                    ),
                )
            ).scalar_one_or_none()
            if case is not None:
                values.setdefault("CaseName", case.title)
                values.setdefault("CaseNumber", case.number)
        if actor.user_id is not None:
            agent = session.get(User, actor.user_id)
            if agent is not None:
                values.setdefault("AgentName", agent.name)
        return values

    def _conversation(
        self, session: Session, org_id: str, conversation_id: str, *, lock: bool = False
    ) -> Conversation:
        query = sa.select(Conversation).where(
            Conversation.id == conversation_id, Conversation.org_id == org_id
        )
        if lock:
            query = self._db.for_update(query)
        conversation = session.execute(query).scalar_one_or_none()
        if conversation is None:
            raise NotFoundError(
                N_("no conversation %(conversation)r", conversation=conversation_id)
            )
        return conversation

    def _canned(self, session: Session, org_id: str, canned_id: str) -> CannedResponse:
        row = session.execute(
            sa.select(CannedResponse).where(
                CannedResponse.id == canned_id, CannedResponse.org_id == org_id
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFoundError(
                N_("no canned response %(canned_response)r", canned_response=canned_id)
            )
        return row

    @staticmethod
    def _shortcode(value: str) -> str:
        code = value.strip().lstrip("/").lower()
        if not SHORTCODE.fullmatch(code):
            raise InvalidRequestError(
                N_("1 to 64 letters, digits, '-' or '_', starting with a letter or digit"),
                field="shortcode",
            )
        return code

    @staticmethod
    def _check_body(body: str) -> None:
        if not body.strip():
            raise InvalidRequestError(N_("must not be empty"), field="body")
        if len(body) > MAX_REPLY_CHARACTERS:
            raise InvalidRequestError(
                N_(
                    "is %(length)s characters; the limit is %(limit)s",
                    length=len(body),
                    limit=MAX_REPLY_CHARACTERS,
                ),
                field="body",
            )
        try:
            parse_template(body)
        except TemplateSyntaxError as exc:
            raise InvalidRequestError(
                N_("malformed placeholder: %(error)s", error=message_of(exc)),
                field="body",
                code="invalid_template",
                details={"position": exc.position},
            ) from exc
