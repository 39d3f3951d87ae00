"""The dashboard's figures: how sending went lately, and what needs attention now.

The per-channel totals of the last days and the per-hour chart come from the report rollups,
through :meth:`ReportService.messages <outbound.services.reports.ReportService.messages>`
(a few rollup rows per channel, whatever the number of messages): messages counted in the
hour they were accepted, by the stage they reached. What needs attention now is read from
the messages by indexed queries bounded to what waits: the messages due (``ix_messages_due``),
the channels stopped, the channels whose circuit is open (the messages that the dispatcher put
back because their provider kept failing, recently scheduled), the flow runs going on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Channel, Flow, FlowRun, Message
from outbound.clock import Clock
from outbound.domain.reports import hour_of
from outbound.domain.statuses import MessageStatus
from outbound.services.reports import ReportQuery, ReportService

__all__ = [
    "CHART_STAGES",
    "CIRCUIT_OPEN_CODE",
    "FAILED_STAGES",
    "FAILURE_WARNING_MIN",
    "FAILURE_WARNING_RATE",
    "ChannelTotals",
    "DashboardService",
    "DashboardSummary",
    "FlowRunProgress",
    "HourlySeries",
    "PausedChannel",
    "StoppedChannel",
]

FAILED_STAGES = ("failed", "undelivered", "rejected")
"""The report counters a channel's failures add up."""
CHART_STAGES = ("requested", "sent", "delivered", "failed")
"""The chart's series; ``failed`` adds up :data:`FAILED_STAGES`."""
FAILURE_WARNING_RATE = 0.05
"""A channel whose failures reach this share of its messages is flagged..."""
FAILURE_WARNING_MIN = 3
"""...once it has at least this many failures (two failures of three tell little)."""
CIRCUIT_OPEN_CODE = "circuit_open"
"""The error code of a message put back while its channel's circuit is open."""
CIRCUIT_LOOKBACK = timedelta(minutes=10)
"""A message put back by an open circuit is due again within the circuit's cooldown (seconds);
one due longer ago than this is read as stale, not as a circuit open now."""
SUMMARY_DAYS = 7
CHART_HOURS = 24
RUNS_SHOWN = 10


@dataclass
class ChannelTotals:
    """One channel's messages accepted in the period, by the stage they reached."""

    channel_id: str
    name: str
    type: str
    provider: str
    requested: int = 0
    delivered: int = 0
    failed: int = 0
    by_stage: dict[str, int] = field(default_factory=dict)
    """The report's other counters: skipped, rejected, canceled, sent, undelivered, failed."""

    @property
    def pending(self) -> int:
        """Neither delivered, failed, skipped nor canceled yet: queued, or sent and waiting
        for the delivery report."""
        done = self.delivered + self.failed
        done += self.by_stage.get("skipped", 0) + self.by_stage.get("canceled", 0)
        return max(0, self.requested - done)

    @property
    def delivered_rate(self) -> float:
        return self.delivered / self.requested if self.requested else 0.0

    @property
    def failed_rate(self) -> float:
        return self.failed / self.requested if self.requested else 0.0

    @property
    def warning(self) -> bool:
        return self.failed >= FAILURE_WARNING_MIN and self.failed_rate >= FAILURE_WARNING_RATE


@dataclass(frozen=True)
class HourlySeries:
    """Messages accepted per hour (UTC hour starts), by the stage they reached
    (:data:`CHART_STAGES`)."""

    hours: list[datetime]
    counts: dict[str, list[int]]


@dataclass(frozen=True)
class StoppedChannel:
    id: str
    name: str
    detail: str | None


@dataclass(frozen=True)
class PausedChannel:
    """A channel whose circuit is open: its provider kept failing, sending waits."""

    id: str
    name: str
    waiting: int
    """Messages put back until the circuit lets a call through."""
    retry_at: datetime | None


@dataclass(frozen=True)
class FlowRunProgress:
    id: str
    flow_name: str
    status: str
    total: int | None
    scanned: int
    queued: int
    started_at: datetime | None

    @property
    def progress(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.scanned / self.total)


@dataclass(frozen=True)
class DashboardSummary:
    since: datetime
    channels: list[ChannelTotals]
    hourly: HourlySeries
    outbox_due: int
    oldest_due: datetime | None
    stopped_channels: list[StoppedChannel]
    runs: list[FlowRunProgress]
    paused_channels: list[PausedChannel] = field(default_factory=list)

    @property
    def totals(self) -> ChannelTotals:
        total = ChannelTotals("", "", "", "")
        for channel in self.channels:
            total.requested += channel.requested
            total.delivered += channel.delivered
            total.failed += channel.failed
            for stage, count in channel.by_stage.items():
                total.by_stage[stage] = total.by_stage.get(stage, 0) + count
        return total


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _failed(group: dict[str, Any]) -> int:
    return sum(int(group[name]) for name in FAILED_STAGES)


