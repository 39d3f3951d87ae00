"""The dashboard's figures: how sending went lately, and what needs attention now.

Every figure is read by :meth:`DashboardService.summary`, by plain grouped queries on the
messages of the organisation (``ix_messages_org_created`` bounds them to the period). It is
the one place to change when the figures come from report rollups instead.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Channel, Flow, FlowRun, Message
from outbound.clock import Clock
from outbound.domain.statuses import MessageStatus

__all__ = [
    "DELIVERED_STATUSES",
    "FAILED_STATUSES",
    "FAILURE_WARNING_MIN",
    "FAILURE_WARNING_RATE",
    "ChannelTotals",
    "DashboardService",
    "DashboardSummary",
    "FlowRunProgress",
    "HourlySeries",
    "StoppedChannel",
]

FAILED_STATUSES = frozenset({"failed", "undelivered", "rejected"})
DELIVERED_STATUSES = frozenset({"delivered"})
FAILURE_WARNING_RATE = 0.05
"""A channel whose failures reach this share of its messages is flagged..."""
FAILURE_WARNING_MIN = 3
"""...once it has at least this many failures (two failures of three tell little)."""
SUMMARY_DAYS = 7
CHART_HOURS = 24
RUNS_SHOWN = 10


@dataclass
class ChannelTotals:
    """One channel's messages created in the period, by outcome."""

    channel_id: str
    name: str
    type: str
    provider: str
    requested: int = 0
    delivered: int = 0
    failed: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return self.requested - self.delivered - self.failed - self.by_status.get("skipped", 0)

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
    """Messages created per hour (UTC hour starts), by their status now."""

    hours: list[datetime]
    counts: dict[str, list[int]]


@dataclass(frozen=True)
class StoppedChannel:
    id: str
    name: str
    detail: str | None


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

    @property
    def totals(self) -> ChannelTotals:
        total = ChannelTotals("", "", "", "")
        for channel in self.channels:
            total.requested += channel.requested
            total.delivered += channel.delivered
            total.failed += channel.failed
            for status, count in channel.by_status.items():
                total.by_status[status] = total.by_status.get(status, 0) + count
        return total


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class DashboardService:
    """Reads the dashboard's figures of one organisation."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def _hour(self, column: Any) -> Any:
        """``column`` truncated to its hour, as the database can group by."""
        if self._db.engine.dialect.name == "postgresql":
            return sa.func.date_trunc("hour", sa.func.timezone("UTC", column))
        return sa.func.strftime("%Y-%m-%d %H:00:00", column)

    def summary(
        self, org_id: str, *, days: int = SUMMARY_DAYS, hours: int = CHART_HOURS
    ) -> DashboardSummary:
        now = self._clock.now()
        since = now - timedelta(days=days)
        first_hour = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
        hour = self._hour(Message.created_at).label("hour")
        with self._db.read() as session:
            channels = {
                row.id: ChannelTotals(row.id, row.name, row.type, row.provider)
                for row in session.execute(
                    sa.select(Channel.id, Channel.name, Channel.type, Channel.provider)
                    .where(Channel.org_id == org_id)
                    .order_by(Channel.name)
                )
            }
            by_channel = session.execute(
                sa.select(Message.channel_id, Message.status, sa.func.count())
                .where(Message.org_id == org_id, Message.created_at >= since)
                .group_by(Message.channel_id, Message.status)
            ).all()
            by_hour = session.execute(
                sa.select(hour, Message.status, sa.func.count())
                .where(Message.org_id == org_id, Message.created_at >= first_hour)
                .group_by(hour, Message.status)
            ).all()
            due, oldest = session.execute(
                sa.select(sa.func.count(), sa.func.min(Message.scheduled_at)).where(
                    Message.org_id == org_id,
                    Message.status == MessageStatus.QUEUED.value,
                    Message.scheduled_at <= now,
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
        for channel_id, status, count in by_channel:
            totals = channels.get(channel_id) or channels.setdefault(
                channel_id, ChannelTotals(channel_id, channel_id, "", "")
            )
            totals.requested += count
            totals.by_status[status] = totals.by_status.get(status, 0) + count
            if status in DELIVERED_STATUSES:
                totals.delivered += count
            elif status in FAILED_STATUSES:
                totals.failed += count
        return DashboardSummary(
            since=since,
            channels=list(channels.values()),
            hourly=self._series(by_hour, first_hour, hours),
            outbox_due=int(due),
            oldest_due=_aware(oldest),
            stopped_channels=stopped,
            runs=runs,
        )

    @staticmethod
    def _series(rows: Any, first_hour: datetime, hours: int) -> HourlySeries:
        slots = [first_hour + timedelta(hours=index) for index in range(hours)]
        position = {slot.strftime("%Y-%m-%d %H"): index for index, slot in enumerate(slots)}
        counts: dict[str, list[int]] = defaultdict(lambda: [0] * hours)
        for bucket, status, count in rows:
            key = (
                bucket.strftime("%Y-%m-%d %H") if isinstance(bucket, datetime) else str(bucket)[:13]
            )
            index = position.get(key)
            if index is not None:
                counts[status][index] += count
        ordered: dict[str, list[int]] = {
            str(s.value): counts[s.value] for s in MessageStatus if s.value in counts
        }
        return HourlySeries(hours=slots, counts=ordered)
