"""The composition root: builds every part from one :class:`~outbound.config.Settings`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import FastAPI

from outbound import __version__
from outbound.adapters.db import migrate
from outbound.adapters.db.engine import Database, create_engine
from outbound.adapters.db.stages import run_in_stage
from outbound.adapters.metrics import Metrics
from outbound.adapters.passwords import Passwords
from outbound.adapters.providers.base import Provider, ProviderDeps
from outbound.adapters.providers.http import HttpClient
from outbound.adapters.providers.registry import build_providers
from outbound.adapters.secrets import SecretBox, key_file_path, load_or_create_key
from outbound.adapters.webhook_client import WebhookClient
from outbound.clock import Clock, SystemClock
from outbound.config import Settings
from outbound.console import install_console
from outbound.domain.reports import parse_prices
from outbound.domain.webhooks import AllowedHosts
from outbound.services.agent_replies import AgentReplyService
from outbound.services.assignment import AssignmentService
from outbound.services.audit import AuditService
from outbound.services.cancellation import CancelService
from outbound.services.channels import ChannelService
from outbound.services.configurations import ConfigurationService
from outbound.services.consent import ConsentService
from outbound.services.console_sessions import ConsoleSessions
from outbound.services.conversation_sweep import ConversationSweep, SweepPolicy
from outbound.services.conversations import ConversationService
from outbound.services.dashboard import DashboardService
from outbound.services.dispatch import Dispatcher
from outbound.services.flow_engine import FlowEngine
from outbound.services.flows import FlowService
from outbound.services.inbound import InboundService
from outbound.services.intake import ConversationIntake
from outbound.services.lifecycle import LifecycleService
from outbound.services.presence import PresenceService
from outbound.services.queues import QueueService
from outbound.services.records import RecordService
from outbound.services.reports import ReportService
from outbound.services.retention import Retention
from outbound.services.routing import RoutingService
from outbound.services.sending import SendService
from outbound.services.status_checks import StatusChecker
from outbound.services.statuses import StatusService
from outbound.services.stream import StreamHub
from outbound.services.templates import TemplateService
from outbound.services.tracking import TrackingService
from outbound.services.users import UserService
from outbound.services.webhook_delivery import WebhookDeliverer
from outbound.services.webhook_endpoints import WebhookEndpointService
from outbound.services.webhooks import WebhookService, webhook_url
from outbound.web.body_limit import install_body_limit
from outbound.web.errors import SafeJSONResponse, install_error_handlers
from outbound.web.middleware import install_metrics, install_webhook_fast_path
from outbound.web.openapi import install_openapi
from outbound.web.routes import (
    agents,
    audit,
    catalog,
    consent,
    conversations,
    docs,
    flows,
    health,
    messages,
    queues,
    records,
    reports,
    users,
    webhook_endpoints,
    webhooks,
)
from outbound.web.security import install_security_headers
from outbound.web.throttle import FailureThrottle

__all__ = ["Container", "build_container", "create_app"]

log = logging.getLogger(__name__)


@dataclass
class Container:
    """Every long-lived object of one process."""

    settings: Settings
    clock: Clock
    db: Database
    secrets: SecretBox
    statuses: StatusService
    providers: dict[str, Provider]
    channels: ChannelService
    templates: TemplateService
    configurations: ConfigurationService
    sending: SendService
    tracking: TrackingService
    dashboard: DashboardService
    reports: ReportService
    retention: Retention
    inbound: InboundService
    webhooks: WebhookService
    conversations: ConversationService
    records: RecordService
    metrics: Metrics
    http: HttpClient
    flows: FlowService
    users: UserService
    console_sessions: ConsoleSessions
    presence: PresenceService
    queues: QueueService
    routing: RoutingService
    assignment: AssignmentService
    lifecycle: LifecycleService
    agent_replies: AgentReplyService
    intake: ConversationIntake
    conversation_sweep: ConversationSweep
    stream: StreamHub
    webhook_endpoints: WebhookEndpointService
    webhook_client: WebhookClient
    audit: AuditService
    _closed: bool = field(default=False, repr=False)

    @property
    def consent(self) -> ConsentService:
        """Reading a number's consent and an admin's changes (stateless: made when asked)."""
        return ConsentService(self.db, self.clock, default_region=self.settings.default_region)

    @property
    def cancellation(self) -> CancelService:
        """Canceling queued messages (stateless: made when asked)."""
        return CancelService(self.db, self.clock, self.tracking)

    def dispatcher(self, worker_id: str | None = None) -> Dispatcher:
        settings = self.settings
        return Dispatcher(
            self.db,
            self.providers,
            self.secrets,
            self.clock,
            worker_id=worker_id,
            batch_size=settings.worker_batch_size,
            concurrency=settings.worker_concurrency,
            poll_interval=settings.worker_poll_interval,
            lease_seconds=settings.lease_seconds,
            retry_base_seconds=settings.retry_base_seconds,
            retry_max_seconds=settings.retry_max_seconds,
            circuit_threshold=settings.circuit_threshold,
            circuit_cooldown_seconds=settings.circuit_cooldown_seconds,
            shutdown_grace_seconds=settings.shutdown_grace_seconds,
            metrics=self.metrics,
            statuses=self.statuses,
            retention=self.retention,
            status_checker=self.status_checker(),
            status_check_after_seconds=settings.status_check_after_seconds,
            http_timeout=settings.http_timeout,
        )

    def status_checker(self) -> StatusChecker:
        """The status checks of sent messages whose final status did not come."""
        return StatusChecker(
            self.db,
            self.secrets,
            self.clock,
            self.providers,
            self.statuses,
            after_seconds=self.settings.status_check_after_seconds,
            rate=self.settings.status_check_rate,
            metrics=self.metrics,
        )

    def flow_engine(self, worker_id: str | None = None) -> FlowEngine:
        settings = self.settings
        return FlowEngine(
            self.db,
            self.clock,
            self.sending,
            worker_id=worker_id,
            poll_interval=settings.worker_poll_interval,
            lease_seconds=settings.lease_seconds,
            event_retention_days=settings.event_retention_days,
            max_contacts_per_request=settings.max_contacts_per_request,
            idempotency_stale_seconds=settings.idempotency_stale_seconds,
        )

    def webhook_deliverer(self, worker_id: str | None = None) -> WebhookDeliverer:
        settings = self.settings
        return WebhookDeliverer(
            self.db,
            self.secrets,
            self.clock,
            self.webhook_client,
            worker_id=worker_id,
            concurrency=settings.webhook_concurrency,
            poll_interval=settings.worker_poll_interval,
            lease_seconds=max(settings.lease_seconds, 2 * settings.webhook_timeout),
            disable_after_seconds=settings.webhook_disable_after_seconds,
            retention_days=settings.webhook_retention_days,
            shutdown_grace_seconds=settings.shutdown_grace_seconds,
            metrics=self.metrics,
        )

    def migrate(self) -> None:
        # On SQLite, in the writers' turn: another process migrating or writing at the same
        # time would otherwise make alembic's transaction fail with "database is locked".
        with self.db.exclusive():
            migrate.upgrade(self.db.engine)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for provider in self.providers.values():
            await provider.aclose()
        await self.stream.aclose()
        await self.http.aclose()
        await self.webhook_client.aclose()
        self.db.dispose()


def build_container(
    settings: Settings,
    *,
    clock: Clock | None = None,
    providers: Mapping[str, Provider] | None = None,
) -> Container:
    """Wire the service; ``providers`` adds or replaces adapters (tests, benchmarks)."""
    clock = clock or SystemClock()
    if settings.is_sqlite and not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = settings.secret_key or load_or_create_key(settings.data_dir)
    # A key file is read again when a credential opens with none of its keys (rotation).
    key_file = None if settings.secret_key else key_file_path(settings.data_dir)
    db = Database(
        create_engine(
            settings.resolved_database_url, pool_size=max(10, settings.worker_batch_size // 20)
        )
    )
    metrics = Metrics(
        db,
        clock,
        presence_timeout=settings.presence_timeout_seconds,
        tenant_labels=settings.metrics_tenant_labels,
    )
    statuses = StatusService(
        db,
        clock,
        metrics=metrics,
        status_check_after=timedelta(seconds=settings.status_check_after_seconds),
    )
    http = HttpClient(
        pool_size=max(10, settings.worker_concurrency),
        connect_timeout=settings.http_connect_timeout,
        total_timeout=settings.http_timeout,
    )

    def status_callback(channel_id: str) -> str | None:
        base = settings.public_base_url
        return webhook_url(base, channel_id) if base else None

    registry = build_providers(
        ProviderDeps(
            http=http,
            clock=clock,
            reporter=statuses,
            settings=settings,
            status_callback=status_callback,
        )
    )
    registry.update(providers or {})
    secrets = SecretBox(key, key_file=key_file)
    reports = ReportService(db, prices=parse_prices(settings.price_per_segment))
    presence_timeout = timedelta(seconds=settings.presence_timeout_seconds)
    allowed_hosts = AllowedHosts.parse(settings.webhook_allowed_hosts)
    routing = RoutingService(db, clock, presence_timeout=presence_timeout)
    intake = ConversationIntake(routing, max_attempts=settings.max_attempts)
    assignment = AssignmentService(
        db, clock, presence_timeout=presence_timeout, max_declines=settings.max_declines
    )
    inbound = InboundService(
        db,
        clock,
        intake=intake,
        assignment=assignment,
        default_region=settings.default_region,
        max_attempts=settings.max_attempts,
    )
    return Container(
        settings=settings,
        clock=clock,
        db=db,
        secrets=secrets,
        statuses=statuses,
        providers=registry,
        channels=ChannelService(
            db, secrets, clock, registry.keys(), public_base_url=settings.public_base_url
        ),
        templates=TemplateService(db, clock),
        configurations=ConfigurationService(db, clock),
        sending=SendService(
            db,
            clock,
            default_region=settings.default_region,
            max_contacts_per_request=settings.max_contacts_per_request,
            hourly_request_quota=settings.hourly_request_quota,
            max_attempts=settings.max_attempts,
            idempotency_stale_seconds=settings.idempotency_stale_seconds,
            metrics=metrics,
        ),
        tracking=TrackingService(db),
        dashboard=DashboardService(db, clock, reports),
        reports=reports,
        retention=Retention(
            db,
            clock,
            body_retention_days=settings.body_retention_days,
            default_region=settings.default_region,
        ),
        inbound=inbound,
        webhooks=WebhookService(db, secrets, statuses, inbound),
        conversations=ConversationService(db),
        records=RecordService(db, clock, default_region=settings.default_region),
        metrics=metrics,
        http=http,
        flows=FlowService(db, clock),
        users=UserService(
            db, clock, Passwords(), presence_timeout=settings.presence_timeout_seconds
        ),
        console_sessions=ConsoleSessions(db, clock),
        presence=PresenceService(
            db,
            clock,
            timeout=settings.presence_timeout_seconds,
            on_available=assignment.assign_for_agent,
        ),
        queues=QueueService(db, clock, on_members_changed=assignment.assign_queue),
        routing=routing,
        assignment=assignment,
        lifecycle=LifecycleService(db, clock, assignment, presence_timeout=presence_timeout),
        agent_replies=AgentReplyService(
            db,
            clock,
            max_attempts=settings.max_attempts,
            metrics=metrics,
            on_released=assignment.assign_for_agent,
        ),
        intake=intake,
        conversation_sweep=ConversationSweep(
            db,
            clock,
            assignment,
            intake,
            SweepPolicy(
                idle_close=timedelta(days=settings.conversation_idle_days),
                idle_close_wrap_up=timedelta(days=settings.wrap_up_idle_days),
                stream_retention=timedelta(seconds=settings.stream_retention_seconds),
            ),
        ),
        stream=StreamHub(db),
        webhook_endpoints=WebhookEndpointService(db, secrets, clock, allowed_hosts=allowed_hosts),
        webhook_client=WebhookClient(
            allowed_hosts,
            timeout=settings.webhook_timeout,
            pool_size=settings.webhook_concurrency,
        ),
        audit=AuditService(db),
    )


def create_app(container: Container, *, run_worker: bool | None = None) -> FastAPI:
    """The HTTP application; with ``run_worker`` it also runs a dispatcher in-process."""
    settings = container.settings
    with_worker = settings.worker_enabled if run_worker is None else run_worker

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await asyncio.to_thread(container.migrate)
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if with_worker:
            tasks.append(
                asyncio.create_task(run_in_stage("dispatch", container.dispatcher().run(stop)))
            )
            tasks.append(asyncio.create_task(container.flow_engine().run(stop)))
            tasks.append(asyncio.create_task(container.webhook_deliverer().run(stop)))
            tasks.append(
                asyncio.create_task(
                    container.conversation_sweep.run(stop, settings.routing_sweep_seconds)
                )
            )
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                await task
            await container.aclose()

    app = FastAPI(
        title="outbound",
        version=__version__,
        description="Outbound SMS and WhatsApp messaging: templates, send API, tracking.",
        lifespan=lifespan,
        default_response_class=SafeJSONResponse,
        docs_url=None,  # served by routes/docs.py, with a content policy
        redoc_url=None,
        telemetry=None
        if settings.opentelemetry
        else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.container = container
    app.state.auth_throttle = FailureThrottle(settings.auth_failure_limit)
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(health.router)
    app.include_router(docs.router)
    app.include_router(catalog.router)
    app.include_router(users.router)
    app.include_router(messages.router)
    app.include_router(consent.router)
    app.include_router(conversations.router)
    app.include_router(agents.router)
    app.include_router(queues.router)
    app.include_router(records.router)
    app.include_router(reports.router)
    app.include_router(webhooks.router)
    app.include_router(flows.router)
    app.include_router(webhook_endpoints.router)
    app.include_router(audit.router)
    install_console(app, container)
    # Added in this order: the body limit answers inside the security headers; the webhook fast
    # path answers outside them (it adds its own), and request timing wraps both.
    install_body_limit(app, settings.max_json_body_bytes)
    install_security_headers(app)
    install_webhook_fast_path(app)
    install_metrics(app, container.metrics)
    return app
