"""Tables of the service (SQLAlchemy 2 declarative models).

Every row that belongs to a tenant carries ``org_id``; every query in the services filters on it.
Statuses and other fixed vocabularies are stored as strings with a CHECK constraint listing the
values of their ``StrEnum`` in ``domain/``.

Every table is in this one module because the schema is one concept: its tables, keys,
constraints and indexes read together, and together they are what the migrations must produce
(``tests/integration/test_migrations.py`` compares the two). It grows by one class per table
and holds no logic to split off, so its size is the number of tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from outbound.domain.assignment import AssignmentMethod
from outbound.domain.cases import CaseStatus
from outbound.domain.channels import PROVIDER_NAMES, ChannelType
from outbound.domain.conversations import CONVERSATION_STATUSES, ConversationMode
from outbound.domain.flow_definitions import TriggerType
from outbound.domain.flow_runs import FlowRunStatus
from outbound.domain.public_ids import new_id_key
from outbound.domain.reports import COUNTERS, LATENCY_BUCKETS
from outbound.domain.roles import Role
from outbound.domain.statuses import MessageStatus
from outbound.domain.users import DEFAULT_CAPACITY, MAX_CAPACITY, PresenceStatus, UserRole

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "CannedResponse",
    "Case",
    "Channel",
    "ConsentEvent",
    "ConsoleSession",
    "Contact",
    "Conversation",
    "ConversationEvent",
    "ConversationNote",
    "Event",
    "Flow",
    "FlowRun",
    "FlowRunBatch",
    "FlowRunRow",
    "InboundMessage",
    "Message",
    "MessageEvent",
    "MessageRollup",
    "MessageRollupReason",
    "Organization",
    "OrphanReport",
    "OutboundConfiguration",
    "PresenceChange",
    "Queue",
    "QueueMember",
    "RateCounter",
    "Recipient",
    "RoutingRule",
    "SendRequest",
    "StreamEvent",
    "Template",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "new_id",
]


def new_id() -> str:
    """A new random identifier (UUID4, 36 characters)."""
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_in(column: str, values: Iterable[str]) -> str:
    """``column IN ('a', 'b')``: the CHECK keeping a column to a vocabulary of ``domain/``."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations name constraints the same."""

    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: sa.JSON(),
    }


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(sa.String(200))
    max_contacts_per_request: Mapped[int | None] = mapped_column(sa.Integer)
    hourly_request_quota: Mapped[int | None] = mapped_column(sa.Integer)
    created_at: Mapped[datetime]
    # Where conversations no routing rule matches wait (the first queue created, at first).
    fallback_queue_id: Mapped[str | None] = mapped_column(sa.String(36))
    # A customer message after a conversation closed reopens it (else a new one opens).
    reopen_closed: Mapped[bool] = mapped_column(default=False)
    # The key of the organisation's public ids (outbound.domain.public_ids): never shown.
    id_key: Mapped[str] = mapped_column(sa.String(32), default=new_id_key)


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (sa.CheckConstraint(_check_in("role", Role), name="role"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(16))
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    # The user the key acts as (null: a key of the organisation, e.g. an integration's).
    user_id: Mapped[str | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime]
    # Written at most once a minute per key (see services.auth), not on every request.
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ConsoleSession(Base):
    """A signed-in console session: the cookie names it by a random id, kept here hashed.

    A request of the session is accepted only while its row is not ``revoked_at``: signing
    out, another session's "sign out", a new password or a deactivation ends it everywhere.
    """

    __tablename__ = "console_sessions"
    __table_args__ = (sa.Index("ix_console_sessions_user", "user_id", "created_at"),)

    id_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id"))
    user_agent: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[datetime]
    # Written at most once a minute per session, not on every request.
    last_seen_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class User(Base):
    """A person who works in the service: an admin, a supervisor or an agent.

    The current presence is kept on the row (routing reads it with the user); every change
    of it is also written to ``presence_changes``. ``last_seen_at`` is refreshed by the
    user's requests at most every few seconds (see services.presence).
    """

    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint(_check_in("role", UserRole), name="role"),
        sa.CheckConstraint(_check_in("presence", PresenceStatus), name="presence"),
        sa.CheckConstraint(f"capacity >= 0 AND capacity <= {MAX_CAPACITY}", name="capacity"),
        sa.UniqueConstraint("org_id", "email"),
        sa.Index("ix_users_org_created", "org_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    # Stored in lower case: addresses are unique per organisation without regard to case.
    email: Mapped[str] = mapped_column(sa.String(254))
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(16))
    languages: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    skills: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    capacity: Mapped[int] = mapped_column(sa.Integer, default=DEFAULT_CAPACITY)
    active: Mapped[bool] = mapped_column(default=True)
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    ui_language: Mapped[str | None] = mapped_column(sa.String(35))
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    presence: Mapped[str] = mapped_column(sa.String(16), default="offline")
    presence_changed_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    # Tie-breaks of the assignment methods: the last conversation given, the last released.
    last_assigned_at: Mapped[datetime | None]
    last_released_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PresenceChange(Base):
    """One change of a user's presence, for time-in-status reports."""

    __tablename__ = "presence_changes"
    __table_args__ = (
        sa.CheckConstraint(_check_in("status", PresenceStatus), name="status"),
        sa.CheckConstraint(_check_in("source", ["user", "supervisor", "system"]), name="source"),
        sa.Index("ix_presence_changes_user", "user_id", "changed_at"),
        sa.Index("ix_presence_changes_org", "org_id", "changed_at"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id"))
    previous_status: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16))
    # user: the user themself; supervisor: someone else (changed_by, null for a key without
    # a user); system: the service (the user was deactivated).
    source: Mapped[str] = mapped_column(sa.String(16))
    changed_by: Mapped[str | None] = mapped_column(sa.String(36))
    changed_at: Mapped[datetime]


class Channel(Base):
    __tablename__ = "channels"
    __table_args__ = (
        sa.CheckConstraint(_check_in("type", ChannelType), name="type"),
        sa.CheckConstraint(_check_in("provider", PROVIDER_NAMES), name="provider"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    type: Mapped[str] = mapped_column(sa.String(16))
    provider: Mapped[str] = mapped_column(sa.String(16))
    sender: Mapped[str] = mapped_column(sa.String(64))
    base_url: Mapped[str | None] = mapped_column(sa.String(500))
    credentials_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    credential_fields: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    healthy: Mapped[bool] = mapped_column(default=True)
    health_detail: Mapped[str | None] = mapped_column(sa.String(500))
    webhook_token: Mapped[str] = mapped_column(sa.String(64), default="")
    # Sends per second this sender may make (providers throttle each sender), shared by every
    # worker through next_slot_at: the time of the next free sending slot.
    rate_per_second: Mapped[float | None] = mapped_column(sa.Float)
    next_slot_at: Mapped[datetime | None]
    # The next free slot for asking the provider a message's status (status checks are
    # limited per channel, for every worker together, like sends).
    next_status_check_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Template(Base):
    __tablename__ = "templates"
    __table_args__ = (
        sa.CheckConstraint(_check_in("channel_type", ChannelType), name="channel_type"),
        sa.UniqueConstraint("org_id", "name"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(sa.String(200))
    channel_type: Mapped[str] = mapped_column(sa.String(16))
    default_locale: Mapped[str] = mapped_column(sa.String(35))
    default_text: Mapped[str] = mapped_column(sa.Text)
    localizations: Mapped[dict[str, Any]] = mapped_column(default=dict)
    content_sid: Mapped[str | None] = mapped_column(sa.String(64))
    # WhatsApp: the approved template of each localization (one language each at Twilio);
    # content_sid is the default locale's and the fallback.
    content_sids: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The template's own language fallbacks, locale -> locale ({"fr-BE": "fr-FR"}).
    fallbacks: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The number of the latest TemplateVersion: every change makes a new one.
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TemplateVersion(Base):
    """A template as one change left it: its texts, references and fallbacks, who and when."""

    __tablename__ = "template_versions"

    template_id: Mapped[str] = mapped_column(sa.ForeignKey("templates.id"), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    default_locale: Mapped[str] = mapped_column(sa.String(35))
    default_text: Mapped[str] = mapped_column(sa.Text)
    localizations: Mapped[dict[str, Any]]
    content_sid: Mapped[str | None] = mapped_column(sa.String(64))
    content_sids: Mapped[dict[str, Any]]
    fallbacks: Mapped[dict[str, Any]]
    # The API key (and its user, if any) that made the change; null for versions that
    # existed before versions were kept.
    created_by_key_id: Mapped[str | None] = mapped_column(sa.String(36))
    created_by_user_id: Mapped[str | None] = mapped_column(sa.String(36))
    created_at: Mapped[datetime]


class OutboundConfiguration(Base):
    __tablename__ = "outbound_configurations"
    __table_args__ = (
        sa.CheckConstraint(_check_in("channel_type", ChannelType), name="channel_type"),
        sa.CheckConstraint(
            _check_in("conversation_mode", ConversationMode), name="conversation_mode"
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    show_in_timeline: Mapped[bool] = mapped_column(default=False)
    channel_type: Mapped[str] = mapped_column(sa.String(16))
    channel_id: Mapped[str] = mapped_column(sa.ForeignKey("channels.id"), index=True)
    template_id: Mapped[str] = mapped_column(sa.ForeignKey("templates.id"), index=True)
    default_locale: Mapped[str | None] = mapped_column(sa.String(35))
    conversation_mode: Mapped[str] = mapped_column(sa.String(16), default="on_response")
    fallback_channel_id: Mapped[str | None] = mapped_column(sa.ForeignKey("channels.id"))
    active: Mapped[bool] = mapped_column(default=True)
    # Contact window: messages go out only between window_start and window_end ("HH:MM") on
    # window_days (ISO weekdays 1-7, all when null) in the contact's time zone, else in
    # window_time_zone; outside it they wait, queued, for the window to open.
    window_start: Mapped[str | None] = mapped_column(sa.String(5))
    window_end: Mapped[str | None] = mapped_column(sa.String(5))
    window_days: Mapped[list[int] | None] = mapped_column(sa.JSON)
    window_time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    # Frequency cap: at most cap_count messages to one contact per cap_period_seconds.
    cap_count: Mapped[int | None] = mapped_column(sa.Integer)
    cap_period_seconds: Mapped[int | None] = mapped_column(sa.Integer)
    # The same number more than once in one request gets one message per contact (else one
    # message, the others skipped as duplicate_in_request).
    allow_duplicate_numbers: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SendRequest(Base):
    """One accepted ``POST /v1/outbound/send``; holds the response for idempotent replays."""

    __tablename__ = "send_requests"
    __table_args__ = (
        sa.CheckConstraint(_check_in("state", ["processing", "completed"]), name="state"),
        sa.UniqueConstraint("org_id", "idempotency_key"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    configuration_id: Mapped[str] = mapped_column(sa.String(36))
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(255))
    body_hash: Mapped[str] = mapped_column(sa.String(64))
    state: Mapped[str] = mapped_column(sa.String(16))
    response: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime]


PARTIAL_MESSAGE_INDEXES: dict[str, tuple[str, ...]] = {
    "ix_messages_provider_message": ("provider", "provider_message_id"),
    "ix_messages_regarding_object": ("org_id", "regarding_object_id"),
    "ix_messages_conversation": ("conversation_id",),
}
"""Indexes of messages holding only the rows whose last column is set."""


class Message(Base):
    """One outbound message: the outbox row the workers claim and the record users track."""

    __tablename__ = "messages"
    __table_args__ = (
        sa.CheckConstraint(_check_in("status", MessageStatus), name="status"),
        sa.Index("ix_messages_due", "status", "scheduled_at"),
        sa.Index("ix_messages_org_created", "org_id", "created_at", "id"),
        sa.Index("ix_messages_org_to_created", "org_id", "to_number", "created_at"),
        # Partial: a message enters these only once it has the value looked up (a provider's
        # id once sent; many never have a regarding object or a conversation). PostgreSQL
        # writes every index again at each status change, so each index left out saves one
        # write per change; every look-up names the value, which implies the condition.
        *(
            sa.Index(
                name,
                *columns,
                postgresql_where=sa.text(f"{columns[-1]} IS NOT NULL"),
                sqlite_where=sa.text(f"{columns[-1]} IS NOT NULL"),
            )
            for name, columns in PARTIAL_MESSAGE_INDEXES.items()
        ),
        # Only messages waiting for a status check are in it: sent, with no final report yet.
        sa.Index(
            "ix_messages_status_check",
            "status_check_at",
            postgresql_where=sa.text("status_check_at IS NOT NULL"),
            sqlite_where=sa.text("status_check_at IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    request_id: Mapped[str | None] = mapped_column(sa.ForeignKey("send_requests.id"), index=True)
    contact_index: Mapped[int]
    configuration_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    channel_id: Mapped[str] = mapped_column(sa.String(36))
    template_id: Mapped[str | None] = mapped_column(sa.String(36))
    channel_type: Mapped[str] = mapped_column(sa.String(16))
    provider: Mapped[str] = mapped_column(sa.String(16))
    to_raw: Mapped[str] = mapped_column(sa.String(100))
    to_number: Mapped[str | None] = mapped_column(sa.String(32))
    from_number: Mapped[str | None] = mapped_column(sa.String(64))
    locale: Mapped[str | None] = mapped_column(sa.String(35))
    body: Mapped[str | None] = mapped_column(sa.Text)
    encoding: Mapped[str | None] = mapped_column(sa.String(8))
    segments: Mapped[int | None]
    # The template version the body was rendered from.
    template_version: Mapped[int | None]
    send_as_template: Mapped[bool] = mapped_column(default=False)
    # WhatsApp through Twilio: the approved template (Content SID) of the language sent.
    content_sid: Mapped[str | None] = mapped_column(sa.String(64))
    template_parameters: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    context: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    regarding_object_id: Mapped[str | None] = mapped_column(sa.String(200))
    entity_relationship_name: Mapped[str | None] = mapped_column(sa.String(200))
    show_in_timeline: Mapped[bool] = mapped_column(default=False)
    # The contact's time zone, kept when the configuration has a contact window: workers
    # check the window again before sending (a backlog or a retry may run past it).
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(100))
    error_code: Mapped[str | None] = mapped_column(sa.String(64))
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    conversation_id: Mapped[str | None] = mapped_column(sa.String(36))
    sent_via_channel_id: Mapped[str | None] = mapped_column(sa.String(36))
    sent_by_user_id: Mapped[str | None] = mapped_column(sa.String(36))
    # Kept for reports: the number's country (ISO 3166) and the flow run that sent it.
    country: Mapped[str | None] = mapped_column(sa.String(2))
    flow_run_id: Mapped[str | None] = mapped_column(sa.String(36))
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int]
    first_attempt_at: Mapped[datetime | None]
    scheduled_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    worker_id: Mapped[str | None] = mapped_column(sa.String(100))
    # A sent message whose final status has not been reported: when to ask the provider
    # (services/status_checks.py). Cleared by a final status, and when the checks end.
    status_check_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MessageEvent(Base):
    """One status change of a message, with its time (the status history)."""

    __tablename__ = "message_events"
    __table_args__ = (sa.CheckConstraint(_check_in("status", MessageStatus), name="status"),)

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    message_id: Mapped[str] = mapped_column(sa.ForeignKey("messages.id"), index=True)
    org_id: Mapped[str] = mapped_column(sa.String(36))
    status: Mapped[str] = mapped_column(sa.String(16))
    occurred_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(sa.String(32))
    error_code: Mapped[str | None] = mapped_column(sa.String(64))
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    # Who made the change, when a person or a key did (a cancel): user:<id> or key:<id>.
    actor: Mapped[str | None] = mapped_column(sa.String(100))


ROLLUP_DIMENSIONS = (
    "configuration_id",
    "template_id",
    "channel_id",
    "flow_run_id",
    "locale",
    "country",
)
"""What a rollup row is per, besides its organisation and hour; "" stands for none."""


def _rollup_key() -> list[sa.Column[Any]]:
    return [
        sa.Column("org_id", sa.String(36), primary_key=True),
        # "hour" or "day": every count is kept twice, per UTC hour and per UTC day, so that
        # a long report reads days and only the hours at its edges (and, for local days, the
        # hours a zone's offset moves to another day).
        sa.Column("period", sa.String(4), primary_key=True),
        sa.Column("starts_at", UTCDateTime(), primary_key=True),
        sa.Column("configuration_id", sa.String(36), primary_key=True),
        sa.Column("template_id", sa.String(36), primary_key=True),
        sa.Column("channel_id", sa.String(36), primary_key=True),
        sa.Column("flow_run_id", sa.String(36), primary_key=True),
        sa.Column("locale", sa.String(35), primary_key=True),
        sa.Column("country", sa.String(2), primary_key=True),
    ]


class MessageRollup(Base):
    """Messages accepted in one UTC hour (or day), per configuration, template, channel, flow
    run, locale and country: how many reached each stage, and histograms of their latencies.

    Kept up to date in the transaction of every status change (``adapters/queue/rollups``);
    the reports read these rows, never the messages.
    """

    __table__ = sa.Table(
        "message_rollups",
        Base.metadata,
        *_rollup_key(),
        *(sa.Column(name, sa.BigInteger, nullable=False, default=0) for name in COUNTERS),
        *(
            sa.Column(f"{kind}_latency_{i}", sa.BigInteger, nullable=False, default=0)
            for kind in ("sent", "delivered")
            for i in range(LATENCY_BUCKETS)
        ),
        sa.CheckConstraint(_check_in("period", ["hour", "day"]), name="period"),
        # SQLite: rows stored in key order, so a report reads one organisation's hours as one
        # range instead of looking each row up from the key's index.
        sqlite_with_rowid=False,
    )


class MessageRollupReason(Base):
    """The skipped and rejected messages of a rollup row per reason code, and its failed
    messages per provider error code."""

    __table__ = sa.Table(
        "message_rollup_reasons",
        Base.metadata,
        *_rollup_key(),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False, default=0),
        sa.CheckConstraint(_check_in("kind", ["skipped", "rejected", "failed"]), name="kind"),
        sa.CheckConstraint(_check_in("period", ["hour", "day"]), name="period"),
        # What a report not grouped by a dimension reads (its range, reason, channel and
        # count) in the order it sums them: the database reads the index alone, a third of
        # the row, and groups by kind and code without sorting within each start.
        sa.Index(
            "ix_message_rollup_reasons_report",
            "org_id",
            "period",
            "starts_at",
            "kind",
            "code",
            "channel_id",
            "count",
        ),
        sqlite_with_rowid=False,
    )


class RateCounter(Base):
    """Requests per organisation per minute; the sum over 60 minutes is the hourly quota."""

    __tablename__ = "rate_counters"

    org_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    bucket: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    count: Mapped[int]


class Recipient(Base):
    """What we know of one number on one channel: consent and the last time it wrote to us."""

    __tablename__ = "recipients"
    __table_args__ = (sa.UniqueConstraint("channel_id", "number"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    channel_id: Mapped[str] = mapped_column(sa.String(36))
    number: Mapped[str] = mapped_column(sa.String(32))
    opted_out: Mapped[bool] = mapped_column(default=False)
    consent_changed_at: Mapped[datetime | None]
    last_inbound_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class ConsentEvent(Base):
    """A change of consent, with its source (keyword, provider error, API) and time."""

    __tablename__ = "consent_events"
    __table_args__ = (
        sa.CheckConstraint(_check_in("action", ["opt_out", "opt_in"]), name="action"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    org_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    channel_id: Mapped[str] = mapped_column(sa.String(36))
    number: Mapped[str] = mapped_column(sa.String(32))
    action: Mapped[str] = mapped_column(sa.String(16))
    source: Mapped[str] = mapped_column(sa.String(32))
    detail: Mapped[str | None] = mapped_column(sa.String(200))
    occurred_at: Mapped[datetime]
    # Who recorded the change through the API (source admin): user:<id> or key:<id>.
    actor: Mapped[str | None] = mapped_column(sa.String(100))


class Conversation(Base):
    """The thread that starts when a customer replies (or on send, per configuration).

    ``version`` grows with every change, so that routing can assign with a compare-and-set;
    ``waiting_since`` is the customer's first unanswered message (the queue's order).
    """

    __tablename__ = "conversations"
    __table_args__ = (
        sa.CheckConstraint(_check_in("status", CONVERSATION_STATUSES), name="status"),
        sa.Index("ix_conversations_lookup", "channel_id", "customer_number", "status"),
        sa.Index("ix_conversations_org_created", "org_id", "created_at", "id"),
        sa.Index("ix_conversations_org_status", "org_id", "status", "created_at", "id"),
        sa.Index("ix_conversations_queue_waiting", "queue_id", "status", "waiting_since"),
        sa.Index("ix_conversations_assignee", "assigned_to", "status"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    channel_id: Mapped[str] = mapped_column(sa.String(36))
    configuration_id: Mapped[str | None] = mapped_column(sa.String(36))
    customer_number: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    assigned_to: Mapped[str | None] = mapped_column(sa.String(36))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_message_at: Mapped[datetime]
    queue_id: Mapped[str | None] = mapped_column(sa.String(36))
    rule_id: Mapped[str | None] = mapped_column(sa.String(36))
    priority: Mapped[int] = mapped_column(default=0)
    required_skills: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    required_language: Mapped[str | None] = mapped_column(sa.String(35))
    contact_id: Mapped[str | None] = mapped_column(sa.String(36))
    answered_message_id: Mapped[str | None] = mapped_column(sa.String(36))
    # The agent a customer writing again goes back to, while that agent is available.
    affinity_user_id: Mapped[str | None] = mapped_column(sa.String(36))
    waiting_since: Mapped[datetime | None]
    offered_to: Mapped[str | None] = mapped_column(sa.String(36))
    offer_expires_at: Mapped[datetime | None]
    assigned_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    last_agent_message_at: Mapped[datetime | None]
    last_customer_message_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]
    wrap_up_until: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    overflowed_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)


class InboundMessage(Base):
    """A message a customer sent us, with the provider's raw payload."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        sa.UniqueConstraint("channel_id", "provider_message_id"),
        sa.Index("ix_inbound_org_received", "org_id", "received_at"),
        sa.Index("ix_inbound_in_reply_to", "in_reply_to"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    channel_id: Mapped[str] = mapped_column(sa.String(36))
    provider: Mapped[str] = mapped_column(sa.String(16))
    provider_message_id: Mapped[str] = mapped_column(sa.String(100))
    from_number: Mapped[str] = mapped_column(sa.String(32))
    to_number: Mapped[str | None] = mapped_column(sa.String(64))
    body: Mapped[str] = mapped_column(sa.Text)
    keyword: Mapped[str | None] = mapped_column(sa.String(16))
    raw: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    in_reply_to: Mapped[str | None] = mapped_column(sa.String(36))
    conversation_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    received_at: Mapped[datetime]


class OrphanReport(Base):
    """A status report that arrived before the send it reports on was recorded.

    Providers may call back within milliseconds, while the dispatcher records a batch's
    provider ids only when the whole batch is done; such reports wait here and are applied
    when the send is recorded.
    """

    __tablename__ = "orphan_reports"
    __table_args__ = (sa.Index("ix_orphan_reports_lookup", "provider", "provider_message_id"),)

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    provider: Mapped[str] = mapped_column(sa.String(16))
    provider_message_id: Mapped[str] = mapped_column(sa.String(100))
    channel_id: Mapped[str | None] = mapped_column(sa.String(36))
    status: Mapped[str] = mapped_column(sa.String(16))
    error_code: Mapped[str | None] = mapped_column(sa.String(64))
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]


_BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class Contact(Base):
    """A customer: numbers, language, consent per channel, time zone and custom fields."""

    __tablename__ = "contacts"
    __table_args__ = (
        sa.UniqueConstraint("org_id", "external_id"),
        sa.Index("ix_contacts_org_id_id", "org_id", "id"),
        sa.Index("ix_contacts_org_mobile", "org_id", "mobile_phone"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    external_id: Mapped[str | None] = mapped_column(sa.String(200))
    name: Mapped[str | None] = mapped_column(sa.String(200))
    mobile_phone: Mapped[str | None] = mapped_column(sa.String(32))
    whatsapp_number: Mapped[str | None] = mapped_column(sa.String(32))
    preferred_language: Mapped[str | None] = mapped_column(sa.String(35))
    consent_sms: Mapped[bool] = mapped_column(default=False)
    consent_whatsapp: Mapped[bool] = mapped_column(default=False)
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Case(Base):
    """A support case of a contact; its creation and status changes are events."""

    __tablename__ = "cases"
    __table_args__ = (
        sa.CheckConstraint(_check_in("status", CaseStatus), name="status"),
        sa.UniqueConstraint("org_id", "number"),
        sa.Index("ix_cases_org_id_id", "org_id", "id"),
        sa.Index("ix_cases_org_status_resolved", "org_id", "status", "resolved_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    number: Mapped[str] = mapped_column(sa.String(100))
    title: Mapped[str] = mapped_column(sa.String(500))
    contact_id: Mapped[str | None] = mapped_column(sa.ForeignKey("contacts.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


class Event(Base):
    """Something happened to a record (ours or another system's); flows react to it.

    Written in the transaction of the change that raised it; ``processed_at`` is set once
    every automatic flow has seen it.
    """

    __tablename__ = "events"
    __table_args__ = (
        sa.Index("ix_events_pending", "processed_at", "id"),
        sa.Index("ix_events_org_id", "org_id", "id"),
    )

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    type: Mapped[str] = mapped_column(sa.String(100))
    record_type: Mapped[str] = mapped_column(sa.String(32))
    record_id: Mapped[str | None] = mapped_column(sa.String(200))
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    source: Mapped[str] = mapped_column(sa.String(32))
    occurred_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]


class Flow(Base):
    """A flow definition: its trigger, conditions, recipient mapping and configuration."""

    __tablename__ = "flows"
    __table_args__ = (
        sa.CheckConstraint(_check_in("trigger_type", TriggerType), name="trigger_type"),
        sa.UniqueConstraint("org_id", "name"),
        sa.Index("ix_flows_event", "org_id", "event_type", "enabled"),
        sa.Index("ix_flows_due", "enabled", "next_fire_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.String(1000))
    trigger_type: Mapped[str] = mapped_column(sa.String(16))
    event_type: Mapped[str | None] = mapped_column(sa.String(100))
    configuration_id: Mapped[str] = mapped_column(sa.String(36))
    definition: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    source: Mapped[str] = mapped_column(sa.Text)
    source_format: Mapped[str] = mapped_column(sa.String(8))
    enabled: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=1)
    next_fire_at: Mapped[datetime | None]
    last_fired_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class FlowRun(Base):
    """One execution of a flow: its recipients become send requests, batch by batch.

    ``cursor`` is the checkpoint (the last recipient key already turned into a batch);
    ``fire_key`` makes each event and each scheduled time start at most one run.
    """

    __tablename__ = "flow_runs"
    __table_args__ = (
        sa.CheckConstraint(_check_in("status", FlowRunStatus), name="status"),
        sa.UniqueConstraint("flow_id", "fire_key"),
        sa.Index("ix_flow_runs_due", "status", "due_at"),
        sa.Index("ix_flow_runs_org_created", "org_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    flow_id: Mapped[str] = mapped_column(sa.ForeignKey("flows.id"), index=True)
    trigger: Mapped[str] = mapped_column(sa.String(16))
    fire_key: Mapped[str | None] = mapped_column(sa.String(100))
    event_id: Mapped[int | None] = mapped_column(_BIGINT)
    source: Mapped[str] = mapped_column(sa.String(16))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    wait_reason: Mapped[str | None] = mapped_column(sa.String(200))
    due_at: Mapped[datetime]
    cursor: Mapped[str | None] = mapped_column(sa.String(200))
    exhausted: Mapped[bool] = mapped_column(default=False)
    total: Mapped[int | None] = mapped_column(sa.Integer)
    scanned: Mapped[int] = mapped_column(default=0)
    matched: Mapped[int] = mapped_column(default=0)
    queued: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    batches: Mapped[int] = mapped_column(default=0)
    error_count: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    failures: Mapped[int] = mapped_column(default=0)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(100))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class FlowRunBatch(Base):
    """Up to 100 contacts of a run, written before they are sent: resent as they are after a
    crash, under the same idempotency key, so nothing goes out twice."""

    __tablename__ = "flow_run_batches"
    # Routing finds the flow run a replied-to message came from by its send request.
    __table_args__ = (sa.Index("ix_flow_run_batches_request_id", "request_id"),)

    run_id: Mapped[str] = mapped_column(sa.ForeignKey("flow_runs.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    contacts: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    request_id: Mapped[str | None] = mapped_column(sa.String(36))
    queued: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class FlowRunRow(Base):
    """One row of a list uploaded for a run (CSV), kept until the run has used it."""

    __tablename__ = "flow_run_rows"

    run_id: Mapped[str] = mapped_column(sa.ForeignKey("flow_runs.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON)


class Queue(Base):
    """Where conversations wait for an agent, and how its members are chosen."""

    __tablename__ = "queues"
    __table_args__ = (
        sa.CheckConstraint(_check_in("assignment_method", AssignmentMethod), name="method"),
        sa.UniqueConstraint("org_id", "name"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(sa.String(200))
    assignment_method: Mapped[str] = mapped_column(sa.String(32), default="highest_capacity")
    priority: Mapped[int] = mapped_column(default=0)
    offer_timeout_seconds: Mapped[int | None] = mapped_column(sa.Integer)
    reassign_after_seconds: Mapped[int | None] = mapped_column(sa.Integer)
    wrap_up_seconds: Mapped[int] = mapped_column(default=0)
    hours: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    overflow: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class QueueMember(Base):
    """An agent who may be assigned the conversations of a queue."""

    __tablename__ = "queue_members"
    __table_args__ = (sa.Index("ix_queue_members_user", "user_id"),)

    queue_id: Mapped[str] = mapped_column(sa.ForeignKey("queues.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(sa.String(36))
    added_at: Mapped[datetime]
    # Round robin is per queue: the member's last conversation from it, and how many.
    last_assigned_at: Mapped[datetime | None]
    assignments: Mapped[int] = mapped_column(default=0)


class RoutingRule(Base):
    """One ordered rule: conditions on a reply and the queue it sends the conversation to."""

    __tablename__ = "routing_rules"
    __table_args__ = (sa.Index("ix_routing_rules_org_position", "org_id", "position"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(sa.String(200))
    position: Mapped[int]
    enabled: Mapped[bool] = mapped_column(default=True)
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    queue_id: Mapped[str] = mapped_column(sa.ForeignKey("queues.id"))
    required_skills: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    required_language: Mapped[str | None] = mapped_column(sa.String(35))
    priority: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ConversationEvent(Base):
    """One change of a conversation: who, when, from what to what, and why."""

    __tablename__ = "conversation_events"

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(sa.String(36))
    conversation_id: Mapped[str] = mapped_column(sa.ForeignKey("conversations.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    actor_user_id: Mapped[str | None] = mapped_column(sa.String(36))
    from_status: Mapped[str | None] = mapped_column(sa.String(16))
    to_status: Mapped[str | None] = mapped_column(sa.String(16))
    from_user_id: Mapped[str | None] = mapped_column(sa.String(36))
    to_user_id: Mapped[str | None] = mapped_column(sa.String(36))
    from_queue_id: Mapped[str | None] = mapped_column(sa.String(36))
    to_queue_id: Mapped[str | None] = mapped_column(sa.String(36))
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    detail: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    occurred_at: Mapped[datetime]


class ConversationNote(Base):
    """An agent's internal note on a conversation; never sent to the customer."""

    __tablename__ = "conversation_notes"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.String(36))
    conversation_id: Mapped[str] = mapped_column(sa.ForeignKey("conversations.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(sa.String(36))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime]


class CannedResponse(Base):
    """A prepared answer agents insert by its shortcode; ``{Slug}`` placeholders are filled."""

    __tablename__ = "canned_responses"
    __table_args__ = (sa.UniqueConstraint("org_id", "shortcode"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    shortcode: Mapped[str] = mapped_column(sa.String(64))
    title: Mapped[str | None] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class StreamEvent(Base):
    """A live update for the event stream; its id is the Server-Sent Events id.

    Written in the transaction of the change it tells of and kept for a retention window, so
    that a client reconnecting with ``Last-Event-ID`` misses nothing, in every process.
    ``user_id`` set: for that user only (and supervisors); unset: the whole organisation.
    """

    __tablename__ = "stream_events"
    __table_args__ = (sa.Index("ix_stream_events_org_id", "org_id", "id"),)

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(sa.String(36))
    user_id: Mapped[str | None] = mapped_column(sa.String(36))
    kind: Mapped[str] = mapped_column(sa.String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime]


WEBHOOK_DELIVERY_STATUSES = ("pending", "delivering", "succeeded", "failed")


class WebhookEndpoint(Base):
    """An integrator's URL that receives the events it subscribed to, signed with its secret.

    ``failing_since``: the first failed attempt since the last success; an endpoint failing
    for too long is disabled (``enabled`` false, with ``disabled_reason``).
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    url: Mapped[str] = mapped_column(sa.String(2000))
    description: Mapped[str | None] = mapped_column(sa.String(200))
    events: Mapped[list[str]] = mapped_column(sa.JSON)
    secret_encrypted: Mapped[str] = mapped_column(sa.Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(500))
    disabled_at: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookEvent(Base):
    """One event for the integrator, written in the transaction of the change it tells of.

    Its ``id`` is the ``webhook-id`` of every attempt to deliver it, to every endpoint, so
    that receivers can drop what they already have.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (sa.Index("ix_webhook_events_org_created", "org_id", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(sa.String(36))
    type: Mapped[str] = mapped_column(sa.String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime]


class WebhookDelivery(Base):
    """One event to one endpoint: the webhook queue's row, claimed under a lease.

    Deliveries with the same ``ordering_key`` (a message, a conversation) to one endpoint go
    out one after the other, in ``id`` order.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.CheckConstraint(_check_in("status", WEBHOOK_DELIVERY_STATUSES), name="status"),
        sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        sa.Index("ix_webhook_deliveries_order", "endpoint_id", "ordering_key", "id"),
        sa.Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(sa.String(36))
    endpoint_id: Mapped[str] = mapped_column(sa.ForeignKey("webhook_endpoints.id"))
    event_id: Mapped[str] = mapped_column(sa.ForeignKey("webhook_events.id"), index=True)
    ordering_key: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    worker_id: Mapped[str | None] = mapped_column(sa.String(100))
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class WebhookAttempt(Base):
    """One HTTP call of a delivery: when, the answer's status code or the error, how long."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(sa.String(36))
    delivery_id: Mapped[int] = mapped_column(
        _BIGINT, sa.ForeignKey("webhook_deliveries.id"), index=True
    )
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(sa.String(500))
    duration_ms: Mapped[int]


class AuditEvent(Base):
    """One administrative change: who (API key and user, or the command line), when, which
    target, what changed (secrets only as changed). Written in the transaction of the change."""

    __tablename__ = "audit_events"
    __table_args__ = (
        sa.CheckConstraint(_check_in("via", ["api", "console", "cli"]), name="via"),
        sa.Index("ix_audit_events_org_id", "org_id", "id"),
        sa.Index("ix_audit_events_target", "org_id", "target_type", "target_id"),
    )

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(sa.String(36))
    occurred_at: Mapped[datetime]
    action: Mapped[str] = mapped_column(sa.String(64))
    target_type: Mapped[str] = mapped_column(sa.String(32))
    target_id: Mapped[str | None] = mapped_column(sa.String(64))
    via: Mapped[str] = mapped_column(sa.String(8))
    actor_key_id: Mapped[str | None] = mapped_column(sa.String(36))
    actor_user_id: Mapped[str | None] = mapped_column(sa.String(36))
    actor_role: Mapped[str | None] = mapped_column(sa.String(16))
    changes: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
