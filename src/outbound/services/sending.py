"""The send use case: one request, up to N contacts, one outcome per contact, one transaction.

Every contact becomes a message row, whatever its outcome: ``queued`` rows are the outbox the
workers drain; ``skipped`` and ``rejected`` rows record why nothing was sent. The rows, their
first status event and the stored response are committed together before the caller hears 202.

A configuration's frequency cap and contact window apply here, when the send is accepted. The
cap counts the configuration's messages to the same number created within its period (those
skipped, rejected or canceled aside) plus the earlier contacts of the same request; contacts
over it are skipped. A contact outside the window is queued all the same, with its
``scheduled_at`` at the window's next opening in the contact's time zone, so the workers, which
only claim due messages, leave it until then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import (
    Channel,
    Conversation,
    Message,
    Organization,
    SendRequest,
    Template,
    new_id,
)
from outbound.adapters.metrics import Metrics
from outbound.adapters.providers.registry import adapter_for
from outbound.adapters.queue.outbox import Outbox
from outbound.clock import Clock
from outbound.config import Settings
from outbound.domain.encoding import sms_info
from outbound.domain.locales import choose_text, normalize_locale
from outbound.domain.numbers import normalize_number
from outbound.domain.statuses import MessageStatus
from outbound.domain.templates import ParsedTemplate, parse_template, render
from outbound.domain.windows import ContactWindow, FrequencyCap, next_window_open, resolve_zone
from outbound.errors import (
    ConflictError,
    InvalidLocaleError,
    InvalidNumberError,
    InvalidRequestError,
    MissingPlaceholderError,
    NotFoundError,
)
from outbound.schemas import ContactItem, ContactOutcome, SendIn, SendOut
from outbound.services.configurations import (
    ConfigurationService,
    contact_window_of,
    frequency_cap_of,
)
from outbound.services.consent import numbers_in_window, opted_out_numbers
from outbound.services.idempotency import IdempotencyKeys, body_hash
from outbound.services.quota import consume_request_quota

__all__ = [
    "CONTEXT_KEYS",
    "MAX_BODY_CHARACTERS",
    "MAX_REFERENCE_CHARACTERS",
    "ContactPlan",
    "SendService",
    "TemplateTexts",
    "plan_contact",
]


# Context items that are not placeholder values.
CONTEXT_KEYS = frozenset(
    {"regardingobjectid", "entityrelationshipname", "msdyn_ocoutboundconfigurationid"}
)
# What one concatenated SMS or WhatsApp message can carry at most (each provider has its own).
MAX_BODY_CHARACTERS = 1600
# The columns holding regardingobjectid and entityrelationshipname.
MAX_REFERENCE_CHARACTERS = 200
# Statuses of messages that never reach the contact, so that a frequency cap ignores them.
_NEVER_SENT = (
    MessageStatus.SKIPPED.value,
    MessageStatus.REJECTED.value,
    MessageStatus.CANCELED.value,
)


@dataclass(frozen=True)
class TemplateTexts:
    """A template's texts, parsed once per request."""

    default_locale: str
    default_text: str
    localizations: Mapping[str, str]
    parsed: Mapping[str, ParsedTemplate]

    @classmethod
    def of(
        cls, default_locale: str, default_text: str, localizations: Mapping[str, str]
    ) -> TemplateTexts:
        texts = {default_text, *localizations.values()}
        return cls(
            default_locale=default_locale,
            default_text=default_text,
            localizations=dict(localizations),
            parsed={t: parse_template(t) for t in texts},
        )


