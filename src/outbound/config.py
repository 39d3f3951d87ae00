"""Settings: one frozen, typed object read from ``OUTBOUND_*`` environment variables.

Nothing here is read at import time; :func:`load_settings` is called by the composition root
(:mod:`outbound.app`) and by the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, TypeAlias

import platformdirs
from pydantic import BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from outbound.domain.circuit import DEFAULT_COOLDOWN_SECONDS, DEFAULT_THRESHOLD
from outbound.domain.flags import parse_flag
from outbound.errors import SettingsError

__all__ = [
    "DEFAULT_EVENT_RETENTION_DAYS",
    "DEFAULT_HOURLY_REQUEST_QUOTA",
    "DEFAULT_HTTP_KEEP_ALIVE_SECONDS",
    "DEFAULT_IDEMPOTENCY_STALE_SECONDS",
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_CONTACTS_PER_REQUEST",
    "DEFAULT_MAX_JSON_BODY_BYTES",
    "DEFAULT_PRESENCE_TIMEOUT_SECONDS",
    "DEFAULT_REGION",
    "DEFAULT_RETRY_BASE_SECONDS",
    "DEFAULT_RETRY_MAX_SECONDS",
    "DEFAULT_SHUTDOWN_GRACE_SECONDS",
    "DEFAULT_STATUS_CHECK_AFTER_SECONDS",
    "DEFAULT_STATUS_CHECK_RATE",
    "DEFAULT_WEBHOOK_CONCURRENCY",
    "DEFAULT_WEBHOOK_DISABLE_AFTER_SECONDS",
    "DEFAULT_WEBHOOK_RETENTION_DAYS",
    "DEFAULT_WEBHOOK_TIMEOUT",
    "DEFAULT_WORKER_BATCH_SIZE",
    "DEFAULT_WORKER_CONCURRENCY",
    "DEFAULT_WORKER_POLL_INTERVAL",
    "Settings",
    "SettingsError",
    "default_data_dir",
    "load_settings",
]

DEFAULT_REGION = "US"
DEFAULT_MAX_CONTACTS_PER_REQUEST = 100
DEFAULT_HOURLY_REQUEST_QUOTA = 30_000
DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_WORKER_BATCH_SIZE = 100
DEFAULT_WORKER_CONCURRENCY = 200
DEFAULT_WORKER_POLL_INTERVAL = 0.2
DEFAULT_RETRY_BASE_SECONDS = 2.0
DEFAULT_RETRY_MAX_SECONDS = 900.0
DEFAULT_SHUTDOWN_GRACE_SECONDS = 10.0
# Longer than the idle pools of the clients that call the API and its webhooks again and again
# (aiohttp keeps a connection 15 s, load balancers 60 s): the client drops an idle connection,
# never the server just as the client sends on it.
DEFAULT_HTTP_KEEP_ALIVE_SECONDS = 75
DEFAULT_HTTP_TIMEOUT = 15.0
DEFAULT_IDEMPOTENCY_STALE_SECONDS = 120.0
DEFAULT_EVENT_RETENTION_DAYS = 30.0
DEFAULT_PRESENCE_TIMEOUT_SECONDS = 60.0
DEFAULT_MAX_JSON_BODY_BYTES = 1024 * 1024
DEFAULT_WEBHOOK_TIMEOUT = 10.0
DEFAULT_WEBHOOK_CONCURRENCY = 50
DEFAULT_WEBHOOK_DISABLE_AFTER_SECONDS = 24 * 3600.0
DEFAULT_WEBHOOK_RETENTION_DAYS = 7.0
DEFAULT_STATUS_CHECK_AFTER_SECONDS = 600.0
DEFAULT_STATUS_CHECK_RATE = 1.0


def default_data_dir() -> Path:
    """The user's data directory of the platform (platformdirs), whatever the current
    directory: ``$XDG_DATA_HOME/outbound`` (``~/.local/share/outbound``) on Linux,
    ``~/Library/Application Support/outbound`` on macOS, ``%LOCALAPPDATA%\\outbound`` on
    Windows."""
    return platformdirs.user_data_path("outbound", appauthor=False)


def _flag(value: object) -> object:
    return parse_flag(value) if isinstance(value, str) else value


Flag: TypeAlias = Annotated[bool, BeforeValidator(_flag)]
"""A yes/no setting, written with the words CSV files and flows use too (``on``, ``no``...)."""


class Settings(BaseSettings):
    """Every setting of the service; each field is read from ``OUTBOUND_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="OUTBOUND_", frozen=True, extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir, description="Where the SQLite file and key live."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default is a SQLite file in data_dir."
    )
    secret_key: str | None = Field(
        None,
        description="Fernet key (urlsafe base64, 32 bytes) encrypting credentials at rest; "
        "default is a key file generated in data_dir.",
    )
    default_region: str = Field(
        DEFAULT_REGION, description="Region for numbers without a country code."
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    public_base_url: str | None = Field(
        None,
        description="The URL providers reach this service at (webhooks, signature checks).",
    )
    trust_forwarded_headers: Flag = Field(
        False, description="Rebuild the public URL from X-Forwarded-Proto/Host (behind a proxy)."
    )
    http_keep_alive_seconds: int = Field(
        DEFAULT_HTTP_KEEP_ALIVE_SECONDS,
        ge=1,
        description="How long the API keeps an idle client connection open (s); above the "
        "idle timeout of every client and proxy in front of it.",
    )
    http_timeout: float = Field(
        DEFAULT_HTTP_TIMEOUT, gt=0, description="Total timeout of a provider call (s)."
    )
    http_connect_timeout: float = Field(5.0, gt=0)
    migrate_on_start: Flag = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    auth_failure_limit: int = Field(
        20,
        ge=1,
        description="Failed authentications one address may make in a minute before every "
        "request from it gets 429.",
    )
    metrics_token: str | None = Field(
        None,
        description="Bearer token /metrics requires (on the API and on the worker's metrics "
        "port); unset, /metrics answers this machine only.",
    )
    metrics_tenant_labels: Flag = Field(
        False,
        description="Label metrics with channel, queue and webhook endpoint ids and queue names; "
        "off, those series are totals, naming no organisation's objects.",
    )
    opentelemetry: Flag = Field(
        False,
        description="Report each API request to the OpenTelemetry providers the process has "
        "set up (traces, metrics, logs); off, requests skip those checks.",
    )

    max_contacts_per_request: int = Field(DEFAULT_MAX_CONTACTS_PER_REQUEST, ge=1, le=10_000)
    hourly_request_quota: int = Field(DEFAULT_HOURLY_REQUEST_QUOTA, ge=1)
    max_json_body_bytes: int = Field(
        DEFAULT_MAX_JSON_BODY_BYTES,
        ge=1024,
        description="Largest JSON request body the API reads; larger ones are refused with "
        "413 before anything is stored (CSV uploads are not limited).",
    )

    worker_enabled: Flag = Field(True, description="Run the dispatcher inside `serve`.")
    worker_metrics_port: int | None = Field(
        None, ge=1, le=65535, description="`outbound worker` serves /metrics on this port."
    )
    worker_batch_size: int = Field(DEFAULT_WORKER_BATCH_SIZE, ge=1, le=5_000)
    worker_concurrency: int = Field(DEFAULT_WORKER_CONCURRENCY, ge=1, le=10_000)
    worker_poll_interval: float = Field(DEFAULT_WORKER_POLL_INTERVAL, gt=0, le=60)
    lease_seconds: float = Field(DEFAULT_LEASE_SECONDS, gt=0)
    max_attempts: int = Field(DEFAULT_MAX_ATTEMPTS, ge=1, le=100)
    retry_base_seconds: float = Field(DEFAULT_RETRY_BASE_SECONDS, gt=0)
    retry_max_seconds: float = Field(DEFAULT_RETRY_MAX_SECONDS, gt=0)
    circuit_threshold: int = Field(
        DEFAULT_THRESHOLD,
        ge=1,
        description="Provider-side failures in a row that open a channel's circuit.",
    )
    circuit_cooldown_seconds: float = Field(
        DEFAULT_COOLDOWN_SECONDS, gt=0, description="Open circuit pause (s)."
    )
    shutdown_grace_seconds: float = Field(DEFAULT_SHUTDOWN_GRACE_SECONDS, ge=0)
    status_check_after_seconds: float = Field(
        DEFAULT_STATUS_CHECK_AFTER_SECONDS,
        gt=0,
        description="A message still `sent` this long after its send (no final status "
        "reported) has its status asked of the provider, then again with backoff for 72 h.",
    )
    status_check_rate: float = Field(
        DEFAULT_STATUS_CHECK_RATE,
        gt=0,
        le=1_000,
        description="Status checks per second per channel, for all workers together.",
    )
    idempotency_stale_seconds: float = Field(DEFAULT_IDEMPOTENCY_STALE_SECONDS, gt=0)
    event_retention_days: float = Field(
        DEFAULT_EVENT_RETENTION_DAYS,
        gt=0,
        description="Events every flow has seen are deleted after this many days.",
    )
    presence_timeout_seconds: float = Field(
        DEFAULT_PRESENCE_TIMEOUT_SECONDS,
        ge=5,
        le=86_400,
        description="An available user counts as online while seen within this many seconds.",
    )
    routing_sweep_seconds: float = Field(
        5.0,
        gt=0,
        le=300,
        description="How often a worker sweeps conversations (offers, re-offers, wrap-ups, "
        "snoozes, overflow, idle closing) and assigns what waits.",
    )
    max_declines: int = Field(
        3, ge=1, le=5, description="Declines after which an agent is not offered a conversation."
    )
    conversation_idle_days: float = Field(
        30.0, gt=0, description="Open, active or waiting conversations idle this long close."
    )
    wrap_up_idle_days: float = Field(
        1.0, gt=0, description="Conversations left in wrap-up this long close."
    )
    stream_retention_seconds: float = Field(
        3600.0,
        ge=60,
        le=7 * 86_400,
        description="How long live updates are kept for clients that reconnect.",
    )

    price_per_segment: str = Field(
        "",
        description="Prices of one segment for reports' estimated cost: "
        "`sms:FR=0.07,sms=0.05,whatsapp=0.01` (a channel type alone: every other country).",
    )
    webhook_allowed_hosts: str | None = Field(
        None,
        description="Hosts, addresses or networks (comma-separated) webhook endpoints may use "
        "although they are not public, e.g. 127.0.0.1 or 10.0.0.0/8.",
    )
    webhook_timeout: float = Field(
        DEFAULT_WEBHOOK_TIMEOUT, gt=0, le=120, description="Timeout of one webhook call (s)."
    )
    webhook_concurrency: int = Field(
        DEFAULT_WEBHOOK_CONCURRENCY, ge=1, le=1_000, description="Webhook calls in flight."
    )
    webhook_disable_after_seconds: float = Field(
        DEFAULT_WEBHOOK_DISABLE_AFTER_SECONDS,
        gt=0,
        description="An endpoint whose every attempt failed this long is disabled.",
    )
    webhook_retention_days: float = Field(
        DEFAULT_WEBHOOK_RETENTION_DAYS,
        gt=0,
        description="Finished webhook deliveries and their attempts are kept this long.",
    )

    body_retention_days: float | None = Field(
        None,
        gt=0,
        description="Message bodies, context and template parameters, and customers' texts "
        "and payloads, are removed this many days after they were written (unset: kept).",
    )

    sandbox_delivery_delay: float = Field(0.5, ge=0, description="Seconds before a sandbox DLR.")
    sandbox_failure_rate: float = Field(0.0, ge=0, le=1)

    @field_validator("price_per_segment")
    @classmethod
    def _prices(cls, value: str) -> str:
        from outbound.domain.reports import parse_prices

        parse_prices(value)
        return value

    @field_validator("default_region")
    @classmethod
    def _upper_region(cls, value: str) -> str:
        import phonenumbers

        value = value.strip().upper()
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("must be a region code phone numbers know, such as US or FR")
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL in use, with the driver SQLAlchemy needs."""
        if not self.database_url:
            return f"sqlite:///{(self.data_dir / 'outbound.db').resolve()}"
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with clear errors naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "OUTBOUND_" + "_".join(str(p) for p in err["loc"]).upper()
            problems.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from exc
