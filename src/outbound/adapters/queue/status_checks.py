"""The statements of the status checks: claim the sent messages due for one, under each
channel's rate, and record what the check found.

A message recorded ``sent`` gets a ``status_check_at`` (:meth:`Outbox.record
<outbound.adapters.queue.outbox.Outbox.record>`); a final status reported for it clears it
(:class:`~outbound.services.statuses.StatusService`). Checks are claimed like sends: on
PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so that two workers never take the same message,
then ``status_check_at`` is moved past the claim's lease (a worker that dies leaves the
message due again after it); on SQLite inside the single writer's transaction.

The rate is shared by every worker like the sending rate (:mod:`.channel_state`): the slots of
a channel's checks are reserved under its row's lock, from ``channels.next_status_check_at``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Channel, Message, MessageEvent
from outbound.adapters.queue.history import message_event, write_notes
from outbound.domain.statuses import MessageStatus

__all__ = ["DueCheck", "StatusCheckQueue"]

_SENT = MessageStatus.SENT.value


@dataclass(frozen=True)
class DueCheck:
    """A sent message this worker may ask its provider about, from ``slot`` on."""

    message_id: str
    org_id: str
    channel_id: str
    """The channel it was sent through (its fallback's, after a failover)."""
    provider: str
    provider_message_id: str
    sent_at: datetime
    slot: datetime


class StatusCheckQueue:
    """Claiming status checks and recording their outcome, on the ``messages`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(
        self,
        *,
        now: datetime,
        limit: int,
        providers: Collection[str],
        rate: float,
        horizon: timedelta,
        lease: timedelta,
    ) -> tuple[list[DueCheck], dict[str, int]]:
        """Claim up to ``limit`` due checks whose slot falls within ``horizon``.

        ``providers``: those that answer a status look-up; the checks of other due messages
        end here, as do those of messages no longer ``sent``. Returns the checks, and how
        many ended for want of a look-up, by provider. Due messages of a channel beyond its
        slots wait until its next free slot.
        """
        with self._db.transaction() as session:
            pick = self._db.for_update(
                sa.select(
                    Message.id,
                    Message.org_id,
                    Message.status,
                    Message.channel_id,
                    Message.sent_via_channel_id,
                    Message.provider,
                    Message.provider_message_id,
                    Message.updated_at,
                )
                .where(Message.status_check_at <= now)
                .order_by(Message.status_check_at, Message.id)
                .limit(limit),
                skip_locked=True,
            )
            rows: list[Any] = []
            ending: dict[str, str] = {}  # message id → provider
            for row in session.execute(pick):
                if (
                    row.status == _SENT
                    and row.provider in providers
                    and row.provider_message_id is not None
                ):
                    rows.append(row)
                else:
                    ending[row.id] = row.provider
            if ending:
                session.execute(
                    sa.update(Message)
                    .where(Message.id.in_(list(ending)))
                    .values(status_check_at=None)
                    .execution_options(synchronize_session=False)
                )
            unanswered = Counter(ending.values())
            if not rows:
                return [], dict(unanswered)
            by_channel: dict[str, list[Any]] = {}
            for row in rows:
                by_channel.setdefault(row.sent_via_channel_id or row.channel_id, []).append(row)
            sent_at = self._sent_times(session, [row.id for row in rows])
            checks: list[DueCheck] = []
            deferred: list[dict[str, Any]] = []
            step = timedelta(seconds=1 / rate)
            # Channels in id order: two claimers lock their rows in the same order.
            for channel_id in sorted(by_channel):
                members = by_channel[channel_id]
                start = max(self._next_slot(session, channel_id) or now, now)
                room = int((now + horizon - start).total_seconds() * rate)
                count = min(len(members), max(room, 1 if start <= now else 0))
                for index, row in enumerate(members[:count]):
                    checks.append(
                        DueCheck(
                            message_id=row.id,
                            org_id=row.org_id,
                            channel_id=channel_id,
                            provider=row.provider,
                            provider_message_id=row.provider_message_id,
                            sent_at=sent_at.get(row.id, row.updated_at),
                            slot=start + index * step,
                        )
                    )
                end = start + count * step
                deferred.extend({"b_id": row.id, "b_at": end} for row in members[count:])
                if count:
                    session.execute(
                        sa.update(Channel)
                        .where(Channel.id == channel_id)
                        .values(next_status_check_at=end)
                    )
            # Claimed: due again only if this worker does not record its check in time.
            self._set_times(
                session,
                [{"b_id": c.message_id, "b_at": c.slot + lease} for c in checks] + deferred,
            )
        return checks, dict(unanswered)

    def _next_slot(self, session: Session, channel_id: str) -> datetime | None:
        query = self._db.for_update(
            sa.select(Channel.next_status_check_at).where(Channel.id == channel_id)
        )
        return session.execute(query).scalar_one_or_none()

    @staticmethod
    def _sent_times(session: Session, ids: Sequence[str]) -> dict[str, datetime]:
        """When each message was recorded sent (its first ``sent`` history row)."""
        return {
            row.message_id: row.sent_at
            for row in session.execute(
                sa.select(
                    MessageEvent.message_id,
                    sa.func.min(MessageEvent.occurred_at).label("sent_at"),
                )
                .where(MessageEvent.message_id.in_(ids), MessageEvent.status == _SENT)
                .group_by(MessageEvent.message_id)
            )
        }

    @staticmethod
    def _set_times(session: Session, params: Sequence[Mapping[str, Any]]) -> None:
        if not params:
            return
        table = cast(sa.Table, Message.__table__)
        session.connection().execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("b_id"), table.c.status == _SENT)
            .values(status_check_at=sa.bindparam("b_at")),
            list(params),
        )

    def record(
        self,
        *,
        again: Mapping[str, datetime],
        ended: Collection[str],
        given_up: Mapping[str, str],
        now: datetime,
    ) -> list[str]:
        """Record checks in one transaction: ``again`` (message id → next check), ``ended``
        (no more checks: a final status was found), ``given_up`` (message id → why: no more
        checks, and a history row that says so without changing the status).

        Only messages still ``sent`` change. Returns the ids given up.
        """
        with self._db.transaction() as session:
            self._set_times(session, [{"b_id": mid, "b_at": at} for mid, at in again.items()])
            if ended:
                session.execute(
                    sa.update(Message)
                    .where(Message.id.in_(list(ended)))
                    .values(status_check_at=None)
                    .execution_options(synchronize_session=False)
                )
            if not given_up:
                return []
            rows = session.execute(
                sa.update(Message)
                .where(Message.id.in_(list(given_up)), Message.status == _SENT)
                .values(status_check_at=None)
                .returning(Message.id, Message.org_id)
                .execution_options(synchronize_session=False)
            ).all()
            write_notes(
                session,
                [
                    message_event(
                        row.id,
                        row.org_id,
                        MessageStatus.SENT,
                        source="status_check",
                        occurred_at=now,
                        error_code="status_unknown",
                        error_message=given_up[row.id],
                    )
                    for row in rows
                ],
            )
        return [row.id for row in rows]
