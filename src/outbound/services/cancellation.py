"""Canceling messages not yet handed to a provider: one, or the queued messages of a send
request, a flow run or an outbound configuration.

Only ``queued`` messages are canceled, by one conditional UPDATE (see
:meth:`~outbound.adapters.queue.outbox.Outbox.end_queued`): a message a worker has claimed
(``sending``) may already be at the provider and is left alone, and a canceled message is never
claimed. Each cancel is recorded in the status history with its time and who asked
(``user:<id>`` for a key acting as a user, else ``key:<id>``).
"""

from __future__ import annotations

import sqlalchemy as sa

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import FlowRun, FlowRunBatch, Message, SendRequest
from outbound.adapters.queue.outbox import Outbox
from outbound.clock import Clock
from outbound.domain.statuses import MessageStatus
from outbound.errors import ConflictError, NotFoundError
from outbound.schemas import CancelIn, CancelOut, MessageOut
from outbound.services.auth import Principal
from outbound.services.configurations import ConfigurationService
from outbound.services.tracking import TrackingService
from outbound.texts import N_

__all__ = ["CANCELED_REASON", "CancelService", "actor_of"]

CANCELED_REASON = "canceled"


def actor_of(principal: Principal) -> str:
    """Who a principal is in a history: its user, else its key."""
    return f"user:{principal.user_id}" if principal.user_id else f"key:{principal.key_id}"


class CancelService:
    """Cancels queued messages, one at a time or in bulk."""

    def __init__(self, db: Database, clock: Clock, tracking: TrackingService) -> None:
        self._db = db
        self._clock = clock
        self._tracking = tracking

    def cancel_message(self, principal: Principal, message_id: str) -> MessageOut:
        """Cancel one message; 409 naming its status unless it is still ``queued``."""
        org_id = principal.org_id
        with self._db.transaction(urgent=True) as session:
            canceled = Outbox.end_queued(
                session,
                [Message.id == message_id, Message.org_id == org_id],
                MessageStatus.CANCELED,
                reason=CANCELED_REASON,
                source="api",
                now=self._clock.now(),
                actor=actor_of(principal),
            )
            if not canceled:
                status = session.execute(
                    sa.select(Message.status).where(
                        Message.id == message_id, Message.org_id == org_id
                    )
                ).scalar_one_or_none()
                if status is None:
                    raise NotFoundError(N_("no message %(message)r", message=message_id))
                raise ConflictError(
                    N_(
                        "the message is %(status)s; only a queued message can be canceled",
                        status=status,
                    ),
                    code="not_cancelable",
                    details={"status": status},
                )
        return self._tracking.get(org_id, message_id)

    def cancel_queued(self, principal: Principal, target: CancelIn) -> CancelOut:
        """Cancel every queued message of a send request, a flow run or a configuration."""
        org_id = principal.org_id
        with self._db.transaction(urgent=True) as session:
            where: list[sa.ColumnElement[bool]] = [Message.org_id == org_id]
            if target.request_id is not None:
                found = session.execute(
                    sa.select(SendRequest.id).where(
                        SendRequest.id == target.request_id, SendRequest.org_id == org_id
                    )
                ).first()
                if found is None:
                    raise NotFoundError(
                        N_("no send request %(request)r", request=target.request_id),
                        field="request_id",
                    )
                where.append(Message.request_id == target.request_id)
            elif target.flow_run_id is not None:
                found = session.execute(
                    sa.select(FlowRun.id).where(
                        FlowRun.id == target.flow_run_id, FlowRun.org_id == org_id
                    )
                ).first()
                if found is None:
                    raise NotFoundError(
                        N_("no flow run %(flow_run)r", flow_run=target.flow_run_id),
                        field="flow_run_id",
                    )
                where.append(
                    Message.request_id.in_(
                        sa.select(FlowRunBatch.request_id).where(
                            FlowRunBatch.run_id == target.flow_run_id,
                            FlowRunBatch.request_id.is_not(None),
                        )
                    )
                )
            else:
                try:
                    config = ConfigurationService.load(
                        session, org_id, target.configuration_id or ""
                    )
                except NotFoundError as exc:
                    raise NotFoundError(exc.message, field="configuration_id") from exc
                where.append(Message.configuration_id == config.id)
            canceled = Outbox.end_queued(
                session,
                where,
                MessageStatus.CANCELED,
                reason=CANCELED_REASON,
                source="api",
                now=self._clock.now(),
                actor=actor_of(principal),
            )
        return CancelOut(canceled=len(canceled))
