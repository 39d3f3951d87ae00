"""Webhook endpoints of the integrator, their deliveries and attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from outbound.domain.webhooks import check_patterns, check_url
from outbound.schemas.base import InputModel, OutputModel

__all__ = [
    "WebhookAttemptOut",
    "WebhookDeliveryOut",
    "WebhookEndpointCreate",
    "WebhookEndpointCreated",
    "WebhookEndpointOut",
    "WebhookEndpointUpdate",
]

_EVENTS_DESCRIPTION = (
    "Events to receive: message.status_changed, message.inbound, consent.changed, "
    "flow_run.completed, conversation.* (or one conversation change, such as "
    "conversation.opened), or * for all."
)


def _url(value: str | None) -> str | None:
    if value is not None:
        check_url(value)
    return value


def _patterns(value: list[str] | None) -> list[str] | None:
    return None if value is None else check_patterns(value)


class WebhookEndpointCreate(InputModel):
    url: str = Field(min_length=1, max_length=2000, description="http(s) URL to post events to.")
    events: list[str] = Field(min_length=1, max_length=50, description=_EVENTS_DESCRIPTION)
    description: str | None = Field(None, max_length=200)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return _url(value)

    @field_validator("events")
    @classmethod
    def _check_events(cls, value: list[str] | None) -> list[str] | None:
        return _patterns(value)


class WebhookEndpointUpdate(InputModel):
    url: str | None = Field(None, min_length=1, max_length=2000)
    events: list[str] | None = Field(None, min_length=1, max_length=50)
    description: str | None = Field(None, max_length=200)
    enabled: bool | None = Field(
        None, description="false stops deliveries; true resumes them (and clears a disabling)."
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return _url(value)

    @field_validator("events")
    @classmethod
    def _check_events(cls, value: list[str] | None) -> list[str] | None:
        return _patterns(value)


class WebhookEndpointOut(OutputModel):
    id: str
    url: str
    description: str | None
    events: list[str]
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why the service disabled it (every attempt failed for too long)."
    )
    disabled_at: datetime | None
    failing_since: datetime | None = Field(
        description="The first failed attempt since the last success, while it fails."
    )
    last_success_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpointOut):
    secret: str = Field(
        description="The signing secret (whsec_...), shown this once: keep it to verify calls."
    )


class WebhookAttemptOut(OutputModel):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookDeliveryOut(OutputModel):
    id: str
    event_id: str = Field(description="The webhook-id header: the same on every attempt.")
    event_type: str
    status: str = Field(description="pending, delivering, succeeded or failed (gave up).")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any] | None = None
    attempt_log: list[WebhookAttemptOut] | None = None
