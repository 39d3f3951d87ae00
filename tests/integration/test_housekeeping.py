"""Housekeeping: what has outlived its use goes (quota buckets, orphans, idempotency keys,
console sessions)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from outbound.adapters.db.models import ConsoleSession, OrphanReport, RateCounter, SendRequest
from outbound.app import Container
from outbound.schemas import UserCreate
from outbound.services.auth import create_organization
from outbound.services.housekeeping import Housekeeping
from outbound.services.quota import BUCKET_SECONDS, WINDOW_BUCKETS


def test_the_purge_removes_only_what_is_past_its_lifetime(container: Container) -> None:
    c = container
    org = create_organization(c.db, c.clock, "Acme")
    now = c.clock.now()
    old, recent = now - timedelta(hours=25), now - timedelta(hours=1)
    bucket = int(now.timestamp() // BUCKET_SECONDS)
    with c.db.transaction() as session:
        for pid, received in (("OLD", old), ("NEW", recent)):
            session.add(
                OrphanReport(
                    provider="sandbox",
                    provider_message_id=pid,
                    status="delivered",
                    occurred_at=received,
                    received_at=received,
                )
            )
        for key, state, created in (
            ("done-long-ago", "completed", old),
            ("done-lately", "completed", recent),
            ("stuck-long-ago", "processing", old),
        ):
            session.add(
                SendRequest(
                    org_id=org.id,
                    configuration_id="c",
                    idempotency_key=key,
                    body_hash="h",
                    state=state,
                    created_at=created,
                )
            )
        for n in (bucket - WINDOW_BUCKETS, bucket - WINDOW_BUCKETS + 1):
            session.add(RateCounter(org_id=org.id, bucket=n, count=1))
    user = c.users.create(org.id, UserCreate(email="a@example.com", name="A", role="agent"))
    with c.db.transaction() as session:
        for key, created in (("expired", now - timedelta(hours=13)), ("alive", recent)):
            session.add(
                ConsoleSession(
                    id_hash=key,
                    org_id=org.id,
                    user_id=user.id,
                    created_at=created,
                    last_seen_at=created,
                )
            )

    Housekeeping(c.db, c.clock).purge()

    with c.db.read() as session:
        orphans = session.execute(sa.select(OrphanReport.provider_message_id)).scalars()
        assert list(orphans) == ["NEW"]
        keys = session.execute(sa.select(SendRequest.idempotency_key)).scalars()
        # A key is released, its request kept; one still processing is another matter.
        assert sorted(map(str, keys)) == ["None", "done-lately", "stuck-long-ago"]
        buckets = session.execute(sa.select(RateCounter.bucket)).scalars()
        assert list(buckets) == [bucket - WINDOW_BUCKETS + 1]
        sessions = session.execute(sa.select(ConsoleSession.id_hash)).scalars()
        assert list(sessions) == ["alive"]
