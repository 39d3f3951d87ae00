"""Metrics for operators, in Prometheus format (prometheus-client).

Each process has its own registry (no globals); counters and histograms are per process and
Prometheus sums them across processes. Outbox depth and message counts are read from the
database at scrape time, so every process reports the same shared figures.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import (
    Conversation,
    Event,
    FlowRun,
    Message,
    Queue,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from outbound.clock import Clock

__all__ = ["CONTENT_TYPE", "Metrics", "serve_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_IN_FLIGHT = ("queued", "sending", "sent")
_WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _OutboxCollector(Collector):
    """Outbox depth, age of the oldest due message, and messages not yet final."""

    def __init__(self, db: Database, clock: Clock, tenant_labels: bool) -> None:
        self._db = db
        self._clock = clock
        self._tenant_labels = tenant_labels

    def describe(self) -> list[Any]:
        # Nothing to describe up front: collecting reads the database, which may not be ready.
        return []

    def collect(self) -> Iterator[Any]:
        try:
            yield from self._collect()
        except sa.exc.SQLAlchemyError:
            yield GaugeMetricFamily(
                "outbound_database_up", "Whether the database answered the scrape", value=0
            )
            return
        yield GaugeMetricFamily(
            "outbound_database_up", "Whether the database answered the scrape", value=1
        )

    def _collect(self) -> Iterator[Any]:
        now: datetime = self._clock.now()
        with self._db.read() as session:
            due_count, oldest = session.execute(
                sa.select(sa.func.count(), sa.func.min(Message.scheduled_at)).where(
                    Message.status == "queued", Message.scheduled_at <= now
                )
            ).one()
            columns = [Message.status, Message.provider]
            if self._tenant_labels:
                columns.append(Message.channel_id)
            rows = session.execute(
                sa.select(*columns, sa.func.count())
                .where(Message.status.in_(_IN_FLIGHT))
                .group_by(*columns)
            ).all()
            events_pending, oldest_event = session.execute(
                sa.select(sa.func.count(), sa.func.min(Event.occurred_at)).where(
                    Event.processed_at.is_(None)
                )
            ).one()
            runs = session.execute(
                sa.select(FlowRun.status, sa.func.count())
                .where(FlowRun.status.in_(("pending", "running")))
                .group_by(FlowRun.status)
            ).all()
        yield GaugeMetricFamily(
            "outbound_outbox_due_messages", "Queued messages whose time has come", value=due_count
        )
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        yield GaugeMetricFamily(
            "outbound_outbox_oldest_due_age_seconds",
            "How long the oldest due message has waited",
            value=(now - oldest).total_seconds() if oldest is not None else 0.0,
        )
        labels = ["status", "provider"] + (["channel_id"] if self._tenant_labels else [])
        family = GaugeMetricFamily(
            "outbound_messages",
            "Messages not yet final, by status and provider (and channel, where tenant labels "
            "are on)",
            labels=labels,
        )
        for *values, count in rows:
            family.add_metric([str(v) for v in values], count)
        yield family
        yield GaugeMetricFamily(
            "outbound_events_pending",
            "Events no flow has looked at yet",
            value=events_pending,
        )
        if oldest_event is not None and oldest_event.tzinfo is None:
            oldest_event = oldest_event.replace(tzinfo=UTC)
        yield GaugeMetricFamily(
            "outbound_events_oldest_pending_age_seconds",
            "How long the oldest pending event has waited",
            value=(now - oldest_event).total_seconds() if oldest_event is not None else 0.0,
        )
        active = GaugeMetricFamily(
            "outbound_flow_runs", "Flow runs not yet finished, by status", labels=["status"]
        )
        counts = dict(runs)
        for status in ("pending", "running"):
            active.add_metric([status], counts.get(status, 0))
        yield active


class _AgentsCollector(Collector):
    """Conversations waiting per queue and their oldest wait; users by presence."""

    def __init__(
        self, db: Database, clock: Clock, presence_timeout: float, tenant_labels: bool
    ) -> None:
        self._db = db
        self._clock = clock
        self._presence_timeout = presence_timeout
        self._tenant_labels = tenant_labels

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        try:
            yield from self._collect()
        except sa.exc.SQLAlchemyError:
            return

    def _collect(self) -> Iterator[Any]:
        now: datetime = self._clock.now()
        with self._db.read() as session:
            waiting = session.execute(
                sa.select(
                    Queue.id,
                    Queue.name,
                    sa.func.count(Conversation.id),
                    sa.func.min(Conversation.waiting_since),
                )
                .join(
                    Conversation,
                    sa.and_(Conversation.queue_id == Queue.id, Conversation.status == "open"),
                    isouter=True,
                )
                .group_by(Queue.id, Queue.name)
            ).all()
            seen_after = now.timestamp() - self._presence_timeout
            presence = session.execute(
                sa.select(User.presence, User.last_seen_at, sa.func.count())
                .where(User.active.is_(True))
                .group_by(User.presence, User.last_seen_at)
            ).all()
        labels = ["queue_id", "queue"] if self._tenant_labels else []
        count = GaugeMetricFamily(
            "outbound_conversations_waiting",
            "Conversations waiting in a queue for an agent (by queue, where tenant labels are on)",
            labels=labels,
        )
        age = GaugeMetricFamily(
            "outbound_conversations_oldest_wait_seconds",
            "How long the longest-waiting conversation has waited (by queue, where tenant labels "
            "are on)",
            labels=labels,
        )
        total, longest = 0, 0.0
        for queue_id, name, waiting_count, oldest in waiting:
            if oldest is not None and oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)
            waited = (now - oldest).total_seconds() if oldest is not None else 0.0
            total, longest = total + waiting_count, max(longest, waited)
            if self._tenant_labels:
                count.add_metric([queue_id, name], waiting_count)
                age.add_metric([queue_id, name], waited)
        if not self._tenant_labels:
            count.add_metric([], total)
            age.add_metric([], longest)
        yield count
        yield age
        totals: dict[str, int] = {}
        for status, last_seen, users in presence:
            if last_seen is not None and last_seen.tzinfo is None:
                last_seen = last_seen.replace(tzinfo=UTC)
            fresh = last_seen is not None and last_seen.timestamp() >= seen_after
            state = status if fresh else "offline"
            totals[state] = totals.get(state, 0) + users
        agents = GaugeMetricFamily(
            "outbound_users_by_presence",
            "Active users by presence (offline when not seen within the presence timeout)",
            labels=["presence"],
        )
        for state in ("available", "busy", "dnd", "away", "offline"):
            agents.add_metric([state], totals.get(state, 0))
        yield agents


class _WebhookCollector(Collector):
    """The webhook queue: deliveries waiting (by endpoint, where tenant labels are on); the
    oldest; endpoints disabled."""

    def __init__(self, db: Database, clock: Clock, tenant_labels: bool) -> None:
        self._db = db
        self._clock = clock
        self._tenant_labels = tenant_labels

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        try:
            yield from self._collect()
        except sa.exc.SQLAlchemyError:
            return

    def _collect(self) -> Iterator[Any]:
        now: datetime = self._clock.now()
        with self._db.read() as session:
            rows = session.execute(
                sa.select(
                    WebhookDelivery.endpoint_id,
                    sa.func.count(),
                    sa.func.min(WebhookDelivery.created_at),
                )
                .where(WebhookDelivery.status.in_(("pending", "delivering")))
                .group_by(WebhookDelivery.endpoint_id)
            ).all()
            disabled = session.execute(
                sa.select(sa.func.count()).where(WebhookEndpoint.enabled.is_(False))
            ).scalar_one()
        labels = ["endpoint_id"] if self._tenant_labels else []
        pending = GaugeMetricFamily(
            "outbound_webhook_pending",
            "Webhook deliveries not yet made (waiting, retrying or in flight)",
            labels=labels,
        )
        oldest_by_endpoint = GaugeMetricFamily(
            "outbound_webhook_oldest_pending_age_seconds",
            "How long the oldest delivery not yet made has waited",
            labels=labels,
        )
        total, longest = 0, 0.0
        for endpoint_id, count, oldest in rows:
            if oldest is not None and oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)
            age = max((now - oldest).total_seconds() if oldest is not None else 0.0, 0.0)
            total, longest = total + count, max(longest, age)
            if self._tenant_labels:
                pending.add_metric([endpoint_id], count)
                oldest_by_endpoint.add_metric([endpoint_id], age)
        if not self._tenant_labels:
            pending.add_metric([], total)
            oldest_by_endpoint.add_metric([], longest)
        yield pending
        yield oldest_by_endpoint
        yield GaugeMetricFamily(
            "outbound_webhook_endpoints_disabled",
            "Webhook endpoints disabled (by their failures or by hand)",
            value=disabled,
        )


class Metrics:
    """The metrics of one process."""

    def __init__(
        self,
        db: Database | None = None,
        clock: Clock | None = None,
        *,
        presence_timeout: float = 60.0,
        tenant_labels: bool = False,
    ) -> None:
        """``tenant_labels``: label series with channel, queue and endpoint ids (and queue
        names), which tell who the organisations are and how much each does; off, those
        series are totals."""
        self.registry = CollectorRegistry()
        self.tenant_labels = tenant_labels
        self.accepted = Counter(
            "outbound_contacts_total",
            "Contacts of send requests, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.transitions = Counter(
            "outbound_message_transitions_total",
            "Message status changes, by new status and provider",
            ["status", "provider"],
            registry=self.registry,
        )
        self.provider_latency = Histogram(
            "outbound_provider_request_seconds",
            "Duration of provider API calls",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.provider_errors = Counter(
            "outbound_provider_errors_total",
            "Provider calls that failed, by provider and kind (transient, permanent, credentials)",
            ["provider", "kind"],
            registry=self.registry,
        )
        self.provider_lookups = Counter(
            "outbound_provider_lookups_total",
            "Look-ups at the provider of a send of unknown outcome before sending it again, by "
            "provider and result (found, not_found, unavailable, error)",
            ["provider", "result"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "outbound_http_request_seconds",
            "Duration of API requests",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.db_write_wait = Histogram(
            "outbound_database_write_wait_seconds",
            "Time write transactions waited for their turn (SQLite's single writer)",
            buckets=_WRITE_BUCKETS,
            registry=self.registry,
        )
        self.db_write = Histogram(
            "outbound_database_write_seconds",
            "Duration of write transactions once begun, commit included",
            buckets=_WRITE_BUCKETS,
            registry=self.registry,
        )
        if db is not None:
            db.write_observer = self._observe_write
            self.registry.register(_StagesCollector(db))
        self.first_response = Histogram(
            "outbound_first_response_seconds",
            "Time from a conversation's first customer message to its agent's first answer",
            buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600),
            registry=self.registry,
        )
        self.status_checks = Counter(
            "outbound_status_checks_total",
            "Status checks of sent messages without a final status, by provider and result "
            "(delivered, undelivered, failed, canceled, pending, error, unknown, gave_up, "
            "unsupported)",
            ["provider", "result"],
            registry=self.registry,
        )
        self.webhook_attempts = Counter(
            "outbound_webhook_attempts_total",
            "Webhook calls made by this process, by outcome (succeeded, failed)",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook_failures = Counter(
            "outbound_webhook_failures_total",
            "Webhook calls that failed (no answer, or not 2xx), by endpoint where tenant labels "
            "are on",
            ["endpoint_id"] if tenant_labels else [],
            registry=self.registry,
        )
        if db is not None and clock is not None:
            self.registry.register(_OutboxCollector(db, clock, tenant_labels))
            self.registry.register(_WebhookCollector(db, clock, tenant_labels))
            self.registry.register(_AgentsCollector(db, clock, presence_timeout, tenant_labels))

    def webhook_failed(self, endpoint_id: str) -> None:
        if self.tenant_labels:
            self.webhook_failures.labels(endpoint_id).inc()
        else:
            self.webhook_failures.inc()

    def _observe_write(self, waited: float, took: float) -> None:
        self.db_write_wait.observe(waited)
        self.db_write.observe(took)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _BareHandler(ServerHandler):
    server_software = ""  # no Server banner


class _QuietHandler(WSGIRequestHandler):
    """No access log lines on stderr, and no ``Server`` banner."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _BareHandler(
            self.rfile,
            self.wfile,  # type: ignore[arg-type]
            self.get_stderr(),
            self.get_environ(),
            multithread=True,
        )
        handler.request_handler = self  # type: ignore[attr-defined]
        handler.run(self.server.get_app())  # type: ignore[attr-defined]


