"""The status path: provider reports (webhooks, the sandbox) move a message's status forward."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Message, MessageEvent
from outbound.adapters.providers.base import StatusReport
from outbound.clock import Clock
from outbound.domain.statuses import MessageStatus, can_transition

__all__ = ["StatusService"]

log = logging.getLogger(__name__)


class StatusService:
    """Applies provider status reports idempotently; a status never moves backwards."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def apply(self, report: StatusReport) -> bool:
        """Apply one report; False when no message has that provider id (yet)."""
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.execute(
                sa.select(Message.id, Message.org_id, Message.status).where(
                    Message.provider == report.provider,
                    Message.provider_message_id == report.provider_message_id,
                )
            ).one_or_none()
            if row is None:
                return False
            current = MessageStatus(row.status)
            if not can_transition(current, report.status):
                # A duplicate, or a late report of an earlier stage: nothing to change.
                log.debug(
                    "ignored %s report for message %s in status %s",
                    report.status.value,
                    row.id,
                    current.value,
                )
                return True
            values: dict[str, object] = {"status": report.status.value, "updated_at": now}
            if report.error_code is not None or report.error_message is not None:
                values["error_code"] = report.error_code
                values["error_message"] = report.error_message
            session.execute(
                sa.update(Message)
                .where(Message.id == row.id, Message.status == current.value)
                .values(**values)
            )
            session.add(
                MessageEvent(
                    message_id=row.id,
                    org_id=row.org_id,
                    status=report.status.value,
                    occurred_at=report.occurred_at or now,
                    source="provider",
                    error_code=report.error_code,
                    error_message=report.error_message,
                )
            )
        return True

    async def report(self, report: StatusReport) -> bool:
        """The :class:`~outbound.adapters.providers.base.StatusReporter` face of :meth:`apply`."""
        return await asyncio.to_thread(self.apply, report)
