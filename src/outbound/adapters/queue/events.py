"""The events queue: claim the events flows have not seen yet, and delete those seen long ago.

Events are written by the change that raises them (:mod:`outbound.services.events`) and read
here in ``id`` order. PostgreSQL claims them with ``FOR UPDATE SKIP LOCKED``, so two flow
engines take different events; SQLite has one writer, whose ``BEGIN IMMEDIATE`` serialises
claimers (see :mod:`outbound.adapters.db.engine`). An event is seen once: the transaction that
claims it creates its runs and marks it processed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Event, FlowRun
from outbound.adapters.queue.flow_runs import ACTIVE_RUN_STATUSES

__all__ = ["EventQueue"]


class EventQueue:
    """Queue operations on the ``events`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def claim_events(self, session: Session, limit: int) -> Sequence[Event]:
        """Lock up to ``limit`` unprocessed events, oldest first, in the caller's transaction
        (which marks them processed with :meth:`mark_processed` before it commits)."""
        query = sa.select(Event).where(Event.processed_at.is_(None)).order_by(Event.id).limit(limit)
        return session.execute(self._db.for_update(query, skip_locked=True)).scalars().all()

    @staticmethod
    def mark_processed(session: Session, events: Sequence[Event], now: datetime) -> None:
        """Flows have seen ``events``: no engine claims them again."""
        session.execute(
            sa.update(Event).where(Event.id.in_([e.id for e in events])).values(processed_at=now)
        )

    def delete_processed(self, before: datetime, chunk: int) -> int:
        """Delete, ``chunk`` at a time, the events processed before ``before``; returns how
        many. An event whose run is still to come stays: a delayed run reads it when due."""
        deleted = 0
        while True:
            with self._db.transaction() as session:
                ids = list(
                    session.execute(
                        sa.select(Event.id)
                        .where(
                            Event.processed_at.is_not(None),
                            Event.processed_at < before,
                            ~sa.exists().where(
                                FlowRun.event_id == Event.id,
                                FlowRun.status.in_(ACTIVE_RUN_STATUSES),
                            ),
                        )
                        .order_by(Event.id)
                        .limit(chunk)
                    ).scalars()
                )
                if ids:
                    session.execute(sa.delete(Event).where(Event.id.in_(ids)))
            deleted += len(ids)
            if len(ids) < chunk:
                return deleted