class _MetricsServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _guarded(app: Any, token: str | None) -> Any:
    """Metrics for whoever holds ``token``, or, without one, for this machine only."""

    def guarded(environ: dict[str, Any], start_response: Any) -> Any:
        if token:
            scheme, _, given = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), token.encode()
            ):
                start_response(
                    "401 Unauthorized",
                    [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")],
                )
                return [b"/metrics needs 'Authorization: Bearer <metrics token>'\n"]
        elif not _is_loopback(environ.get("REMOTE_ADDR", "")):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"/metrics answers only this machine; set OUTBOUND_METRICS_TOKEN\n"]
        return app(environ, start_response)

    return guarded


def serve_metrics(
    port: int, host: str, registry: CollectorRegistry, *, token: str | None
) -> WSGIServer:
    """Serve ``registry`` at ``host:port`` in a thread, as the API guards its /metrics."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server_class = type("_Server", (_MetricsServer,), {"address_family": family})
    server: WSGIServer = make_server(
        host, port, _guarded(make_wsgi_app(registry), token), server_class, _QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


class _StagesCollector(Collector):
    """The database work of this process by stage (:mod:`outbound.adapters.db.stages`)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        statements = CounterMetricFamily(
            "outbound_database_statements",
            "Statements this process sent to the database, by stage",
            labels=["stage"],
        )
        transactions = CounterMetricFamily(
            "outbound_database_transactions",
            "Transactions this process began (reads included), by stage",
            labels=["stage"],
        )
        cpu = CounterMetricFamily(
            "outbound_database_session_cpu_seconds",
            "CPU time of this process's threads inside database sessions, by stage",
            labels=["stage"],
        )
        for name, (count, began, seconds) in sorted(self._db.stages.snapshot().items()):
            statements.add_metric([name], count)
            transactions.add_metric([name], began)
            cpu.add_metric([name], seconds)
        yield statements
        yield transactions
        yield cpu
