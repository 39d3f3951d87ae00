"""Queues, their members, the ordered routing rules and the organisation's fallback queue.

A small team needs one call: ``POST /v1/queues {"name": ..., "members": [...]}``; the first queue
an organisation creates becomes its fallback, which takes every conversation no rule matches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import (
    Conversation,
    Organization,
    Queue,
    QueueMember,
    RoutingRule,
    Template,
    User,
)
from outbound.clock import Clock
from outbound.domain.locales import normalize_locale
from outbound.domain.routing import validate_conditions
from outbound.errors import (
    ConflictError,
    InvalidLocaleError,
    InvalidRequestError,
    InvalidRoutingRuleError,
    NotFoundError,
)
from outbound.schemas import (
    AssignmentMethod,
    OrganizationRoutingUpdate,
    QueueCreate,
    QueueOut,
    QueueUpdate,
    RoutingConditionIn,
    RoutingRuleCreate,
    RoutingRuleOut,
    RoutingRuleUpdate,
)
from outbound.texts import N_

__all__ = ["DEFAULT_REASSIGN_AFTER_SECONDS", "QueueService", "clean_labels"]

DEFAULT_REASSIGN_AFTER_SECONDS = 600
WAITING_STATUSES = ("open",)


def clean_labels(values: Iterable[str], field: str) -> list[str]:
    """Skills are free labels: trimmed, compared without case, kept once, in the given order."""
    result: list[str] = []
    seen: set[str] = set()
    for index, value in enumerate(values):
        label = value.strip()
        if not label or len(label) > 100:
            raise InvalidRequestError(N_("must be 1 to 100 characters"), field=f"{field}[{index}]")
        if label.casefold() not in seen:
            seen.add(label.casefold())
            result.append(label)
    return result


def _language(value: str | None, field: str) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        return normalize_locale(value)
    except InvalidLocaleError as exc:
        raise InvalidRequestError(
            N_("%(value)r is not a BCP-47 language tag", value=value), field=field
        ) from exc


def _conditions(conditions: Sequence[RoutingConditionIn]) -> list[dict[str, Any]]:
    """Conditions checked by the routing rules, in the form they are stored (JSON)."""
    try:
        checked = validate_conditions([c.model_dump() for c in conditions])
    except InvalidRoutingRuleError as exc:
        where = "conditions"
        if exc.index is not None:
            part = "value"
            if exc.reason.startswith(("unknown field", "a condition needs a field")):
                part = "field"
            elif exc.reason.startswith("unknown op") or " does not take " in exc.reason:
                part = "op"
            elif exc.reason.startswith(("unknown key", "a condition is")):
                part = ""
            where = f"conditions[{exc.index}]" + (f".{part}" if part else "")
        raise InvalidRequestError(exc.reason, field=where) from exc
    return [
        {
            "field": c.field,
            "op": str(c.op),
            "value": list(c.value) if isinstance(c.value, tuple) else c.value,
        }
        for c in checked
    ]


class QueueService:
    """Creates and changes queues and routing rules; reads them for routing."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        on_members_changed: Callable[[str], object] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        # Called with a queue's id once members joined it (an assignment pass).
        self._on_members_changed = on_members_changed

    def _members_changed(self, queue_id: str) -> None:
        if self._on_members_changed is not None:
            self._on_members_changed(queue_id)

    # --- queues ---------------------------------------------------------------------------

    def create_queue(self, org_id: str, data: QueueCreate) -> QueueOut:
        now = self._clock.now()
        with self._db.transaction() as session:
            self._check_name_free(session, org_id, data.name, None)
            queue = Queue(
                org_id=org_id,
                name=data.name,
                assignment_method=(data.assignment_method or AssignmentMethod.HIGHEST_CAPACITY),
                priority=data.priority or 0,
                offer_timeout_seconds=data.offer_timeout_seconds,
                reassign_after_seconds=(
                    data.reassign_after_seconds
                    if "reassign_after_seconds" in data.model_fields_set
                    else DEFAULT_REASSIGN_AFTER_SECONDS
                ),
                wrap_up_seconds=data.wrap_up_seconds or 0,
                hours=data.hours,
                time_zone=data.time_zone,
                overflow=None,
                created_at=now,
                updated_at=now,
            )
            session.add(queue)
            session.flush()
            if data.overflow is not None:
                queue.overflow = self._overflow(session, org_id, queue.id, data.overflow)
            self._set_members(session, org_id, queue.id, data.members or [], now)
            org = self._org(session, org_id)
            if org.fallback_queue_id is None:
                org.fallback_queue_id = queue.id
            result = self._out(session, queue, org)
        self._members_changed(result.id)
        return result

    def list_queues(self, org_id: str) -> list[QueueOut]:
        with self._db.read() as session:
            org = self._org(session, org_id)
            queues = session.execute(
                sa.select(Queue)
                .where(Queue.org_id == org_id)
                .order_by(Queue.priority.desc(), Queue.name)
            ).scalars()
            return [self._out(session, queue, org) for queue in queues]

    def get_queue(self, org_id: str, queue_id: str) -> QueueOut:
        with self._db.read() as session:
            return self._out(session, self._queue(session, org_id, queue_id), None)

    def update_queue(self, org_id: str, queue_id: str, data: QueueUpdate) -> QueueOut:
        now = self._clock.now()
        given = data.model_fields_set
        with self._db.transaction() as session:
            queue = self._queue(session, org_id, queue_id, lock=True)
            if data.name is not None and data.name != queue.name:
                self._check_name_free(session, org_id, data.name, queue.id)
                queue.name = data.name
            for name in (
                "assignment_method",
                "priority",
                "offer_timeout_seconds",
                "reassign_after_seconds",
            ):
                if name in given:
                    value = getattr(data, name)
                    setattr(queue, name, value)
            if "wrap_up_seconds" in given:
                queue.wrap_up_seconds = data.wrap_up_seconds or 0
            if "hours" in given:
                queue.hours = data.hours
            if "time_zone" in given:
                queue.time_zone = data.time_zone
            if "overflow" in given:
                queue.overflow = (
                    self._overflow(session, org_id, queue.id, data.overflow)
                    if data.overflow
                    else None
                )
            if data.members is not None:
                self._set_members(session, org_id, queue.id, data.members, now)
            queue.updated_at = now
            result = self._out(session, queue, None)
        self._members_changed(result.id)
        return result

    def delete_queue(self, org_id: str, queue_id: str) -> None:
        """Delete a queue nothing depends on: no rule, no waiting or assigned conversation,
        and not the fallback while other queues exist."""
        with self._db.transaction() as session:
            queue = self._queue(session, org_id, queue_id, lock=True)
            rules = session.execute(
                sa.select(RoutingRule.name).where(
                    RoutingRule.org_id == org_id, RoutingRule.queue_id == queue.id
                )
            ).scalars()
            names = sorted(rules)
            if names:
                raise ConflictError(
                    N_(
                        "routing rules send conversations to this queue: %(rules)s",
                        rules=", ".join(names),
                    ),
                    code="queue_in_use",
                    details={"routing_rules": names},
                )
            live = session.execute(
                sa.select(sa.func.count())
                .select_from(Conversation)
                .where(Conversation.queue_id == queue.id, Conversation.status != "closed")
            ).scalar_one()
            if live:
                raise ConflictError(
                    N_(
                        "%(count)s conversations are in this queue; transfer or close them first",
                        count=live,
                    ),
                    code="queue_in_use",
                    details={"conversations": live},
                )
            overflowing = sorted(
                q.name
                for q in session.execute(
                    sa.select(Queue).where(Queue.org_id == org_id, Queue.id != queue.id)
                ).scalars()
                if (q.overflow or {}).get("queue_id") == queue.id
            )
            if overflowing:
                raise ConflictError(
                    N_("queues overflow to this queue: %(queues)s", queues=", ".join(overflowing)),
                    code="queue_in_use",
                    details={"queues": overflowing},
                )
            org = self._org(session, org_id)
            if org.fallback_queue_id == queue.id:
                others = session.execute(
                    sa.select(sa.func.count())
                    .select_from(Queue)
                    .where(Queue.org_id == org_id, Queue.id != queue.id)
                ).scalar_one()
                if others:
                    raise ConflictError(
                        N_(
                            "this is the organisation's fallback queue; choose another first "
                            "(PATCH /v1/organization fallback_queue_id)"
                        ),
                        code="queue_in_use",
                    )
                org.fallback_queue_id = None
            session.execute(sa.delete(QueueMember).where(QueueMember.queue_id == queue.id))
            session.delete(queue)

    def add_member(self, org_id: str, queue_id: str, user_id: str) -> QueueOut:
        now = self._clock.now()
        with self._db.transaction() as session:
            queue = self._queue(session, org_id, queue_id, lock=True)
            self._check_users(session, org_id, [user_id], "user_id")
            exists = session.get(QueueMember, (queue.id, user_id))
            if exists is None:
                session.add(
                    QueueMember(queue_id=queue.id, user_id=user_id, org_id=org_id, added_at=now)
                )
                queue.updated_at = now
            session.flush()
            result = self._out(session, queue, None)
        self._members_changed(result.id)
        return result

    def remove_member(self, org_id: str, queue_id: str, user_id: str) -> None:
        with self._db.transaction() as session:
            queue = self._queue(session, org_id, queue_id, lock=True)
            member = session.get(QueueMember, (queue.id, user_id))
            if member is None:
                raise NotFoundError(N_("user %(user)r is not a member of this queue", user=user_id))
            session.delete(member)
            queue.updated_at = self._clock.now()

    # --- routing rules --------------------------------------------------------------------

    def create_rule(self, org_id: str, data: RoutingRuleCreate) -> RoutingRuleOut:
        now = self._clock.now()
        conditions = _conditions(data.conditions or [])
        with self._db.transaction() as session:
            self._queue(session, org_id, data.queue_id or "", field="queue_id")
            rules = self._rules(session, org_id, lock=True)
            position = min(data.position or len(rules) + 1, len(rules) + 1)
            rule = RoutingRule(
                org_id=org_id,
                name=data.name,
                position=position,
                enabled=True if data.enabled is None else data.enabled,
                conditions=conditions,
                queue_id=data.queue_id,
                required_skills=clean_labels(data.required_skills or [], "required_skills"),
                required_language=_language(data.required_language, "required_language"),
                priority=data.priority or 0,
                created_at=now,
                updated_at=now,
            )
            rules.insert(position - 1, rule)
            session.add(rule)
            self._renumber(rules)
            session.flush()
            return RoutingRuleOut.model_validate(rule)

    def list_rules(self, org_id: str) -> list[RoutingRuleOut]:
        with self._db.read() as session:
            return [RoutingRuleOut.model_validate(r) for r in self._rules(session, org_id)]

    def get_rule(self, org_id: str, rule_id: str) -> RoutingRuleOut:
        with self._db.read() as session:
            return RoutingRuleOut.model_validate(self._rule(session, org_id, rule_id))

    def update_rule(self, org_id: str, rule_id: str, data: RoutingRuleUpdate) -> RoutingRuleOut:
        given = data.model_fields_set
        with self._db.transaction() as session:
            rules = self._rules(session, org_id, lock=True)
            rule = next((r for r in rules if r.id == rule_id), None)
            if rule is None:
                raise NotFoundError(N_("no routing rule %(rule)r", rule=rule_id))
            if data.name is not None:
                rule.name = data.name
            if "conditions" in given:
                rule.conditions = _conditions(data.conditions or [])
            if "queue_id" in given:
                self._queue(session, org_id, data.queue_id or "", field="queue_id")
                rule.queue_id = data.queue_id or ""
            if "required_skills" in given:
                rule.required_skills = clean_labels(data.required_skills or [], "required_skills")
            if "required_language" in given:
                rule.required_language = _language(data.required_language, "required_language")
            if "priority" in given:
                rule.priority = data.priority or 0
            if "enabled" in given:
                rule.enabled = bool(data.enabled)
            if data.position is not None:
                rules.remove(rule)
                rules.insert(min(data.position, len(rules) + 1) - 1, rule)
                self._renumber(rules)
            rule.updated_at = self._clock.now()
            session.flush()
            return RoutingRuleOut.model_validate(rule)

    def delete_rule(self, org_id: str, rule_id: str) -> None:
        with self._db.transaction() as session:
            rules = self._rules(session, org_id, lock=True)
            rule = next((r for r in rules if r.id == rule_id), None)
            if rule is None:
                raise NotFoundError(N_("no routing rule %(rule)r", rule=rule_id))
            rules.remove(rule)
            session.delete(rule)
            self._renumber(rules)

    # --- the organisation -----------------------------------------------------------------

    def update_organization(self, org_id: str, data: OrganizationRoutingUpdate) -> Organization:
        given = data.model_fields_set
        with self._db.transaction() as session:
            org = self._org(session, org_id)
            if "fallback_queue_id" in given:
                if data.fallback_queue_id is None:
                    raise InvalidRequestError(
                        N_("an organisation with queues needs a fallback queue"),
                        field="fallback_queue_id",
                    )
                queue = self._queue(
                    session, org_id, data.fallback_queue_id, field="fallback_queue_id"
                )
                org.fallback_queue_id = queue.id
            if "reopen_closed" in given:
                org.reopen_closed = bool(data.reopen_closed)
            session.flush()
            session.expunge(org)
            return org

    # --- helpers --------------------------------------------------------------------------

    def _org(self, session: Session, org_id: str) -> Organization:
        org = session.get(Organization, org_id)
        if org is None:
            raise NotFoundError(N_("no organisation %(org)r", org=org_id))
        return org

    def _queue(
        self,
        session: Session,
        org_id: str,
        queue_id: str,
        *,
        lock: bool = False,
        field: str | None = None,
    ) -> Queue:
        query = sa.select(Queue).where(Queue.org_id == org_id, Queue.id == queue_id)
        if lock:
            query = self._db.for_update(query)
        queue = session.execute(query).scalar_one_or_none()
        if queue is None:
            if field is not None:
                raise InvalidRequestError(N_("no queue %(queue)r", queue=queue_id), field=field)
            raise NotFoundError(N_("no queue %(queue)r", queue=queue_id))
        return queue

    def _rule(self, session: Session, org_id: str, rule_id: str) -> RoutingRule:
        rule = session.execute(
            sa.select(RoutingRule).where(RoutingRule.org_id == org_id, RoutingRule.id == rule_id)
        ).scalar_one_or_none()
        if rule is None:
            raise NotFoundError(N_("no routing rule %(rule)r", rule=rule_id))
        return rule

    def _rules(self, session: Session, org_id: str, *, lock: bool = False) -> list[RoutingRule]:
        query = (
            sa.select(RoutingRule)
            .where(RoutingRule.org_id == org_id)
            .order_by(RoutingRule.position, RoutingRule.created_at, RoutingRule.id)
        )
        if lock:
            # Lock the organisation row: rules are renumbered as a whole.
            session.execute(
                self._db.for_update(sa.select(Organization.id).where(Organization.id == org_id))
            )
        return list(session.execute(query).scalars())

    @staticmethod
    def _renumber(rules: Sequence[RoutingRule]) -> None:
        for index, rule in enumerate(rules, start=1):
            rule.position = index

    def _check_name_free(
        self, session: Session, org_id: str, name: str, except_id: str | None
    ) -> None:
        query = sa.select(Queue.id).where(Queue.org_id == org_id, Queue.name == name)
        if except_id is not None:
            query = query.where(Queue.id != except_id)
        if session.execute(query).first() is not None:
            raise ConflictError(N_("a queue named %(name)r exists", name=name), field="name")

    def _check_users(
        self, session: Session, org_id: str, user_ids: Sequence[str], field: str
    ) -> None:
        found = set(
            session.execute(
                sa.select(User.id).where(User.org_id == org_id, User.id.in_(set(user_ids)))
            ).scalars()
        )
        for index, user_id in enumerate(user_ids):
            if user_id not in found:
                where = field if field == "user_id" else f"{field}[{index}]"
                raise InvalidRequestError(N_("no user %(user)r", user=user_id), field=where)

    def _set_members(
        self, session: Session, org_id: str, queue_id: str, user_ids: Sequence[str], now: datetime
    ) -> None:
        self._check_users(session, org_id, user_ids, "members")
        wanted = list(dict.fromkeys(user_ids))
        current = set(
            session.execute(
                sa.select(QueueMember.user_id).where(QueueMember.queue_id == queue_id)
            ).scalars()
        )
        gone = current - set(wanted)
        if gone:
            session.execute(
                sa.delete(QueueMember).where(
                    QueueMember.queue_id == queue_id, QueueMember.user_id.in_(gone)
                )
            )
        for user_id in wanted:
            if user_id not in current:
                session.add(
                    QueueMember(queue_id=queue_id, user_id=user_id, org_id=org_id, added_at=now)
                )
        session.flush()

    def _overflow(self, session: Session, org_id: str, queue_id: str, spec: Any) -> dict[str, Any]:
        if spec.max_waiting is None and spec.max_wait_seconds is None and not spec.outside_hours:
            raise InvalidRequestError(
                N_("give max_waiting, max_wait_seconds or outside_hours"), field="overflow"
            )
        if spec.action == "transfer":
            if spec.queue_id == queue_id:
                raise InvalidRequestError(
                    N_("a queue cannot overflow to itself"), field="overflow.queue_id"
                )
            self._queue(session, org_id, spec.queue_id, field="overflow.queue_id")
        else:
            found = session.execute(
                sa.select(Template.id).where(
                    Template.org_id == org_id, Template.id == spec.template_id
                )
            ).first()
            if found is None:
                raise InvalidRequestError(
                    N_("no template %(template)r", template=spec.template_id),
                    field="overflow.template_id",
                )
        result: dict[str, Any] = spec.model_dump()
        return result

    def _out(self, session: Session, queue: Queue, org: Organization | None) -> QueueOut:
        if org is None:
            org = self._org(session, queue.org_id)
        members = list(
            session.execute(
                sa.select(QueueMember.user_id)
                .where(QueueMember.queue_id == queue.id)
                .order_by(QueueMember.added_at, QueueMember.user_id)
            ).scalars()
        )
        waiting = session.execute(
            sa.select(sa.func.count())
            .select_from(Conversation)
            .where(Conversation.queue_id == queue.id, Conversation.status.in_(WAITING_STATUSES))
        ).scalar_one()
        return QueueOut(
            id=queue.id,
            name=queue.name,
            assignment_method=AssignmentMethod(queue.assignment_method),
            priority=queue.priority,
            offer_timeout_seconds=queue.offer_timeout_seconds,
            reassign_after_seconds=queue.reassign_after_seconds,
            wrap_up_seconds=queue.wrap_up_seconds,
            hours=queue.hours,
            time_zone=queue.time_zone,
            overflow=queue.overflow,
            members=members,
            fallback=org.fallback_queue_id == queue.id,
            waiting=waiting,
            created_at=queue.created_at,
            updated_at=queue.updated_at,
        )
