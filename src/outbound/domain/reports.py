"""The arithmetic of reports: what a status change adds to the rollups, latency buckets,
percentiles, reason codes, prices per segment and the local day of a UTC hour.

Rollups count messages by the UTC hour in which they were accepted (their cohort): a message
accepted at 10:59 and delivered at 11:02 counts in the 10:00 bucket, so that a delivery rate
always compares the same messages. Each status change adds a small delta to its message's
bucket; :func:`status_deltas` says which.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from outbound.domain.statuses import MessageStatus
from outbound.texts import N_

__all__ = [
    "COUNTERS",
    "LATENCY_BOUNDS",
    "REASON_KINDS",
    "Delta",
    "Prices",
    "hour_of",
    "latency_bucket",
    "local_day",
    "parse_prices",
    "percentile",
    "price_of",
    "reason_code",
    "status_deltas",
]

COUNTERS = (
    "requested",
    "skipped",
    "rejected",
    "canceled",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "failovers",
    "segments",
    "replied",
)
"""The plain counters of a rollup row, in the order of its columns."""

REASON_KINDS = ("skipped", "rejected", "failed")
"""Counters also kept per reason (skipped, rejected) or per provider error code (failed)."""

LATENCY_BOUNDS: tuple[float, ...] = (
    1,
    2,
    5,
    10,
    30,
    60,
    120,
    300,
    600,
    1_800,
    3_600,
    4 * 3_600,
    24 * 3_600,
)
"""Upper bounds (seconds) of the latency histogram's buckets; a last bucket holds the rest."""

LATENCY_BUCKETS = len(LATENCY_BOUNDS) + 1

# Statuses a message may be created in (a history row with no move: its first).
_CREATED = frozenset({MessageStatus.QUEUED, MessageStatus.SKIPPED, MessageStatus.REJECTED})
# Statuses that mean the provider took the message (sent, or a report that beat the record).
_REACHED_PROVIDER = frozenset(
    {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNDELIVERED}
)


@dataclass
class Delta:
    """What one status change adds to its message's rollup row."""

    counters: dict[str, int]
    reasons: list[tuple[str, str, int]]  # (kind, code, +/-n)
    sent_latency: int | None = None  # bucket index
    delivered_latency: int | None = None


def hour_of(moment: datetime) -> datetime:
    """The UTC hour ``moment`` falls in (its bucket)."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def latency_bucket(seconds: float) -> int:
    """The histogram bucket of a latency; a negative one (clock skew) counts as zero."""
    return bisect.bisect_left(LATENCY_BOUNDS, max(0.0, seconds))


def percentile(histogram: Sequence[int], q: float) -> float | None:
    """The upper bound (seconds) of the bucket holding the ``q`` quantile (0 < q ≤ 1).

    ``None`` when the histogram is empty, and for the last, unbounded bucket.
    """
    total = sum(histogram)
    if total == 0:
        return None
    rank = math.ceil(q * total)
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= rank:
            return float(LATENCY_BOUNDS[index]) if index < len(LATENCY_BOUNDS) else None
    return None  # pragma: no cover - rank never exceeds total


def reason_code(reason: str | None) -> str:
    """The code of a skip or rejection reason: its text before the first colon."""
    if not reason:
        return ""
    return reason.split(":", 1)[0].strip()[:64]


def status_deltas(
    status: MessageStatus,
    moved_from: MessageStatus | None,
    *,
    source: str,
    reason: str | None,
    error_code: str | None,
    segments: int | None,
    accepted_at: datetime,
    occurred_at: datetime,
) -> Delta | None:
    """What a message taking ``status`` (from ``moved_from``) adds to its rollup row.

    ``moved_from`` is ``None`` for a message's first status (its creation) and for a status a
    message keeps (a lease taken over: ``sending`` again), which counts nothing. Every move
    the lifecycle allows happens at most once per message except ``sending → queued``
    (a retry), which counts nothing, so the counters never count a message twice.
    """
    counters: dict[str, int] = {}
    reasons: list[tuple[str, str, int]] = []
    delta = Delta(counters, reasons)
    if moved_from is None:
        if status not in _CREATED:
            return None
        counters["requested"] = 1
    if status in (MessageStatus.SKIPPED, MessageStatus.REJECTED):
        counters[status.value] = 1
        reasons.append((status.value, reason_code(reason), 1))
    elif status is MessageStatus.CANCELED:
        counters["canceled"] = 1
    elif status is MessageStatus.FAILED:
        counters["failed"] = 1
        reasons.append(("failed", (error_code or "")[:64], 1))
    if moved_from is MessageStatus.SENDING and status in _REACHED_PROVIDER:
        counters["sent"] = 1
        counters["segments"] = segments if segments else 1
        if source == "failover":
            counters["failovers"] = 1
        delta.sent_latency = latency_bucket((occurred_at - accepted_at).total_seconds())
    if status is MessageStatus.DELIVERED:
        counters["delivered"] = 1
        delta.delivered_latency = latency_bucket((occurred_at - accepted_at).total_seconds())
        if moved_from is MessageStatus.UNDELIVERED:
            counters["undelivered"] = -1
    elif status is MessageStatus.UNDELIVERED:
        counters["undelivered"] = 1
    if not counters:
        return None
    return delta


def local_day(hour: datetime, zone: ZoneInfo) -> date:
    """The local date of a UTC hour bucket in ``zone``: the date of its first minute.

    Exact for zones whose offset is a whole number of hours; in a zone offset by a half or
    a quarter hour, a bucket that straddles local midnight counts wholly on the day it starts.
    """
    return hour.astimezone(zone).date()


Prices = Mapping[tuple[str, str], float]


def parse_prices(text: str) -> dict[tuple[str, str], float]:
    """``sms:FR=0.07,sms=0.05,whatsapp=0.01`` → ``{("sms", "FR"): 0.07, ("sms", "*"): 0.05…}``.

    A channel type alone (or ``type:*``) is its price in every country not named. Raises
    :class:`ValueError` naming the faulty entry.
    """
    prices: dict[tuple[str, str], float] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        key, sep, value = entry.partition("=")
        channel_type, _, country = key.strip().partition(":")
        try:
            price = float(value)
        except ValueError:
            price = math.nan
        if not sep or not channel_type or not math.isfinite(price) or price < 0:
            raise ValueError(
                N_("price entry %(entry)r: expected type[:COUNTRY]=price", entry=entry)
            )
        prices[(channel_type.lower(), country.strip().upper() or "*")] = price
    return prices


def price_of(prices: Prices, channel_type: str, country: str) -> float | None:
    """The price of one segment on ``channel_type`` to ``country``; ``None`` when unpriced."""
    found = prices.get((channel_type, country.upper()))
    if found is None:
        found = prices.get((channel_type, "*"))
    return found