@dataclass
class ContactPlan:
    """What becomes of one contact: the message row's content and its first status."""

    status: MessageStatus
    reason: str | None = None
    to_number: str | None = None
    locale: str | None = None
    body: str | None = None
    encoding: str | None = None
    segments: int | None = None
    template_parameters: dict[str, str] | None = None
    regarding_object_id: str | None = None
    entity_relationship_name: str | None = None
    # Later than now when the contact window is closed: the message waits for it to open.
    scheduled_at: datetime | None = None
    # The contact's zone, when a contact window applies (checked again before sending).
    time_zone: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def plan_contact(
    contact: ContactItem,
    *,
    configuration_id: str,
    channel_type: str,
    channel_id: str,
    configuration_default_locale: str | None,
    texts: TemplateTexts,
    default_region: str | None,
    max_body: int = MAX_BODY_CHARACTERS,
) -> ContactPlan:
    """Decide the outcome of one contact. Pure: no I/O, no clock."""
    context = contact.contextitems
    plan = ContactPlan(
        status=MessageStatus.QUEUED,
        regarding_object_id=_text(context.get("regardingobjectid")),
        entity_relationship_name=_text(context.get("entityrelationshipname")),
    )
    try:
        plan.to_number = normalize_number(contact.tocontactid, default_region)
    except InvalidNumberError as exc:
        plan.status, plan.reason = MessageStatus.REJECTED, exc.reason
        return plan
    for key, value in (
        ("regardingobjectid", plan.regarding_object_id),
        ("entityrelationshipname", plan.entity_relationship_name),
    ):
        if value is not None and len(value) > MAX_REFERENCE_CHARACTERS:
            plan.status = MessageStatus.REJECTED
            plan.reason = (
                f"invalid_context: {key} is longer than {MAX_REFERENCE_CHARACTERS} characters"
            )
            plan.regarding_object_id = plan.entity_relationship_name = None
            return plan
    named_config = _text(context.get("msdyn_ocoutboundconfigurationid"))
    if named_config is not None and named_config.lower() != configuration_id.lower():
        plan.status = MessageStatus.REJECTED
        plan.reason = "configuration_mismatch: msdyn_ocoutboundconfigurationid names another"
        return plan
    if contact.channelid is not None and contact.channelid.strip().lower() not in {
        channel_type,
        channel_id.lower(),
    }:
        plan.status = MessageStatus.REJECTED
        plan.reason = f"channel_mismatch: the configuration sends by {channel_type}"
        return plan
    requested: str | None = None
    if contact.locale is not None and str(contact.locale).strip():
        try:
            requested = normalize_locale(contact.locale)
        except InvalidLocaleError:
            plan.status, plan.reason = MessageStatus.REJECTED, "invalid_locale"
            return plan
    chosen = choose_text(
        requested=requested,
        localizations=texts.localizations,
        template_default_locale=texts.default_locale,
        template_default_text=texts.default_text,
        configuration_default_locale=configuration_default_locale,
    )
    plan.locale = chosen.locale
    template = texts.parsed.get(chosen.text) or parse_template(chosen.text)
    values = {k: v for k, v in context.items() if k.lower() not in CONTEXT_KEYS}
    try:
        plan.body = render(template, values)
    except MissingPlaceholderError as exc:
        plan.status, plan.reason = MessageStatus.REJECTED, f"missing_placeholder: {exc.key}"
        return plan
    if not plan.body.strip() and not contact.sendastemplate:
        plan.status, plan.reason = MessageStatus.REJECTED, "empty_body"
        return plan
    if len(plan.body) > max_body:
        plan.status = MessageStatus.REJECTED
        plan.reason = f"body_too_long: {len(plan.body)} characters (limit {max_body})"
        return plan
    if contact.sendastemplate and channel_type != "whatsapp":
        plan.status = MessageStatus.REJECTED
        plan.reason = "sendastemplate_needs_whatsapp: approved templates are a WhatsApp feature"
        return plan
    if channel_type == "sms":
        # Encoding and segments are SMS notions; WhatsApp carries text as it is.
        info = sms_info(plan.body)
        plan.encoding, plan.segments = info.encoding.value, info.segments
    if contact.sendastemplate:
        if contact.templateparameters is not None:
            plan.template_parameters = dict(contact.templateparameters)
        else:
            # Positional variables of the approved template follow the placeholders' order.
            # Each value is resolved and formatted exactly as in the rendered text.
            plan.template_parameters = {
                str(i): render(parse_template("{" + key + "}"), values)
                for i, key in enumerate(template.placeholders, 1)
            }
    if not contact.optin:
        plan.status, plan.reason = MessageStatus.SKIPPED, "opted_out"
    return plan


