"""The send use case: one request, up to N contacts, one outcome per contact, one transaction.

Every contact becomes a message row, whatever its outcome: ``queued`` rows are the outbox the
workers drain; ``skipped`` and ``rejected`` rows record why nothing was sent. The rows, their
first status event and the stored response are committed together before the caller hears 202.

A number named by several contacts of one request gets one message (the first contact's); the
others are skipped (``duplicate_in_request``) unless the configuration allows duplicates. A
configuration's frequency cap and contact window apply here, when the send is accepted. The
cap counts the configuration's messages to the same number created within its period (those
skipped, rejected or canceled aside) plus the earlier contacts of the same request; contacts
over it are skipped. A contact outside the window is queued all the same, with its
``scheduled_at`` at the window's next opening in the contact's time zone, so the workers, which
only claim due messages, leave it until then.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import (
    Channel,
    Message,
    Organization,
    OutboundConfiguration,
    SendRequest,
    Template,
    new_id,
)
from outbound.adapters.db.stages import in_stage
from outbound.adapters.metrics import Metrics
from outbound.adapters.providers.registry import adapter_for
from outbound.adapters.queue.outbox import Outbox
from outbound.clock import Clock
from outbound.config import (
    DEFAULT_HOURLY_REQUEST_QUOTA,
    DEFAULT_IDEMPOTENCY_STALE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_CONTACTS_PER_REQUEST,
    DEFAULT_REGION,
)
from outbound.domain.consent import CONSENT_WITHDRAWN
from outbound.domain.numbers import region_of
from outbound.domain.planning import ContactPlan, TemplateTexts, plan_contact
from outbound.domain.statuses import MessageStatus
from outbound.domain.windows import ContactWindow, FrequencyCap, next_window_open, resolve_zone
from outbound.errors import ConflictError, InvalidRequestError, NotFoundError
from outbound.schemas import ContactItem, ContactOutcome, SendIn, SendOut, SendWarning
from outbound.services.configurations import (
    ConfigurationService,
    contact_window_of,
    frequency_cap_of,
)
from outbound.services.consent import numbers_in_window, opted_out_numbers
from outbound.services.conversations import open_conversations
from outbound.services.idempotency import IdempotencyKeys, body_hash
from outbound.services.quota import check_request_quota, consume_request_quota
from outbound.texts import N_

__all__ = ["DUPLICATE_IN_REQUEST", "SendService"]

DUPLICATE_IN_REQUEST = "duplicate_in_request"
"""The reason of a contact skipped because an earlier contact of the request has its number."""


# Statuses of messages that never reach the contact, so that a frequency cap ignores them.
_NEVER_SENT = (
    MessageStatus.SKIPPED.value,
    MessageStatus.REJECTED.value,
    MessageStatus.CANCELED.value,
)


class SendService:
    """Accepts send requests into the outbox.

    ``max_contacts_per_request`` and ``hourly_request_quota`` apply to organisations that set
    no limits of their own; numbers without a country code are read in ``default_region``;
    each message may be tried ``max_attempts`` times; an idempotency key whose request died
    is taken over after ``idempotency_stale_seconds``.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        default_region: str = DEFAULT_REGION,
        max_contacts_per_request: int = DEFAULT_MAX_CONTACTS_PER_REQUEST,
        hourly_request_quota: int = DEFAULT_HOURLY_REQUEST_QUOTA,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        idempotency_stale_seconds: float = DEFAULT_IDEMPOTENCY_STALE_SECONDS,
        metrics: Metrics | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._default_region = default_region
        self._max_contacts_per_request = max_contacts_per_request
        self._hourly_request_quota = hourly_request_quota
        self._max_attempts = max_attempts
        self._metrics = metrics
        self._outbox = Outbox(db)
        self._keys = IdempotencyKeys(db, clock, stale_seconds=idempotency_stale_seconds)

    def _limits(self, org_id: str) -> tuple[int, int]:
        with self._db.read() as session:
            org = session.get(Organization, org_id)
        if org is None:
            raise NotFoundError(N_("organisation not found"))
        return (
            org.max_contacts_per_request or self._max_contacts_per_request,
            org.hourly_request_quota or self._hourly_request_quota,
        )

    @in_stage("accept")
    def send(
        self,
        org_id: str,
        request: SendIn,
        *,
        idempotency_key: str | None = None,
        urgent: bool = False,
        flow_run_id: str | None = None,
    ) -> SendOut:
        """Accept a send request: every contact's message is in the outbox when this returns.

        ``urgent``: a client waits for the answer (the API), so on SQLite its writes go ahead
        of background writers. ``flow_run_id``: the flow run sending (kept for reports).
        """
        max_contacts, quota = self._limits(org_id)
        if len(request.contacts) > max_contacts:
            raise InvalidRequestError(
                N_(
                    "%(count)s contacts given; at most %(limit)s per request",
                    count=len(request.contacts),
                    limit=max_contacts,
                ),
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
                org_id,
                request,
                quota,
                digest,
                idempotency_key,
                reserved_id,
                urgent=urgent,
                flow_run_id=flow_run_id,
            )
        except BaseException:
            if reserved_id is not None:
                self._keys.release(reserved_id)
            raise

    def _catalog(
        self, org_id: str, configuration_id: str, quota: int, now: datetime
    ) -> tuple[OutboundConfiguration, Template, Channel]:
        """The configuration a request names, with its template and channel, if it may send;
        a request past the organisation's quota is refused here, before its work is done."""
        with self._db.read() as session:
            check_request_quota(session, org_id, quota, now)
            try:
                config = ConfigurationService.load(session, org_id, configuration_id)
            except NotFoundError as exc:
                raise NotFoundError(exc.message, field="configuration_id") from exc
            template = session.get(Template, config.template_id)
            channel = session.get(Channel, config.channel_id)
        if not config.active:
            raise ConflictError(
                N_("this outbound configuration is not active"),
                field="configuration_id",
                code="configuration_inactive",
            )
        if template is None or channel is None:
            raise ConflictError(
                N_("the configuration's template or channel no longer exists"),
                field="configuration_id",
            )
        return config, template, channel

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
        flow_run_id: str | None = None,
    ) -> SendOut:
        config, template, channel = self._catalog(
            org_id, request.configuration_id, quota, self._clock.now()
        )
        texts = TemplateTexts.of(
            template.default_locale,
            template.default_text,
            template.localizations,
            fallbacks=template.fallbacks,
            content_sid=template.content_sid,
            content_sids=template.content_sids,
            version=template.version,
        )
        plans = [
            plan_contact(
                contact,
                configuration_id=config.id,
                channel_type=config.channel_type,
                channel_id=channel.id,
                configuration_default_locale=config.default_locale,
                texts=texts,
                default_region=self._default_region,
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
                | {"flow_run_id": flow_run_id}
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
            warnings=[
                SendWarning(index=index, field=f"contacts[{index}].{key}", message=message)
                for index, key, message in request.warnings
            ],
        )
        stored = response.model_dump(mode="json")
        with self._db.transaction(urgent=urgent) as session:
            # First: the counter's row is the organisation's, locked until the commit, so the
            # organisation's requests write one after another (see consume_request_quota).
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
        config: OutboundConfiguration,
        channel: Channel,
        rows: list[dict[str, Any]],
        now: datetime,
    ) -> None:
        """``on_send``: each message sent opens (or continues) the customer's conversation."""
        queued = MessageStatus.QUEUED.value
        conversations = open_conversations(
            session,
            org_id=org_id,
            channel_id=channel.id,
            configuration_id=config.id,
            numbers=[r["to_number"] for r in rows if r["status"] == queued],
            now=now,
        )
        for row in rows:
            if row["status"] == queued:
                row["conversation_id"] = conversations[row["to_number"]]

    def _apply_recipient_rules(
        self,
        plans: list[ContactPlan],
        contacts: list[ContactItem],
        config: OutboundConfiguration,
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
                plan.status, plan.reason = MessageStatus.SKIPPED, CONSENT_WITHDRAWN
            elif whatsapp and contact.sendastemplate:
                if channel.provider == "twilio" and not plan.content_sid:
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
        if not config.allow_duplicate_numbers:
            self._skip_duplicates(plans)
        if cap is not None:
            self._apply_cap(plans, cap, recent)
        window = contact_window_of(config)
        if window is not None:
            self._apply_window(plans, contacts, window, config.window_time_zone, now)

    @staticmethod
    def _recent_counts(
        session: Session,
        config: OutboundConfiguration,
        numbers: list[str],
        cap: FrequencyCap,
        now: datetime,
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
    def _skip_duplicates(plans: list[ContactPlan]) -> None:
        """One message per number: a contact whose number an earlier contact of the request
        is already queued for is skipped."""
        seen: set[str] = set()
        for plan in plans:
            if plan.status is not MessageStatus.QUEUED or plan.to_number is None:
                continue
            if plan.to_number in seen:
                plan.status, plan.reason = MessageStatus.SKIPPED, DUPLICATE_IN_REQUEST
            else:
                seen.add(plan.to_number)

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
        config: OutboundConfiguration,
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
            "template_version": plan.template_version,
            "send_as_template": contact.sendastemplate,
            "content_sid": plan.content_sid,
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
            "max_attempts": self._max_attempts,
            "scheduled_at": plan.scheduled_at or now,
            "time_zone": plan.time_zone,
            "country": region_of(plan.to_number) if plan.to_number else None,
            "lease_until": None,
            "worker_id": None,
            "created_at": now,
            "updated_at": now,
        }
