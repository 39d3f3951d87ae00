"""The arithmetic of reports: deltas of each status change, latency buckets, percentiles,
reason codes, prices and local days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from outbound.domain.provider_errors import error_meaning
from outbound.domain.reports import (
    LATENCY_BOUNDS,
    latency_bucket,
    local_day,
    parse_prices,
    percentile,
    price_of,
    reason_code,
    status_deltas,
)
from outbound.domain.statuses import MessageStatus as S

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def _deltas(status: S, moved_from: S | None, *, source: str = "worker", seconds: float = 4.0):
    return status_deltas(
        status,
        moved_from,
        source=source,
        reason="frequency_cap: 1 per day" if status is S.SKIPPED else None,
        error_code="30003" if status is S.FAILED else None,
        segments=2,
        accepted_at=T0,
        occurred_at=T0 + timedelta(seconds=seconds),
    )


def test_creation_counts_the_request_and_its_outcome() -> None:
    assert _deltas(S.QUEUED, None).counters == {"requested": 1}
    skipped = _deltas(S.SKIPPED, None)
    assert skipped.counters == {"requested": 1, "skipped": 1}
    assert skipped.reasons == [("skipped", "frequency_cap", 1)]


@pytest.mark.parametrize(
    ("status", "moved_from"),
    [(S.SENDING, S.QUEUED), (S.QUEUED, S.SENDING), (S.SENDING, None)],
)
def test_claims_retries_and_takeovers_count_nothing(status: S, moved_from: S | None) -> None:
    assert _deltas(status, moved_from) is None


def test_sent_counts_segments_latency_and_failover() -> None:
    delta = _deltas(S.SENT, S.SENDING, source="failover")
    assert delta.counters == {"sent": 1, "segments": 2, "failovers": 1}
    assert delta.sent_latency == latency_bucket(4.0)


def test_a_report_before_the_record_counts_as_sent_too() -> None:
    delta = _deltas(S.DELIVERED, S.SENDING)
    assert delta.counters == {"sent": 1, "segments": 2, "delivered": 1}
    assert delta.delivered_latency is not None


def test_delivered_after_undelivered_moves_the_count() -> None:
    assert _deltas(S.DELIVERED, S.UNDELIVERED).counters == {"delivered": 1, "undelivered": -1}
    failed = _deltas(S.FAILED, S.SENT)
    assert failed.counters == {"failed": 1}
    assert failed.reasons == [("failed", "30003", 1)]


def test_latency_buckets_and_percentiles() -> None:
    assert latency_bucket(-3) == 0
    assert latency_bucket(1.0) == 0
    assert latency_bucket(1.5) == 1
    assert latency_bucket(10**9) == len(LATENCY_BOUNDS)
    histogram = [0] * (len(LATENCY_BOUNDS) + 1)
    histogram[0], histogram[3] = 50, 50
    assert percentile(histogram, 0.5) == 1.0
    assert percentile(histogram, 0.95) == 10.0
    assert percentile([0] * len(histogram), 0.5) is None
    histogram[-1] = 1_000
    assert percentile(histogram, 0.95) is None  # beyond the last bound


def test_reason_codes() -> None:
    assert reason_code("invalid_number: missing country code") == "invalid_number"
    assert reason_code("opted_out") == "opted_out"
    assert reason_code(None) == ""


def test_prices() -> None:
    prices = parse_prices("sms:fr=0.07, sms=0.05,whatsapp:*=0.01")
    assert price_of(prices, "sms", "FR") == 0.07
    assert price_of(prices, "sms", "US") == 0.05
    assert price_of(prices, "whatsapp", "") == 0.01
    assert price_of(parse_prices(""), "sms", "FR") is None
    for bad in ("sms", "sms=x", "=1", "sms=-1", "sms=nan"):
        with pytest.raises(ValueError, match="price entry"):
            parse_prices(bad)


def test_local_days() -> None:
    paris, kolkata = ZoneInfo("Europe/Paris"), ZoneInfo("Asia/Kolkata")
    assert local_day(datetime(2026, 3, 1, 22, tzinfo=UTC), paris).isoformat() == "2026-03-01"
    assert local_day(datetime(2026, 3, 1, 23, tzinfo=UTC), paris).isoformat() == "2026-03-02"
    # +05:30: the bucket 18:00-19:00 UTC is 23:30-00:30 local; it counts on the day it starts.
    assert local_day(datetime(2026, 3, 1, 18, tzinfo=UTC), kolkata).isoformat() == "2026-03-01"


def test_error_meanings() -> None:
    assert error_meaning("twilio", "30003") == (
        "Unreachable destination handset (off or out of coverage)"
    )
    assert error_meaning("telesign", "221") == "Expired before delivery"
    assert error_meaning("acs", "max_attempts_exceeded") is not None
    assert error_meaning("twilio", "99999") is None
