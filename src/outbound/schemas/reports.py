"""The reports: messages by stage, reason, latency and cost; the funnel; agents' times."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from outbound.schemas.base import OutputModel

__all__ = [
    "AgentReport",
    "AgentRow",
    "FailedByCode",
    "FunnelGroup",
    "FunnelReport",
    "LatencyPercentiles",
    "MessageCounts",
    "MessageReport",
    "MessageReportGroup",
    "MessageTotals",
    "QueueRow",
    "TimeStats",
]


class LatencyPercentiles(OutputModel):
    """Seconds from acceptance, as the upper bound of the histogram bucket holding the
    percentile; null with no message, or beyond the last bound (a day)."""

    p50: float | None
    p95: float | None


class FailedByCode(OutputModel):
    provider: str | None = Field(description="The provider of the message's channel.")
    code: str | None = Field(description="The provider's error code; null when none was given.")
    count: int
    meaning: str | None = Field(description="What the provider documents the code to mean.")


class MessageCounts(OutputModel):
    """Messages accepted in the range (counted by their accept hour) at each stage."""

    requested: int
    skipped: int
    skipped_by_reason: dict[str, int] = Field(description="Reason code → messages.")
    rejected: int
    rejected_by_reason: dict[str, int] = Field(description="Reason code → messages.")
    canceled: int
    sent: int
    delivered: int
    undelivered: int
    failed: int
    failed_by_code: list[FailedByCode] = Field(description="Most frequent first.")
    delivery_rate: float | None = Field(description="delivered / sent; null when none sent.")
    failovers: int = Field(description="Messages sent through a fallback channel.")
    segments: int
    estimated_cost: float = Field(
        description="Segments times the price per segment of their channel type and country "
        "(OUTBOUND_PRICE_PER_SEGMENT)."
    )
    unpriced_segments: int = Field(description="Segments with no price configured.")
    accept_to_sent: LatencyPercentiles
    accept_to_delivered: LatencyPercentiles
    replied: int = Field(description="Messages answered at least once.")
    reply_rate: float | None = Field(description="replied / delivered; null when none delivered.")


class MessageReportGroup(MessageCounts):
    """One group: the values of the grouping's keys (only those grouped by are present; null
    for none), then its counts."""

    configuration_id: str | None = None
    template_id: str | None = None
    channel_id: str | None = None
    flow_run_id: str | None = None
    locale: str | None = None
    country: str | None = None
    provider: str | None = None
    channel_type: str | None = None
    day: str | None = Field(None, description="Local date in the report's zone (2026-12-01).")
    hour: str | None = Field(
        None, description="Local start of the hour, with its offset (2026-12-01T10:00:00+01:00)."
    )


class MessageTotals(MessageCounts):
    """Every group together, and what is counted by the time it happened."""

    opt_outs: int
    opt_ins: int
    conversations_opened: int


class MessageReport(OutputModel):
    since: datetime = Field(description="Start of the range (UTC, widened to a whole hour).")
    until: datetime = Field(description="End of the range, excluded.")
    time_zone: str
    group_by: list[str]
    group_keys: list[str] = Field(description="The member of each group naming its key.")
    groups: list[MessageReportGroup]
    totals: MessageTotals


class FunnelGroup(OutputModel):
    """One configuration or flow run (only the key of the report's ``by`` is present)."""

    configuration_id: str | None = None
    flow_run_id: str | None = None
    sent: int
    delivered: int
    replied: int
    answered: int = Field(description="Conversations an agent answered.")
    closed: int


class FunnelReport(OutputModel):
    since: datetime
    until: datetime
    by: str = Field(description="configuration or flow_run")
    groups: list[FunnelGroup]


class TimeStats(OutputModel):
    """Seconds; null when nothing was measured."""

    mean: float | None
    p50: float | None
    p95: float | None


class _Times(OutputModel):
    conversations: int
    answered: int
    closed: int
    first_wait: TimeStats = Field(description="From opening to assignment.")
    first_response: TimeStats = Field(description="From opening to the first answer.")
    resolution: TimeStats = Field(description="From opening to closing.")


class AgentRow(_Times):
    user_id: str | None = Field(description="null: conversations nobody has.")


class QueueRow(_Times):
    queue_id: str | None


class AgentReport(OutputModel):
    since: datetime
    until: datetime
    agents: list[AgentRow]
    queues: list[QueueRow]
