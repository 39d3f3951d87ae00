"""The per-organisation hourly request quota, shared by every process through the database.

Requests are counted in one-minute buckets; the quota applies to the sum of the last 60
buckets (a sliding hour), so there is no burst at the top of each hour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from outbound.adapters.db.models import RateCounter
from outbound.errors import RateLimitedError
from outbound.texts import N_

__all__ = [
    "BUCKET_SECONDS",
    "WINDOW_BUCKETS",
    "check_request_quota",
    "consume_request_quota",
    "purge_old_buckets",
]

BUCKET_SECONDS = 60
WINDOW_BUCKETS = 60


def check_request_quota(session: Session, org_id: str, limit: int, now: datetime) -> None:
    """Raise :class:`RateLimitedError` if one more request would be past the quota; count
    nothing and lock nothing (a read, so that a request past the quota is refused before its
    work is done; :func:`consume_request_quota` is what counts it)."""
    bucket = int(now.timestamp() // BUCKET_SECONDS)
    rows = _window(session, org_id, bucket)
    _refuse_past(limit, rows, sum(int(r.n) for r in rows) + 1, bucket, now)


def consume_request_quota(session: Session, org_id: str, limit: int, now: datetime) -> None:
    """Count one request; raise :class:`RateLimitedError` (and count nothing) past the quota.

    Must run inside the write transaction that accepts the request: raising rolls the
    increment back with everything else. On PostgreSQL the counter's row stays locked until
    that transaction ends, so the organisation's requests write one after another. Run it
    first, so that they wait here, before their inserts, rather than at the report rollups'
    rows, which every status change of the organisation's messages (the providers' reports
    among them) also locks until its commit.
    """
    bucket = int(now.timestamp() // BUCKET_SECONDS)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(RateCounter).values(org_id=org_id, bucket=bucket, count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[RateCounter.org_id, RateCounter.bucket],
        set_={"count": RateCounter.count + 1},
    )
    session.execute(stmt)
    rows = _window(session, org_id, bucket)
    _refuse_past(limit, rows, sum(int(r.n) for r in rows), bucket, now)


def _window(session: Session, org_id: str, bucket: int) -> Sequence[sa.Row[int, int]]:
    """The organisation's buckets within the hour that ends with ``bucket``, oldest first."""
    return session.execute(
        sa.select(RateCounter.bucket, RateCounter.count.label("n"))
        .where(RateCounter.org_id == org_id, RateCounter.bucket > bucket - WINDOW_BUCKETS)
        .order_by(RateCounter.bucket)
    ).all()


def _refuse_past(
    limit: int, rows: Sequence[sa.Row[int, int]], total: int, bucket: int, now: datetime
) -> None:
    """Raise :class:`RateLimitedError` when ``total`` requests (this one included) are more
    than ``limit``, saying when this one would fit."""
    if total <= limit:
        return
    now_ts = now.timestamp()
    # Requests already counted before this one: total - 1. For this one to fit, that many
    # minus (limit - 1) must have left the window; find the bucket whose expiry does it.
    must_expire = total - limit
    expired = 0
    retry_at = (bucket + 1) * BUCKET_SECONDS
    for row in rows:
        expired += int(row.n)
        if expired >= must_expire:
            retry_at = (row.bucket + WINDOW_BUCKETS) * BUCKET_SECONDS
            break
    retry_after = max(1, math.ceil(retry_at - now_ts))
    raise RateLimitedError(
        N_(
            "the organisation's quota of %(limit)s send requests per hour is used up; "
            "retry in %(retry_after)s s",
            limit=limit,
            retry_after=retry_after,
        ),
        retry_after=retry_after,
    )


def purge_old_buckets(session: Session, now: datetime) -> int:
    """Delete buckets that no longer count; returns how many were deleted."""
    oldest = int(now.timestamp() // BUCKET_SECONDS) - WINDOW_BUCKETS
    result = session.execute(sa.delete(RateCounter).where(RateCounter.bucket <= oldest))
    return int(getattr(result, "rowcount", 0) or 0)
