"""What every worker shares about a channel while sending: its next free slot, its health.

A channel limited to so many sends per second keeps the time of its next free sending slot
(``next_slot_at``); workers reserve slots under a row lock (PostgreSQL) or the single writer
(SQLite), so that together they never exceed the rate. A channel whose credentials the
provider refuses is stopped (``healthy`` false): the outbox claims none of its messages until
the credentials are replaced, unless a healthy fallback can take them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Channel

__all__ = ["ChannelState"]


class ChannelState:
    """Sending slots and stops of channels, in the database that every worker shares."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def reserve_slots(
        self, wanted: Mapping[str, tuple[float, Sequence[str]]], *, now: datetime, until: datetime
    ) -> tuple[dict[str, datetime], dict[str, datetime]]:
        """Reserve sending slots, in order, on rate-limited channels.

        ``wanted``: channel id → its rate per second and the messages (ids) to send through it.
        Returns each message's slot, and the messages deferred (with the time they may be
        tried again) because their slot would fall after ``until``; a channel whose next slot
        is free now always gets at least one.
        """
        slots: dict[str, datetime] = {}
        deferred: dict[str, datetime] = {}
        if not wanted:
            return slots, deferred
        with self._db.transaction() as session:
            for channel_id, (rate, messages) in wanted.items():
                query = self._db.for_update(
                    sa.select(Channel.next_slot_at).where(Channel.id == channel_id)
                )
                start = max(session.execute(query).scalar_one() or now, now)
                room = int((until - start).total_seconds() * rate)
                count = min(len(messages), max(room, 1 if start <= now else 0))
                step = timedelta(seconds=1 / rate)
                for index, message_id in enumerate(messages[:count]):
                    slots[message_id] = start + index * step
                end = start + count * step
                for message_id in messages[count:]:
                    deferred[message_id] = end
                if count:
                    session.execute(
                        sa.update(Channel).where(Channel.id == channel_id).values(next_slot_at=end)
                    )
        return slots, deferred

    def stop(self, channel_id: str, detail: str, now: datetime) -> None:
        """Stop a healthy channel, saying why (``detail``); a stopped one stays as it is."""
        with self._db.transaction() as session:
            session.execute(
                sa.update(Channel)
                .where(Channel.id == channel_id, Channel.healthy.is_(True))
                .values(healthy=False, health_detail=detail, updated_at=now)
            )
