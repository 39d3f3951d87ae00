"""The API contract of queues, routing rules and the organisation's routing settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator

from outbound.domain.assignment import AssignmentMethod
from outbound.domain.queues import parse_weekly_hours
from outbound.domain.windows import validate_zone
from outbound.schemas.base import InputModel, OutputModel
from outbound.texts import N_

__all__ = [
    "OrganizationRoutingUpdate",
    "OverflowSpec",
    "QueueCreate",
    "QueueOut",
    "QueueUpdate",
    "RoutingConditionIn",
    "RoutingRuleCreate",
    "RoutingRuleOut",
    "RoutingRuleUpdate",
]

MAX_QUEUE_MEMBERS = 1000
MAX_RULE_CONDITIONS = 50


class OverflowSpec(InputModel):
    """What happens when a queue has too many conversations waiting, or one waits too long,
    or a conversation arrives outside the queue's hours."""

    max_waiting: StrictInt | None = Field(
        None, ge=1, le=100, description="With this many conversations waiting, the next overflows."
    )
    max_wait_seconds: StrictInt | None = Field(
        None, ge=60, le=172_800, description="A conversation waiting longer than this overflows."
    )
    outside_hours: bool = Field(
        True, description="A conversation arriving outside the queue's hours overflows."
    )
    action: Literal["transfer", "auto_reply"]
    queue_id: str | None = Field(None, description="The queue to transfer to (action transfer).")
    template_id: str | None = Field(
        None, description="The template answered with (action auto_reply)."
    )

    @model_validator(mode="after")
    def _target(self) -> OverflowSpec:
        if self.action == "transfer" and not self.queue_id:
            raise ValueError(N_("queue_id is required when action is transfer"))
        if self.action == "auto_reply" and not self.template_id:
            raise ValueError(N_("template_id is required when action is auto_reply"))
        return self


class _QueueFields(InputModel):
    @field_validator("hours")
    @classmethod
    def _hours(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        if value is not None:
            parse_weekly_hours(value)
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return validate_zone(value) if value else None

    assignment_method: AssignmentMethod | None = None
    priority: StrictInt | None = Field(None, ge=-1000, le=1000)
    offer_timeout_seconds: StrictInt | None = Field(
        None,
        ge=10,
        le=3600,
        description="When set, an agent must accept a conversation within this many seconds, "
        "else it is offered to the next; null assigns directly.",
    )
    reassign_after_seconds: StrictInt | None = Field(
        None,
        ge=30,
        le=7 * 86_400,
        description="An assigned conversation the agent has not answered within this long is "
        "offered again.",
    )
    wrap_up_seconds: StrictInt | None = Field(None, ge=0, le=3600)
    hours: dict[str, list[str]] | None = Field(
        None,
        description="Weekly opening hours: day → spans, in the queue's time zone; a day not "
        "listed is closed; null: always open.",
        examples=[{"mon": ["09:00-12:00", "13:00-18:00"], "sat": ["10:00-14:00"]}],
    )
    time_zone: str | None = Field(None, max_length=64, examples=["Europe/Paris"])
    overflow: OverflowSpec | None = None
    members: list[str] | None = Field(None, max_length=MAX_QUEUE_MEMBERS)


class QueueCreate(_QueueFields):
    name: str = Field(min_length=1, max_length=200)


class QueueUpdate(_QueueFields):
    """Changes to a queue: only the fields given change; ``members`` replaces the list."""

    never_null: ClassVar[frozenset[str]] = frozenset({"name", "assignment_method", "priority"})

    name: str | None = Field(None, min_length=1, max_length=200)


class QueueOut(OutputModel):
    id: str
    name: str
    assignment_method: AssignmentMethod
    priority: int
    offer_timeout_seconds: int | None
    reassign_after_seconds: int | None
    wrap_up_seconds: int
    hours: dict[str, Any] | None
    time_zone: str | None
    overflow: dict[str, Any] | None
    members: list[str]
    fallback: bool
    waiting: int = Field(description="Conversations waiting in the queue now.")
    created_at: datetime
    updated_at: datetime


class RoutingConditionIn(InputModel):
    field: str = Field(
        min_length=1,
        max_length=200,
        examples=["text"],
        description="channel, channel_type, configuration, template, flow, flow_run, language, "
        "text, or contact.<field>.",
    )
    op: str = Field("eq", min_length=1, max_length=32, examples=["contains"])
    value: Any = None


class _RuleFields(InputModel):
    conditions: list[RoutingConditionIn] | None = Field(None, max_length=MAX_RULE_CONDITIONS)
    queue_id: str | None = None
    required_skills: list[str] | None = Field(None, max_length=50)
    required_language: str | None = Field(None, max_length=35)
    priority: StrictInt | None = Field(None, ge=-1000, le=1000)
    position: StrictInt | None = Field(
        None, ge=1, description="1-based place in the order; the first matching rule wins."
    )
    enabled: StrictBool | None = None


class RoutingRuleCreate(_RuleFields):
    name: str = Field(min_length=1, max_length=200)
    queue_id: str | None = Field(description="The queue a matching conversation goes to.")


class RoutingRuleUpdate(_RuleFields):
    never_null: ClassVar[frozenset[str]] = frozenset({"name", "enabled"})

    name: str | None = Field(None, min_length=1, max_length=200)


class RoutingRuleOut(OutputModel):
    id: str
    name: str
    position: int
    enabled: bool
    conditions: list[dict[str, Any]]
    queue_id: str
    required_skills: list[str]
    required_language: str | None
    priority: int
    created_at: datetime
    updated_at: datetime


class OrganizationRoutingUpdate(InputModel):
    never_null: ClassVar[frozenset[str]] = frozenset({"reopen_closed"})

    fallback_queue_id: str | None = Field(
        None, description="The queue conversations go to when no routing rule matches."
    )
    reopen_closed: StrictBool | None = Field(
        None,
        description="A customer message after a conversation closed reopens it (true) or opens "
        "a new one (false).",
    )
