"""The API contract: request and response models shared by the web layer and the services.

One module per concept, each built on :mod:`~outbound.schemas.base` (every request body is an
:class:`InputModel`, every response an :class:`OutputModel`):

- :mod:`~outbound.schemas.catalog`: API keys, channels, templates, outbound configurations;
- :mod:`~outbound.schemas.users`: users and their presence;
- :mod:`~outbound.schemas.queues`: queues, routing rules and the organisation's routing;
- :mod:`~outbound.schemas.agents`: what agents do with conversations (answers, notes, ...);
- :mod:`~outbound.schemas.sending`: the send request and its answer;
- :mod:`~outbound.schemas.messages`: messages and their status history, canceling;
- :mod:`~outbound.schemas.consent`: consent per number and channel;
- :mod:`~outbound.schemas.conversations`: conversations and their messages;
- :mod:`~outbound.schemas.records`: contacts, cases, events and the CSV import;
- :mod:`~outbound.schemas.flows`: flows and flow runs;
- :mod:`~outbound.schemas.webhooks`: webhook endpoints, their deliveries and attempts;
- :mod:`~outbound.schemas.audit`: the audit log of administrative changes;
- :mod:`~outbound.schemas.reports`: the message report, the funnel and agents' times.

Every public name is importable from here too, as are the vocabularies of ``domain/`` that the
models use (:class:`Role`, :class:`ChannelType`, ...).
"""

from __future__ import annotations

from outbound.domain.assignment import AssignmentMethod
from outbound.domain.cases import CaseStatus
from outbound.domain.channels import ChannelType, ProviderName
from outbound.domain.conversations import ConversationMode
from outbound.domain.flow_runs import FlowRunStatus
from outbound.domain.roles import Role
from outbound.schemas.agents import (
    CannedResponseCreate,
    CannedResponseOut,
    CannedResponseUpdate,
    CloseIn,
    DeclineIn,
    NoteIn,
    NoteOut,
    RenderedCanned,
    ReplyIn,
    ReplyOut,
    SimulateIn,
    SnoozeIn,
    TransferIn,
)
from outbound.schemas.audit import AuditEventOut
from outbound.schemas.base import (
    ContextValue,
    InputModel,
    IsoDateTime,
    LocaleValue,
    OutputModel,
    Page,
    Said,
    context_value_checks,
)
from outbound.schemas.catalog import (
    DEFAULT_TEXT_LIMIT,
    LOCALIZED_TEXT_LIMIT,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    ChannelCreate,
    ChannelOut,
    ChannelUpdate,
    ConfigurationCreate,
    ConfigurationOut,
    ConfigurationUpdate,
    ContactWindowSpec,
    FrequencyCapSpec,
    LocaleChoice,
    NamedRef,
    PreviewIn,
    PreviewOut,
    TemplateChangeOut,
    TemplateCreate,
    TemplateOut,
    TemplateUpdate,
    TemplateVersionOut,
    TemplateWarning,
)
from outbound.schemas.consent import (
    ConsentChange,
    ConsentChannel,
    ConsentOut,
    ConsentRecordIn,
)
from outbound.schemas.conversations import (
    AnsweredMessage,
    ContactSummary,
    ConversationEntry,
    ConversationOut,
    HistoryEntry,
    NoteEntry,
)
from outbound.schemas.flows import FlowOut, FlowRunError, FlowRunIn, FlowRunOut, RunCondition
from outbound.schemas.messages import CancelIn, CancelOut, MessageEventOut, MessageOut
from outbound.schemas.queues import (
    OrganizationRoutingUpdate,
    OverflowSpec,
    QueueCreate,
    QueueOut,
    QueueUpdate,
    RoutingConditionIn,
    RoutingRuleCreate,
    RoutingRuleOut,
    RoutingRuleUpdate,
)
from outbound.schemas.records import (
    MAX_IMPORT_ERRORS,
    CaseCreate,
    CaseOut,
    CaseUpdate,
    Consent,
    ConsentIn,
    ConsentUpdate,
    ContactCreate,
    ContactOut,
    ContactUpdate,
    ErasureIn,
    EventIn,
    EventOut,
    ImportResult,
    ImportRowError,
)
from outbound.schemas.reports import (
    AgentReport,
    AgentRow,
    FailedByCode,
    FunnelGroup,
    FunnelReport,
    LatencyPercentiles,
    MessageCounts,
    MessageReport,
    MessageReportGroup,
    MessageTotals,
    QueueRow,
    TimeStats,
)
from outbound.schemas.sending import (
    MAX_CONTEXT_VALUE_CHARACTERS,
    ContactItem,
    ContactOutcome,
    SendIn,
    SendOut,
    SendWarning,
)
from outbound.schemas.users import PresenceIn, PresenceOut, UserCreate, UserOut, UserUpdate
from outbound.schemas.webhooks import (
    WebhookAttemptOut,
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointOut,
    WebhookEndpointUpdate,
)

