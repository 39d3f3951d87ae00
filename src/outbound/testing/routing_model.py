"""An in-memory model of routing and assignment: the oracle for property and integration tests.

:class:`RoutingModel` keeps agents, queues and conversations in memory and applies the domain's
rules the way the services are meant to: replies are routed by :func:`~outbound.domain.routing.
route`, states change only through :func:`~outbound.domain.conversation_states.transition`, and
after every event an assignment pass offers or assigns the waiting conversations, longest waiting
first, with :func:`~outbound.domain.assignment.choose_agent`. Time is a clock the caller moves
with :meth:`RoutingModel.tick` (offers expire, snoozes wake, wrap-up holds end).

Each time a conversation is given to an agent, the model records a :class:`Handover` with what was
true at that moment (presence, membership, units in use, declines). :meth:`RoutingModel.violations`
checks the guarantees from those records and the current state alone, without trusting the code
that made the choices: no conversation held by two agents, nothing given to an agent who is
offline or outside its queue, no agent taken over capacity, and nothing offered again to an agent
who declined it ``max_declines`` times.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from outbound.domain.assignment import (
    DEFAULT_CAPACITY,
    DEFAULT_MAX_DECLINES,
    AgentState,
    AssignmentMethod,
    choose_agent,
    ineligibility,
)
from outbound.domain.conversation_states import (
    ASSIGNED_STATES,
    DEFAULT_OFFER_TIMEOUT,
    ConversationAction,
    ConversationState,
    action_on_customer_message,
    offer_expired,
    transition,
    uses_capacity,
    wrap_up_hold_ends,
    wrap_up_holds_capacity,
)
from outbound.domain.queues import WaitingConversation, waiting_order
from outbound.domain.routing import ReplyFacts, RoutingRule, route

__all__ = ["START", "Handover", "ModelAgent", "ModelConversation", "RoutingModel"]

START: Final = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""The model clock's first reading."""

_A = ConversationAction
_S = ConversationState
_COST: Final = 1


@dataclass
class ModelAgent:
    """An agent: presence, queues, capacity, and what assignment remembers about them."""

    user_id: str
    queues: set[str]
    capacity: int = DEFAULT_CAPACITY
    online: bool = True
    skills: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    last_assigned_at: dict[str, datetime] = field(default_factory=dict)
    last_release_at: datetime | None = None
    routed: int = 0
    """Conversations the assignment pass gave them (offers and direct assignments)."""
    routed_in: Counter[str] = field(default_factory=Counter)
    """The same, per queue."""
    holding: set[str] = field(default_factory=set)
    """Conversations they hold, kept apart from each conversation's holder as a cross-check."""
    over_after_cut: bool = False
    """Holding more than their capacity because it was lowered (allowed until it drains)."""


@dataclass
class ModelConversation:
    """A conversation: its state, queue, holder, and what routing decided for it."""

    id: str
    customer: str
    queue_id: str
    queued_at: datetime
    state: ConversationState = _S.OPEN
    assignee: str | None = None
    former_agent: str | None = None
    unanswered_since: datetime | None = None
    required_skills: frozenset[str] = frozenset()
    required_language: str | None = None
    priority: int = 0
    declines: Counter[str] = field(default_factory=Counter)
    offered_at: datetime | None = None
    hold_ends_at: datetime | None = None
    """While in wrap-up: when it stops holding capacity."""
    snoozed_until: datetime | None = None


@dataclass(frozen=True)
class Handover:
    """A conversation given to an agent (or given capacity again), and the facts at that time."""

    at: datetime
    conversation_id: str
    user_id: str
    action: ConversationAction
    online: bool
    member: bool
    declines: int
    used_before: int
    capacity: int
    takes_capacity: bool
    """Whether this handover made the conversation count against the agent's capacity."""