class DashboardService:
    """Reads the dashboard's figures of one organisation."""

    def __init__(self, db: Database, clock: Clock, reports: ReportService) -> None:
        self._db = db
        self._clock = clock
        self._reports = reports

    def summary(
        self, org_id: str, *, days: int = SUMMARY_DAYS, hours: int = CHART_HOURS
    ) -> DashboardSummary:
        now = self._clock.now()
        end = hour_of(now) + timedelta(hours=1)
        since = end - timedelta(days=days)
        first_hour = end - timedelta(hours=hours)
        by_channel = self._reports.messages(org_id, ReportQuery(since, end, ["channel"]))
        by_hour = self._reports.messages(org_id, ReportQuery(first_hour, end, ["hour"]))
        with self._db.read() as session:
            channels = {
                row.id: ChannelTotals(row.id, row.name, row.type, row.provider)
                for row in session.execute(
                    sa.select(Channel.id, Channel.name, Channel.type, Channel.provider)
                    .where(Channel.org_id == org_id)
                    .order_by(Channel.name)
                )
            }
            due, oldest = session.execute(
                sa.select(sa.func.count(), sa.func.min(Message.scheduled_at)).where(
                    Message.status == MessageStatus.QUEUED.value,
                    Message.scheduled_at <= now,
                    Message.org_id == org_id,
                )
            ).one()
            stopped = [
                StoppedChannel(row.id, row.name, row.health_detail)
                for row in session.execute(
                    sa.select(Channel.id, Channel.name, Channel.health_detail)
                    .where(Channel.org_id == org_id, Channel.healthy.is_(False))
                    .order_by(Channel.name)
                )
            ]
            paused_rows = session.execute(
                sa.select(Message.channel_id, sa.func.count(), sa.func.max(Message.scheduled_at))
                .where(
                    Message.status == MessageStatus.QUEUED.value,
                    Message.scheduled_at >= now - CIRCUIT_LOOKBACK,
                    Message.org_id == org_id,
                    Message.error_code == CIRCUIT_OPEN_CODE,
                )
                .group_by(Message.channel_id)
            ).all()
            runs = [
                FlowRunProgress(
                    id=row.id,
                    flow_name=row.name,
                    status=row.status,
                    total=row.total,
                    scanned=row.scanned,
                    queued=row.queued,
                    started_at=_aware(row.started_at),
                )
                for row in session.execute(
                    sa.select(
                        FlowRun.id,
                        Flow.name,
                        FlowRun.status,
                        FlowRun.total,
                        FlowRun.scanned,
                        FlowRun.queued,
                        FlowRun.started_at,
                    )
                    .join(Flow, Flow.id == FlowRun.flow_id)
                    .where(FlowRun.org_id == org_id, FlowRun.status.in_(("pending", "running")))
                    .order_by(FlowRun.created_at)
                    .limit(RUNS_SHOWN)
                )
            ]
        for group in by_channel["groups"]:
            channel_id = group["channel_id"] or ""
            totals = channels.get(channel_id) or channels.setdefault(
                channel_id, ChannelTotals(channel_id, channel_id, "", "")
            )
            totals.requested += int(group["requested"])
            totals.delivered += int(group["delivered"])
            totals.failed += _failed(group)
            for name in ("skipped", "rejected", "canceled", "sent", "undelivered", "failed"):
                totals.by_stage[name] = totals.by_stage.get(name, 0) + int(group[name])
        paused = [
            PausedChannel(
                id=channel_id,
                name=channels[channel_id].name if channel_id in channels else channel_id,
                waiting=int(count),
                retry_at=_aware(retry_at),
            )
            for channel_id, count, retry_at in paused_rows
        ]
        return DashboardSummary(
            since=since,
            channels=list(channels.values()),
            hourly=self._series(by_hour["groups"], first_hour, hours),
            outbox_due=int(due),
            oldest_due=_aware(oldest),
            stopped_channels=stopped,
            runs=runs,
            paused_channels=sorted(paused, key=lambda p: p.name),
        )

    @staticmethod
    def _series(groups: list[dict[str, Any]], first_hour: datetime, hours: int) -> HourlySeries:
        slots = [first_hour + timedelta(hours=index) for index in range(hours)]
        position = {slot: index for index, slot in enumerate(slots)}
        counts = {stage: [0] * hours for stage in CHART_STAGES}
        seen = False
        for group in groups:
            index = position.get(datetime.fromisoformat(group["hour"]).astimezone(UTC))
            if index is None:
                continue
            seen = True
            for stage in CHART_STAGES:
                value = _failed(group) if stage == "failed" else int(group[stage])
                counts[stage][index] += value
        return HourlySeries(hours=slots, counts=counts if seen else {})