__all__ = [
    "DEFAULT_TEXT_LIMIT",
    "LOCALIZED_TEXT_LIMIT",
    "MAX_CONTEXT_VALUE_CHARACTERS",
    "MAX_IMPORT_ERRORS",
    "AgentReport",
    "AgentRow",
    "AnsweredMessage",
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyOut",
    "AssignmentMethod",
    "AuditEventOut",
    "CancelIn",
    "CancelOut",
    "CannedResponseCreate",
    "CannedResponseOut",
    "CannedResponseUpdate",
    "CaseCreate",
    "CaseOut",
    "CaseStatus",
    "CaseUpdate",
    "ChannelCreate",
    "ChannelOut",
    "ChannelType",
    "ChannelUpdate",
    "CloseIn",
    "ConfigurationCreate",
    "ConfigurationOut",
    "ConfigurationUpdate",
    "Consent",
    "ConsentChange",
    "ConsentChannel",
    "ConsentIn",
    "ConsentOut",
    "ConsentRecordIn",
    "ConsentUpdate",
    "ContactCreate",
    "ContactItem",
    "ContactOut",
    "ContactOutcome",
    "ContactSummary",
    "ContactUpdate",
    "ContactWindowSpec",
    "ContextValue",
    "ConversationEntry",
    "ConversationMode",
    "ConversationOut",
    "DeclineIn",
    "ErasureIn",
    "EventIn",
    "EventOut",
    "FailedByCode",
    "FlowOut",
    "FlowRunError",
    "FlowRunIn",
    "FlowRunOut",
    "FlowRunStatus",
    "FrequencyCapSpec",
    "FunnelGroup",
    "FunnelReport",
    "HistoryEntry",
    "ImportResult",
    "ImportRowError",
    "InputModel",
    "IsoDateTime",
    "LatencyPercentiles",
    "LocaleChoice",
    "LocaleValue",
    "MessageCounts",
    "MessageEventOut",
    "MessageOut",
    "MessageReport",
    "MessageReportGroup",
    "MessageTotals",
    "NamedRef",
    "NoteEntry",
    "NoteIn",
    "NoteOut",
    "OrganizationRoutingUpdate",
    "OutputModel",
    "OverflowSpec",
    "Page",
    "PresenceIn",
    "PresenceOut",
    "PreviewIn",
    "PreviewOut",
    "ProviderName",
    "QueueCreate",
    "QueueOut",
    "QueueRow",
    "QueueUpdate",
    "RenderedCanned",
    "ReplyIn",
    "ReplyOut",
    "Role",
    "RoutingConditionIn",
    "RoutingRuleCreate",
    "RoutingRuleOut",
    "RoutingRuleUpdate",
    "RunCondition",
    "Said",
    "SendIn",
    "SendOut",
    "SendWarning",
    "SimulateIn",
    "SnoozeIn",
    "TemplateChangeOut",
    "TemplateCreate",
    "TemplateOut",
    "TemplateUpdate",
    "TemplateVersionOut",
    "TemplateWarning",
    "TimeStats",
    "TransferIn",
    "UserCreate",
    "UserOut",
    "UserUpdate",
    "WebhookAttemptOut",
    "WebhookDeliveryOut",
    "WebhookEndpointCreate",
    "WebhookEndpointCreated",
    "WebhookEndpointOut",
    "WebhookEndpointUpdate",
    "context_value_checks",
]