class SendService:
    """Accepts send requests into the outbox."""

    def __init__(
        self, db: Database, clock: Clock, settings: Settings, *, metrics: Metrics | None = None
    ) -> None:
        self._db = db
        self._clock = clock
        self._settings = settings
        self._metrics = metrics
        self._outbox = Outbox(db)
        self._keys = IdempotencyKeys(db, clock, stale_seconds=settings.idempotency_stale_seconds)

    def _limits(self, org_id: str) -> tuple[int, int]:
        with self._db.read() as session:
            org = session.get(Organization, org_id)
        if org is None:
            raise NotFoundError("organisation not found")
        return (
            org.max_contacts_per_request or self._settings.max_contacts_per_request,
            org.hourly_request_quota or self._settings.hourly_request_quota,
        )

    def send(
        self,
        org_id: str,
        request: SendIn,
        *,
        idempotency_key: str | None = None,
        urgent: bool = False,
    ) -> SendOut:
        """Accept a send request: every contact's message is in the outbox when this returns.

        ``urgent``: a client waits for the answer (the API), so on SQLite its writes go ahead
        of background writers.
        """
        max_contacts, quota = self._limits(org_id)
        if len(request.contacts) > max_contacts:
            raise InvalidRequestError(
                f"{len(request.contacts)} contacts given; at most {max_contacts} per request",
                field="contacts",
                code="too_many_contacts",
            )
        digest = body_hash(request.model_dump(mode="json"))
        reserved_id: str | None = None
        if idempotency_key is not None:
            replay = self._keys.reserve(
                org_id, idempotency_key, digest, request.configuration_id, urgent=urgent
            )
            if isinstance(replay, SendOut):
                return replay
            reserved_id = replay
        try:
            return self._accept(
                org_id, request, quota, digest, idempotency_key, reserved_id, urgent=urgent
            )
        except BaseException:
            if reserved_id is not None:
                self._keys.release(reserved_id)
            raise

    def _accept(
        self,
        org_id: str,
        request: SendIn,
        quota: int,
        digest: str,
        idempotency_key: str | None,
        reserved_id: str | None,
        *,
        urgent: bool = False,
    ) -> SendOut:
        with self._db.read() as session:
            try:
                config = ConfigurationService.load(session, org_id, request.configuration_id)
            except NotFoundError as exc:
                raise NotFoundError(exc.message, field="configuration_id") from exc
            template = session.get(Template, config.template_id)
            channel = session.get(Channel, config.channel_id)
        if not config.active:
            raise ConflictError(
                "this outbound configuration is not active",
                field="configuration_id",
                code="configuration_inactive",
            )
        if template is None or channel is None:
            raise ConflictError(
                "the configuration's template or channel no longer exists",
                field="configuration_id",
            )
        texts = TemplateTexts.of(
            template.default_locale, template.default_text, template.localizations
        )
        plans = [
            plan_contact(
                contact,
                configuration_id=config.id,
                channel_type=config.channel_type,
                channel_id=channel.id,
                configuration_default_locale=config.default_locale,
                texts=texts,
                default_region=self._settings.default_region,
                max_body=adapter_for(channel.provider).max_body,
            )
            for contact in request.contacts
        ]
        now = self._clock.now()
        self._apply_recipient_rules(plans, request.contacts, config, channel, template, now)
        request_id = reserved_id or new_id()
        rows: list[dict[str, Any]] = []
        outcomes: list[ContactOutcome] = []
        for index, (contact, plan) in enumerate(zip(request.contacts, plans, strict=True)):
            message_id = new_id()
            rows.append(
                self._row(
                    message_id, org_id, request_id, index, contact, plan, config, channel, now
                )
            )
            outcomes.append(
                ContactOutcome(
                    index=index,
                    status=plan.status.value,
                    message_id=message_id,
                    to=plan.to_number,
                    locale=plan.locale,
                    reason=plan.reason,
                    scheduled_at=plan.scheduled_at,
                )
            )
        response = SendOut(
            request_id=request_id,
            configuration_id=config.id,
            queued=sum(p.status is MessageStatus.QUEUED for p in plans),
            skipped=sum(p.status is MessageStatus.SKIPPED for p in plans),
            rejected=sum(p.status is MessageStatus.REJECTED for p in plans),
            results=outcomes,
        )
        stored = response.model_dump(mode="json")
        with self._db.transaction(urgent=urgent) as session:
            consume_request_quota(session, org_id, quota, now)
            if reserved_id is not None:
                self._keys.complete(session, reserved_id, stored)
            else:
                session.add(
                    SendRequest(
                        id=request_id,
                        org_id=org_id,
                        configuration_id=config.id,
                        idempotency_key=idempotency_key,
                        body_hash=digest,
                        state="completed",
                        response=stored,
                        created_at=now,
                    )
                )
                session.flush()
            if config.conversation_mode == "on_send":
                self._open_conversations(session, org_id, config, channel, rows, now)
            self._outbox.enqueue(session, rows, source="api")
        if self._metrics is not None:
            for outcome, count in (
                ("queued", response.queued),
                ("skipped", response.skipped),
                ("rejected", response.rejected),
            ):
                if count:
                    self._metrics.accepted.labels(outcome).inc(count)
        return response

    @staticmethod
    def _open_conversations(
        session: Session,
        org_id: str,
        config: Any,
        channel: Channel,
        rows: list[dict[str, Any]],
        now: datetime,
    ) -> None:
        """``on_send``: each message sent opens (or continues) the customer's conversation."""
        numbers = {r["to_number"] for r in rows if r["status"] == MessageStatus.QUEUED.value}
        if not numbers:
            return
        existing = {
            c.customer_number: c.id
            for c in session.execute(
                sa.select(Conversation.customer_number, Conversation.id).where(
                    Conversation.channel_id == channel.id,
                    Conversation.customer_number.in_(numbers),
                    Conversation.status == "open",
                )
            )
        }
        for number in sorted(numbers - existing.keys()):
            conversation = Conversation(
                org_id=org_id,
                channel_id=channel.id,
                configuration_id=config.id,
                customer_number=number,
                status="open",
                created_at=now,
                updated_at=now,
                last_message_at=now,
            )
            session.add(conversation)
            session.flush()
            existing[number] = conversation.id
        for row in rows:
            if row["status"] == MessageStatus.QUEUED.value:
                row["conversation_id"] = existing[row["to_number"]]

    def _apply_recipient_rules(
        self,
        plans: list[ContactPlan],
        contacts: list[ContactItem],
        config: Any,
        channel: Channel,
        template: Template,
        now: datetime,
    ) -> None:
        """Consent withdrawn on this channel, WhatsApp's rules, the configuration's frequency
        cap and its contact window override the request (one query each, not one per contact).
        """
        numbers = [p.to_number for p in plans if p.status is MessageStatus.QUEUED and p.to_number]
        if not numbers:
            return
        whatsapp = config.channel_type == "whatsapp"
        cap = frequency_cap_of(config)
        with self._db.read() as session:
            withdrawn = opted_out_numbers(session, channel.id, numbers)
            in_window = numbers_in_window(session, channel.id, numbers, now) if whatsapp else set()
            recent = self._recent_counts(session, config, numbers, cap, now) if cap else {}
        for plan, contact in zip(plans, contacts, strict=True):
            if plan.status is not MessageStatus.QUEUED or plan.to_number is None:
                continue
            if plan.to_number in withdrawn:
                plan.status, plan.reason = MessageStatus.SKIPPED, "opted_out"
            elif whatsapp and contact.sendastemplate:
                if channel.provider == "twilio" and not template.content_sid:
                    plan.status = MessageStatus.REJECTED
                    plan.reason = "missing_content_sid: the template has no approved content_sid"
            elif whatsapp and plan.to_number not in in_window:
                # Free-form WhatsApp text is only allowed within 24 h of the customer's last
                # message; refusing now beats a certain failure (Twilio 63016) later.
                plan.status = MessageStatus.REJECTED
                plan.reason = (
                    "outside_whatsapp_window: free-form text needs a customer message in the "
                    "last 24 hours; send the approved template (sendastemplate)"
                )
        if cap is not None:
            self._apply_cap(plans, cap, recent)
        window = contact_window_of(config)
        if window is not None:
            self._apply_window(plans, contacts, window, config.window_time_zone, now)

    @staticmethod
    def _recent_counts(
        session: Session, config: Any, numbers: list[str], cap: FrequencyCap, now: datetime
    ) -> dict[str, int]:
        """Messages of this configuration per number within the cap's period (one query)."""
        since = now - timedelta(seconds=cap.period_seconds)
        rows = session.execute(
            sa.select(Message.to_number, sa.func.count())
            .where(
                Message.org_id == config.org_id,
                Message.to_number.in_(sorted(set(numbers))),
                Message.configuration_id == config.id,
                Message.created_at > since,
                Message.status.not_in(_NEVER_SENT),
            )
            .group_by(Message.to_number)
        )
        return {str(number): int(count) for number, count in rows}

    @staticmethod
    def _apply_cap(plans: list[ContactPlan], cap: FrequencyCap, recent: dict[str, int]) -> None:
        """Skip the contacts over the cap, counting the earlier contacts of this request."""
        counts = dict(recent)
        reason = f"frequency_cap: {cap.describe()} to this contact"
        for plan in plans:
            if plan.status is not MessageStatus.QUEUED or plan.to_number is None:
                continue
            so_far = counts.get(plan.to_number, 0)
            if so_far >= cap.count:
                plan.status, plan.reason = MessageStatus.SKIPPED, reason
            else:
                counts[plan.to_number] = so_far + 1

    @staticmethod
    def _apply_window(
        plans: list[ContactPlan],
        contacts: list[ContactItem],
        window: ContactWindow,
        fallback_zone: str | None,
        now: datetime,
    ) -> None:
        """Hold the messages of contacts outside the window until it opens in their zone."""
        opening: dict[str, datetime] = {}
        for plan, contact in zip(plans, contacts, strict=True):
            if plan.status is not MessageStatus.QUEUED:
                continue
            zone = resolve_zone(contact.timezone, plan.to_number, fallback_zone)
            plan.time_zone = zone
            when = opening.get(zone)
            if when is None:
                when = opening[zone] = next_window_open(window, now, zone)
            if when > now:
                local = when.astimezone(ZoneInfo(zone))
                plan.scheduled_at = when
                plan.reason = f"outside_contact_window: held until {local:%Y-%m-%d %H:%M} {zone}"

    def _row(
        self,
        message_id: str,
        org_id: str,
        request_id: str,
        index: int,
        contact: ContactItem,
        plan: ContactPlan,
        config: Any,
        channel: Channel,
        now: datetime,
    ) -> dict[str, Any]:
        return {
            "id": message_id,
            "org_id": org_id,
            "request_id": request_id,
            "contact_index": index,
            "configuration_id": config.id,
            "channel_id": channel.id,
            "template_id": config.template_id,
            "channel_type": config.channel_type,
            "provider": channel.provider,
            "to_raw": contact.tocontactid,
            "to_number": plan.to_number,
            "from_number": channel.sender,
            "locale": plan.locale,
            "body": plan.body,
            "encoding": plan.encoding,
            "segments": plan.segments,
            "send_as_template": contact.sendastemplate,
            "template_parameters": plan.template_parameters,
            "context": dict(contact.contextitems) or None,
            "regarding_object_id": plan.regarding_object_id,
            "entity_relationship_name": plan.entity_relationship_name,
            "show_in_timeline": config.show_in_timeline,
            "status": plan.status.value,
            "reason": plan.reason,
            "provider_message_id": None,
            "error_code": None,
            "error_message": None,
            "attempts": 0,
            "max_attempts": self._settings.max_attempts,
            "scheduled_at": plan.scheduled_at or now,
            "time_zone": plan.time_zone,
            "lease_until": None,
            "worker_id": None,
            "created_at": now,
            "updated_at": now,
        }
