"""Services take the settings they use as keyword arguments whose defaults are the settings'."""

from __future__ import annotations

import inspect

import pytest

from outbound.config import Settings
from outbound.services.contacts import ContactService
from outbound.services.dispatch import Dispatcher
from outbound.services.flow_engine import FlowEngine
from outbound.services.flow_runs import FlowRunner
from outbound.services.flow_triggers import FlowTriggers
from outbound.services.inbound import InboundService
from outbound.services.records import RecordService
from outbound.services.sending import SendService
from outbound.services.status_checks import StatusChecker

# service -> {keyword argument: the setting it comes from}
WIRING: dict[type, dict[str, str]] = {
    Dispatcher: {
        "batch_size": "worker_batch_size",
        "concurrency": "worker_concurrency",
        "poll_interval": "worker_poll_interval",
        "lease_seconds": "lease_seconds",
        "retry_base_seconds": "retry_base_seconds",
        "retry_max_seconds": "retry_max_seconds",
        "circuit_threshold": "circuit_threshold",
        "circuit_cooldown_seconds": "circuit_cooldown_seconds",
        "shutdown_grace_seconds": "shutdown_grace_seconds",
        "status_check_after_seconds": "status_check_after_seconds",
        "http_timeout": "http_timeout",
    },
    StatusChecker: {"after_seconds": "status_check_after_seconds", "rate": "status_check_rate"},
    SendService: {
        "default_region": "default_region",
        "max_contacts_per_request": "max_contacts_per_request",
        "hourly_request_quota": "hourly_request_quota",
        "max_attempts": "max_attempts",
        "idempotency_stale_seconds": "idempotency_stale_seconds",
    },
    FlowEngine: {
        "poll_interval": "worker_poll_interval",
        "lease_seconds": "lease_seconds",
        "event_retention_days": "event_retention_days",
        "max_contacts_per_request": "max_contacts_per_request",
        "idempotency_stale_seconds": "idempotency_stale_seconds",
    },
    FlowRunner: {
        "max_contacts_per_request": "max_contacts_per_request",
        "idempotency_stale_seconds": "idempotency_stale_seconds",
    },
    FlowTriggers: {"event_retention_days": "event_retention_days"},
    InboundService: {"default_region": "default_region", "max_attempts": "max_attempts"},
    RecordService: {"default_region": "default_region"},
    ContactService: {"default_region": "default_region"},
}


@pytest.mark.parametrize("service", list(WIRING), ids=lambda s: s.__name__)
def test_a_service_built_directly_has_the_default_settings(service: type) -> None:
    parameters = inspect.signature(service).parameters
    wiring = WIRING[service]
    assert {name: parameters[name].default for name in wiring} == {
        name: Settings.model_fields[setting].default for name, setting in wiring.items()
    }
    assert "settings" not in parameters
