"""Routing: which queue a customer's conversation waits in, and why.

A customer message that opens a conversation is described as :class:`ReplyFacts` (the channel,
the outbound message it answers with its configuration, template and flow run, the contact and
their language, the text); the organisation's rules, in order, pick the queue
(:func:`outbound.domain.routing.route`), else its fallback queue takes it. The queue's overflow
settings may then send it on (another queue, or an automatic reply). The same code answers
``GET /v1/conversations/{id}/routing`` and ``POST /v1/routing/simulate``, so what the explanation
says is what routing did.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import (
    Channel,
    Contact,
    Conversation,
    FlowRunBatch,
    Message,
    Organization,
    Queue,
    QueueMember,
    RoutingRule,
    User,
)
from outbound.clock import Clock
from outbound.domain import assignment as choosing
from outbound.domain import routing as rules
from outbound.domain.presence import is_online
from outbound.errors import InvalidRequestError, NotFoundError
from outbound.services.assignment import used_capacity
from outbound.services.conversation_log import record_change
from outbound.texts import N_

__all__ = ["Reply", "RoutingService", "reply_facts"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """What routing rules look at, and the contact the number belongs to (if any)."""

    facts: rules.ReplyFacts
    contact_id: str | None


def reply_facts(
    session: Session,
    org_id: str,
    channel: Channel,
    number: str,
    text: str,
    replied_to: Message | None,
) -> Reply:
    """Everything routing rules may look at, for one customer message."""
    contact = session.execute(
        sa.select(Contact)
        .where(
            Contact.org_id == org_id,
            sa.or_(Contact.mobile_phone == number, Contact.whatsapp_number == number),
        )
        .order_by(Contact.updated_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    flow_run_id = None
    if replied_to is not None and replied_to.request_id is not None:
        flow_run_id = session.execute(
            sa.select(FlowRunBatch.run_id)
            .where(FlowRunBatch.request_id == replied_to.request_id)
            .limit(1)
        ).scalar_one_or_none()
    fields: dict[str, Any] = {}
    language = replied_to.locale if replied_to is not None else None
    if contact is not None:
        fields = {
            "id": contact.id,
            "name": contact.name,
            "external_id": contact.external_id,
            "preferred_language": contact.preferred_language,
            "time_zone": contact.time_zone,
            **(contact.custom or {}),
        }
        language = contact.preferred_language or language
    facts = rules.ReplyFacts(
        channel_id=channel.id,
        channel_type=channel.type,
        configuration_id=replied_to.configuration_id if replied_to else None,
        template_id=replied_to.template_id if replied_to else None,
        flow_run_id=flow_run_id,
        contact_fields=fields,
        contact_language=language,
        text=text,
    )
    return Reply(facts, contact.id if contact is not None else None)


class RoutingService:
    """Decides and explains where conversations wait."""

    def __init__(self, db: Database, clock: Clock, *, presence_timeout: timedelta) -> None:
        self._db = db
        self._clock = clock
        self._presence_timeout = presence_timeout

    def decide(
        self, session: Session, org_id: str, facts: rules.ReplyFacts
    ) -> rules.RoutingDecision:
        """The routing decision for a reply (inside the caller's session)."""
        org = session.get(Organization, org_id)
        rows = session.execute(
            sa.select(RoutingRule)
            .where(RoutingRule.org_id == org_id, RoutingRule.enabled.is_(True))
            .order_by(RoutingRule.position, RoutingRule.created_at, RoutingRule.id)
        ).scalars()
        return rules.route(
            [self._rule(row) for row in rows],
            facts,
            org.fallback_queue_id if org is not None else None,
        )

    def route_new(
        self,
        session: Session,
        conversation: Conversation,
        reply: Reply,
        now: datetime,
    ) -> str | None:
        """Put a new (or reopened) conversation in its queue; returns the queue's id."""
        decision = self.decide(session, conversation.org_id, reply.facts)
        conversation.queue_id = decision.queue_id
        conversation.rule_id = decision.rule.id if decision.rule is not None else None
        conversation.priority = decision.priority
        conversation.required_skills = sorted(decision.required_skills)
        conversation.required_language = decision.required_language
        conversation.contact_id = reply.contact_id
        conversation.waiting_since = now
        conversation.last_customer_message_at = now
        session.flush()
        record_change(
            session,
            conversation,
            kind="routed",
            now=now,
            to_status=conversation.status,
            to_queue_id=decision.queue_id,
            reason=(
                f"rule {decision.rule.name}" if decision.rule is not None else "fallback queue"
            ),
            detail={"rule_id": conversation.rule_id},
        )
        return decision.queue_id

    def explain(self, org_id: str, conversation_id: str) -> dict[str, Any]:
        """Why a conversation is where it is: the rule that matched, and each agent considered."""
        now = self._clock.now()
        with self._db.read() as session:
            conversation = session.execute(
                sa.select(Conversation).where(
                    Conversation.id == conversation_id, Conversation.org_id == org_id
                )
            ).scalar_one_or_none()
            if conversation is None:
                raise NotFoundError(
                    N_("no conversation %(conversation)r", conversation=conversation_id)
                )
            first_inbound = conversation.answered_message_id
            replied_to = session.get(Message, first_inbound) if first_inbound else None
            channel = session.get(Channel, conversation.channel_id)
            if channel is None:
                raise NotFoundError(N_("no channel %(channel)r", channel=conversation.channel_id))
            text = self._first_text(session, conversation)
            reply = reply_facts(
                session, org_id, channel, conversation.customer_number, text, replied_to
            )
            decision = self.decide(session, org_id, reply.facts)
            agents = self._agents(session, conversation.queue_id, conversation, now)
        return {
            "conversation_id": conversation.id,
            "status": conversation.status,
            "queue_id": conversation.queue_id,
            "assigned_to": conversation.assigned_to,
            "offered_to": conversation.offered_to,
            "routing": self._decision_out(decision),
            "agents": agents,
        }

    def simulate(
        self,
        org_id: str,
        *,
        channel_id: str,
        number: str | None,
        text: str,
        replied_message_id: str | None,
    ) -> dict[str, Any]:
        """What routing would do with a made-up reply; nothing is stored."""
        now = self._clock.now()
        with self._db.read() as session:
            channel = session.execute(
                sa.select(Channel).where(Channel.id == channel_id, Channel.org_id == org_id)
            ).scalar_one_or_none()
            if channel is None:
                raise InvalidRequestError(
                    N_("no channel %(channel)r", channel=channel_id), field="channel_id"
                )
            replied_to = None
            if replied_message_id is not None:
                replied_to = session.execute(
                    sa.select(Message).where(
                        Message.id == replied_message_id, Message.org_id == org_id
                    )
                ).scalar_one_or_none()
                if replied_to is None:
                    raise InvalidRequestError(
                        N_("no message %(message)r", message=replied_message_id), field="message_id"
                    )
            reply = reply_facts(session, org_id, channel, number or "", text, replied_to)
            decision = self.decide(session, org_id, reply.facts)
            probe = Conversation(
                id="simulated",
                org_id=org_id,
                channel_id=channel.id,
                customer_number=number or "",
                status="open",
                required_skills=sorted(decision.required_skills),
                required_language=decision.required_language,
                priority=decision.priority,
                version=1,
            )
            agents = self._agents(session, decision.queue_id, probe, now)
        return {"routing": self._decision_out(decision), "agents": agents}

    # --- helpers --------------------------------------------------------------------------

    def _agents(
        self, session: Session, queue_id: str | None, conversation: Conversation, now: datetime
    ) -> list[dict[str, Any]]:
        if queue_id is None:
            return []
        queue = session.get(Queue, queue_id)
        if queue is None:
            return []
        rows = session.execute(
            sa.select(User, QueueMember)
            .join(QueueMember, QueueMember.user_id == User.id)
            .where(QueueMember.queue_id == queue_id)
            .order_by(User.id)
        ).all()
        members = [user for user, _ in rows]
        rounds = {user.id: member for user, member in rows}
        used = used_capacity(session, [m.id for m in members], now)
        states = [
            choosing.AgentState(
                user_id=m.id,
                online=m.active
                and is_online(m.presence, m.last_seen_at, now, self._presence_timeout),
                member=True,
                capacity=m.capacity,
                used=used.get(m.id, 0),
                skills=frozenset(m.skills or ()),
                languages=frozenset(m.languages or ()),
                last_assigned_at=rounds[m.id].last_assigned_at,
                assignments_total=rounds[m.id].assignments,
                last_capacity_release_at=m.last_released_at,
                declines=0,
            )
            for m in members
        ]
        choice = choosing.choose_agent(
            choosing.AssignmentMethod(queue.assignment_method),
            states,
            required_skills=conversation.required_skills or (),
            required_language=conversation.required_language,
            affinity_agent_id=conversation.affinity_user_id,
        )
        names = {m.id: m.name for m in members}
        return [
            {
                "user_id": considered.user_id,
                "name": names.get(considered.user_id),
                "chosen": considered.chosen,
                "reason": considered.reason.value,
                "detail": considered.detail,
            }
            for considered in choice.considered
        ]

    def _first_text(self, session: Session, conversation: Conversation) -> str:
        from outbound.adapters.db.models import InboundMessage

        body = session.execute(
            sa.select(InboundMessage.body)
            .where(InboundMessage.conversation_id == conversation.id)
            .order_by(InboundMessage.received_at)
            .limit(1)
        ).scalar_one_or_none()
        return body or ""

    @staticmethod
    def _rule(row: RoutingRule) -> rules.RoutingRule:
        return rules.RoutingRule(
            id=row.id,
            name=row.name,
            queue_id=row.queue_id,
            position=row.position,
            conditions=rules.validate_conditions(row.conditions),
            required_skills=frozenset(row.required_skills or ()),
            required_language=row.required_language,
            priority=row.priority,
            enabled=row.enabled,
        )

    @staticmethod
    def _decision_out(decision: rules.RoutingDecision) -> dict[str, Any]:
        rule = decision.rule
        return {
            "queue_id": decision.queue_id,
            "fallback": decision.is_fallback,
            "rule": {"id": rule.id, "name": rule.name} if rule is not None else None,
            "required_skills": sorted(decision.required_skills),
            "required_language": decision.required_language,
            "priority": decision.priority,
            "rules": [
                {
                    "rule_id": e.rule_id,
                    "name": e.rule_name,
                    "matched": e.matched,
                    "failed_condition": e.failed_condition,
                    "reason": e.reason,
                }
                for e in decision.evaluations
            ],
        }