class RoutingModel:
    """Agents, queues and conversations in memory; see the module docstring.

    ``offers``: the assignment pass offers (the agent must :meth:`accept`) instead of assigning.
    ``reopen_closed``: a customer writing after closing reopens the conversation, else a new one
    starts. The first of ``queues`` is the fallback queue. Event methods raise
    :class:`~outbound.errors.InvalidTransitionError` before changing anything
    when the action is not allowed.
    """

    def __init__(
        self,
        *,
        queues: Sequence[str] = ("main",),
        method: AssignmentMethod = AssignmentMethod.HIGHEST_CAPACITY,
        offers: bool = False,
        max_declines: int = DEFAULT_MAX_DECLINES,
        offer_timeout: timedelta = DEFAULT_OFFER_TIMEOUT,
        wrap_up_hold: timedelta = timedelta(0),
        reopen_closed: bool = True,
        rules: Iterable[RoutingRule] = (),
        auto_assign: bool = True,
    ) -> None:
        if not queues:
            raise ValueError("the model needs at least one queue")
        self.queues = tuple(queues)
        self.method = method
        self.offers = offers
        self.max_declines = max_declines
        self.offer_timeout = offer_timeout
        self.wrap_up_hold = wrap_up_hold
        self.reopen_closed = reopen_closed
        self.rules = tuple(rules)
        self.auto_assign = auto_assign
        self.now = START
        self.agents: dict[str, ModelAgent] = {}
        self.conversations: dict[str, ModelConversation] = {}
        self.handovers: list[Handover] = []
        self._latest: dict[str, str] = {}

    # --- set-up and reading -------------------------------------------------------------------

    def add_agent(
        self,
        user_id: str,
        *,
        queues: Iterable[str] | None = None,
        capacity: int = DEFAULT_CAPACITY,
        online: bool = True,
        skills: Iterable[str] = (),
        languages: Iterable[str] = (),
    ) -> ModelAgent:
        """Add an agent, by default a member of every queue."""
        member_of = set(self.queues if queues is None else queues)
        agent = ModelAgent(
            user_id, member_of, capacity, online, frozenset(skills), frozenset(languages)
        )
        self.agents[user_id] = agent
        self._settle()
        return agent

    def used(self, user_id: str) -> int:
        """Units of the agent's capacity in use now."""
        return sum(
            _COST
            for c in self.conversations.values()
            if c.assignee == user_id and self._uses(c.state, c.hold_ends_at)
        )

    def agent_state(self, user_id: str, conversation: ModelConversation) -> AgentState:
        """The agent as assignment sees them for ``conversation``."""
        agent = self.agents[user_id]
        return AgentState(
            user_id=user_id,
            online=agent.online,
            member=conversation.queue_id in agent.queues,
            capacity=agent.capacity,
            used=self.used(user_id),
            skills=agent.skills,
            languages=agent.languages,
            last_assigned_at=agent.last_assigned_at.get(conversation.queue_id),
            assignments_total=agent.routed_in[conversation.queue_id],
            declines=conversation.declines[user_id],
            last_capacity_release_at=agent.last_release_at,
        )

    def in_state(self, *states: ConversationState) -> list[ModelConversation]:
        """Conversations in any of ``states``, oldest first."""
        return [c for c in self.conversations.values() if c.state in states]

    # --- events -------------------------------------------------------------------------------

    def reply(self, customer: str, facts: ReplyFacts | None = None) -> ModelConversation:
        """A message from ``customer``: continues, brings back, reopens or opens a conversation."""
        latest = self._latest.get(customer)
        conversation = None if latest is None else self.conversations[latest]
        action = None
        if conversation is not None:
            action = action_on_customer_message(
                conversation.state,
                assignee_can_take=self._assignee_can_take(conversation),
                reopen_closed=self.reopen_closed,
            )
        if conversation is None or action is None:
            former = None if conversation is None else conversation.former_agent
            conversation = self._open(customer, facts, former)
        else:
            self._apply(conversation, action)
        if conversation.unanswered_since is None:
            conversation.unanswered_since = self.now
        self._settle()
        return conversation

    def set_presence(self, user_id: str, online: bool) -> None:
        """An agent comes online or goes offline; going offline withdraws their offers."""
        self.agents[user_id].online = online
        if not online:
            for conversation in self.in_state(_S.OFFERED):
                if conversation.assignee == user_id:
                    self._apply(conversation, _A.REQUEUE)
        self._settle()

    def set_capacity(self, user_id: str, capacity: int) -> None:
        """Change an agent's capacity; lowering it below what they hold takes nothing away."""
        agent = self.agents[user_id]
        agent.capacity = capacity
        agent.over_after_cut = self.used(user_id) > capacity
        self._settle()

    def set_membership(self, user_id: str, queue_id: str, member: bool) -> None:
        """Add an agent to a queue or remove them; removal withdraws their offers in it."""
        agent = self.agents[user_id]
        if member:
            agent.queues.add(queue_id)
        else:
            agent.queues.discard(queue_id)
            for conversation in self.in_state(_S.OFFERED):
                if conversation.assignee == user_id and conversation.queue_id == queue_id:
                    self._apply(conversation, _A.REQUEUE)
        self._settle()

    def accept(self, conversation_id: str) -> None:
        self._apply(self.conversations[conversation_id], _A.ACCEPT)
        self._settle()

    def decline(self, conversation_id: str) -> None:
        """The agent declines the offer (a missed deadline counts the same)."""
        conversation = self.conversations[conversation_id]
        holder = conversation.assignee
        self._apply(conversation, _A.DECLINE)
        if holder is not None:
            conversation.declines[holder] += 1
        self._settle()

    def transfer_to_agent(self, conversation_id: str, user_id: str) -> bool:
        """Give the conversation to ``user_id`` if they can take it; False (no change) if not."""
        conversation = self.conversations[conversation_id]
        target = transition(conversation.state, _A.TRANSFER_TO_AGENT)
        if user_id == conversation.assignee:
            return False
        refusal = ineligibility(
            self.agent_state(user_id, conversation),
            required_skills=conversation.required_skills,
            required_language=conversation.required_language,
            max_declines=self.max_declines,
            cost=_COST if self._uses(target, None) else 0,
        )
        if refusal is not None:
            return False
        self._apply(conversation, _A.TRANSFER_TO_AGENT, to_agent=user_id)
        self._settle()
        return True

    def transfer_to_queue(self, conversation_id: str, queue_id: str) -> None:
        conversation = self.conversations[conversation_id]
        self._apply(conversation, _A.TRANSFER_TO_QUEUE)
        conversation.queue_id = queue_id
        self._settle()

    def agent_replied(self, conversation_id: str) -> None:
        conversation = self.conversations[conversation_id]
        self._apply(conversation, _A.AGENT_REPLIED)
        conversation.unanswered_since = None
        self._settle()

    def snooze(self, conversation_id: str, seconds: float) -> None:
        conversation = self.conversations[conversation_id]
        self._apply(conversation, _A.SNOOZE)
        conversation.snoozed_until = self.now + timedelta(seconds=seconds)
        self._settle()

    def wrap_up(self, conversation_id: str) -> None:
        self._apply(self.conversations[conversation_id], _A.WRAP_UP)
        self._settle()

    def close(self, conversation_id: str) -> None:
        self._apply(self.conversations[conversation_id], _A.CLOSE)
        self._settle()

    def tick(self, seconds: float) -> None:
        """Move the clock: wrap-up holds end, offers past their deadline are declined, snoozed
        conversations due wake (back to their agent if they can take it, else to the queue)."""
        before = self.now
        self.now += timedelta(seconds=seconds)
        for conversation in self.in_state(_S.WRAP_UP):
            ends = conversation.hold_ends_at
            if ends is not None and conversation.assignee is not None and before < ends <= self.now:
                self._released(conversation.assignee, ends)
        for conversation in self.in_state(_S.OFFERED):
            offered_at = conversation.offered_at or self.now
            if offer_expired(offered_at, self.now, self.offer_timeout):
                holder = conversation.assignee
                self._apply(conversation, _A.DECLINE)
                if holder is not None:
                    conversation.declines[holder] += 1
        for conversation in self.in_state(_S.SNOOZED):
            if conversation.snoozed_until is not None and conversation.snoozed_until <= self.now:
                action = _A.WAKE if self._assignee_can_take(conversation) else _A.REQUEUE
                self._apply(conversation, action)
        self._settle()

    def assign_waiting(self) -> list[Handover]:
        """One assignment pass: each queue's open conversations in waiting order."""
        made: list[Handover] = []
        for queue_id in self.queues:
            waiting = [
                WaitingConversation(c.id, c.unanswered_since or c.queued_at, c.priority)
                for c in self.in_state(_S.OPEN)
                if c.queue_id == queue_id
            ]
            for entry in waiting_order(waiting):
                conversation = self.conversations[entry.id]
                choice = choose_agent(
                    self.method,
                    [self.agent_state(user_id, conversation) for user_id in sorted(self.agents)],
                    conversation.required_skills,
                    conversation.required_language,
                    conversation.former_agent,
                    self.max_declines,
                    _COST,
                )
                if choice.agent_id is None:
                    continue
                action = _A.OFFER if self.offers else _A.ASSIGN
                made.extend(self._apply(conversation, action, to_agent=choice.agent_id))
                agent = self.agents[choice.agent_id]
                agent.last_assigned_at[queue_id] = self.now
                agent.routed += 1
                agent.routed_in[queue_id] += 1
        return made

    # --- checks -------------------------------------------------------------------------------

    def violations(self) -> list[str]:
        """Every broken guarantee, as sentences; empty when all hold."""
        problems: list[str] = []
        held_by: dict[str, list[str]] = {}
        for agent in self.agents.values():
            for conversation_id in agent.holding:
                held_by.setdefault(conversation_id, []).append(agent.user_id)
        for conversation in self.conversations.values():
            assigned = conversation.state in ASSIGNED_STATES
            if assigned != (conversation.assignee is not None):
                problems.append(
                    f"{conversation.id} is {conversation.state} with holder {conversation.assignee}"
                )
            holders = sorted(held_by.get(conversation.id, []))
            expected = [] if conversation.assignee is None else [conversation.assignee]
            if holders != expected:
                problems.append(f"{conversation.id} is held by {holders}, expected {expected}")
        for handover in self.handovers:
            who = f"{handover.conversation_id} given to {handover.user_id} at {handover.at}"
            if not handover.online:
                problems.append(f"{who} while offline")
            if not handover.member:
                problems.append(f"{who} outside its queue")
            if handover.takes_capacity and handover.used_before + _COST > handover.capacity:
                problems.append(
                    f"{who} over capacity ({handover.used_before} of {handover.capacity} in use)"
                )
            if handover.action in (_A.OFFER, _A.ASSIGN, _A.TRANSFER_TO_AGENT):
                if handover.declines >= self.max_declines:
                    problems.append(f"{who} after {handover.declines} declines")
        for agent in self.agents.values():
            used = self.used(agent.user_id)
            if used > agent.capacity and not agent.over_after_cut:
                problems.append(f"{agent.user_id} holds {used} units, capacity {agent.capacity}")
        return problems

    # --- internals ----------------------------------------------------------------------------

    def _open(
        self, customer: str, facts: ReplyFacts | None, former: str | None
    ) -> ModelConversation:
        decision = route(self.rules, facts or ReplyFacts("channel", "sms"), self.queues[0])
        conversation = ModelConversation(
            id=f"c{len(self.conversations) + 1}",
            customer=customer,
            queue_id=decision.queue_id or self.queues[0],
            queued_at=self.now,
            former_agent=former,
            required_skills=decision.required_skills,
            required_language=decision.required_language,
            priority=decision.priority,
        )
        self.conversations[conversation.id] = conversation
        self._latest[customer] = conversation.id
        return conversation

    def _uses(self, state: ConversationState, hold_ends_at: datetime | None) -> bool:
        return uses_capacity(state, wrap_up_holds=wrap_up_holds_capacity(hold_ends_at, self.now))

    def _assignee_can_take(self, conversation: ModelConversation) -> bool:
        if conversation.assignee is None:
            return False
        agent = self.agents[conversation.assignee]
        if not agent.online or conversation.queue_id not in agent.queues:
            return False
        if self._uses(conversation.state, conversation.hold_ends_at):
            return True
        return agent.capacity - self.used(agent.user_id) >= _COST

    def _apply(
        self,
        conversation: ModelConversation,
        action: ConversationAction,
        *,
        to_agent: str | None = None,
    ) -> list[Handover]:
        """Move ``conversation`` by ``action`` (to ``to_agent``, else keeping its holder); record
        a handover and any capacity release."""
        old_state = conversation.state
        new_state = transition(old_state, action)
        old_holder = conversation.assignee
        old_uses = self._uses(old_state, conversation.hold_ends_at)
        hold_ends_at = None
        if new_state is _S.WRAP_UP:
            hold_ends_at = conversation.hold_ends_at
            if old_state is not _S.WRAP_UP:
                hold_ends_at = wrap_up_hold_ends(old_state, self.now, self.wrap_up_hold)
        new_uses = self._uses(new_state, hold_ends_at)
        new_holder = None
        if new_state in ASSIGNED_STATES:
            new_holder = old_holder if to_agent is None else to_agent
        made: list[Handover] = []
        takes_capacity = new_uses and not (old_uses and old_holder == new_holder)
        if new_holder is not None and (new_holder != old_holder or takes_capacity):
            agent = self.agents[new_holder]
            already = _COST if old_uses and old_holder == new_holder else 0
            made.append(
                Handover(
                    at=self.now,
                    conversation_id=conversation.id,
                    user_id=new_holder,
                    action=action,
                    online=agent.online,
                    member=conversation.queue_id in agent.queues,
                    declines=conversation.declines[new_holder],
                    used_before=self.used(new_holder) - already,
                    capacity=agent.capacity,
                    takes_capacity=takes_capacity,
                )
            )
        if old_holder is not None and old_uses and (not new_uses or new_holder != old_holder):
            self._released(old_holder, self.now)
        if old_holder is not None and new_holder != old_holder:
            self.agents[old_holder].holding.discard(conversation.id)
            if new_holder is None:
                conversation.former_agent = old_holder
        if new_holder is not None:
            self.agents[new_holder].holding.add(conversation.id)
        conversation.state = new_state
        conversation.assignee = new_holder
        conversation.hold_ends_at = hold_ends_at
        conversation.offered_at = self.now if new_state is _S.OFFERED else None
        if new_state is not _S.SNOOZED:
            conversation.snoozed_until = None
        if new_state is _S.OPEN and old_state is not _S.OPEN:
            conversation.queued_at = self.now
        self.handovers.extend(made)
        return made

    def _released(self, user_id: str, at: datetime) -> None:
        agent = self.agents[user_id]
        if agent.last_release_at is None or agent.last_release_at < at:
            agent.last_release_at = at

    def _settle(self) -> None:
        if self.auto_assign:
            self.assign_waiting()
        for agent in self.agents.values():
            agent.over_after_cut = agent.over_after_cut and self.used(agent.user_id) > (
                agent.capacity
            )
