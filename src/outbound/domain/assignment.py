"""Assignment: which agent of a queue gets a waiting conversation, and why each other did not.

The service describes each agent of the organisation as an :class:`AgentState` as seen from one
queue and one conversation, and :func:`choose_agent` answers with a :class:`Choice`: the agent,
or None, and for every candidate the :class:`ChoiceReason` they were or were not chosen.

An agent can take a conversation when, checked in this order: they are a member of its queue,
online (:func:`outbound.domain.presence.is_online`), have declined it fewer than
``max_declines`` times, have every required skill (labels compared without regard to case), speak
the required language (by language: an agent who speaks ``fr`` or ``fr-CA`` serves ``fr-FR``)
and have ``cost`` units of free capacity. Among those who can, the queue's
:class:`AssignmentMethod` ranks:

- ``highest_capacity`` (the default): most free units; ties go to whoever was assigned least
  recently, then to the smaller user id, so that the choice never depends on input order.
- ``round_robin``: whoever was assigned least recently in this queue, then the smaller id.
- ``least_active``: whoever released capacity longest ago, then as ``round_robin``.
- ``manual``: nobody is chosen; agents pick conversations from the queue themselves.

"Assigned least recently" compares ``last_assigned_at``, then ``assignments_total``: a pass that
reads the clock once gives every assignment it makes the same time, and without the count the
smallest id would win every such tie. "Never" (never assigned, never released) ranks before any
time. Affinity jumps the ranking, never the rules: the customer's former agent is chosen when
they can take the conversation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from outbound.domain.timezones import as_utc
from outbound.texts import N_

__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_MAX_DECLINES",
    "MAX_DECLINES_RANGE",
    "AgentState",
    "AssignmentMethod",
    "Choice",
    "ChoiceReason",
    "Consideration",
    "choose_agent",
    "ineligibility",
    "validate_max_declines",
]

DEFAULT_CAPACITY: Final = 3
"""Units an agent can hold at once unless set otherwise."""
DEFAULT_MAX_DECLINES: Final = 3
"""Declines after which a conversation is no longer offered to that agent."""
MAX_DECLINES_RANGE: Final = range(1, 6)
"""Allowed settings of ``max_declines``: 1 to 5."""


class AssignmentMethod(StrEnum):
    """How a queue ranks the agents who can take a conversation."""

    HIGHEST_CAPACITY = "highest_capacity"
    ROUND_ROBIN = "round_robin"
    LEAST_ACTIVE = "least_active"
    MANUAL = "manual"


class ChoiceReason(StrEnum):
    """Why a candidate was or was not chosen."""

    CHOSEN = "chosen"
    AFFINITY = "affinity"
    """Chosen: the customer's former agent."""
    NOT_MEMBER = "not_member"
    OFFLINE = "offline"
    DECLINED = "declined"
    MISSING_SKILL = "missing_skill"
    LANGUAGE = "language"
    AT_CAPACITY = "at_capacity"
    LOWER_FREE_CAPACITY = "lower_free_capacity"
    ASSIGNED_MORE_RECENTLY = "assigned_more_recently"
    RELEASED_MORE_RECENTLY = "released_more_recently"
    TIE_LOST = "tie_lost"
    """As good as the chosen agent on the method's measure; a tie-break decided."""
    AFFINITY_ELSEWHERE = "affinity_elsewhere"
    """Could have taken it, but the customer's former agent did."""
    MANUAL = "manual"
    """Could take it; the queue is manual, so agents pick."""


_INELIGIBLE: Final = frozenset(
    {
        ChoiceReason.NOT_MEMBER,
        ChoiceReason.OFFLINE,
        ChoiceReason.DECLINED,
        ChoiceReason.MISSING_SKILL,
        ChoiceReason.LANGUAGE,
        ChoiceReason.AT_CAPACITY,
    }
)


@dataclass(frozen=True)
class AgentState:
    """An agent as assignment sees them, for one queue and one conversation.

    ``online``: :func:`~outbound.domain.presence.is_online` now. ``member``: of the
    conversation's queue. ``used``: units held across all queues. ``last_assigned_at`` and
    ``assignments_total``: their last assignment in this queue, and how many they had there.
    ``declines``: how often they declined this conversation. ``last_capacity_release_at``: when a
    conversation last stopped using their capacity.
    """

    user_id: str
    online: bool
    member: bool
    capacity: int = DEFAULT_CAPACITY
    used: int = 0
    skills: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    last_assigned_at: datetime | None = None
    assignments_total: int = 0
    declines: int = 0
    last_capacity_release_at: datetime | None = None

    @property
    def free(self) -> int:
        """Units left; negative when a supervisor forced them over capacity."""
        return self.capacity - self.used


@dataclass(frozen=True)
class Consideration:
    """One candidate's outcome: ``reason`` for machines, ``detail`` for people."""

    user_id: str
    reason: ChoiceReason
    detail: str

    @property
    def chosen(self) -> bool:
        return self.reason in (ChoiceReason.CHOSEN, ChoiceReason.AFFINITY)

    @property
    def eligible(self) -> bool:
        """Whether the candidate could have taken the conversation."""
        return self.reason not in _INELIGIBLE


@dataclass(frozen=True)
class Choice:
    """The chosen agent (None: nobody can, or the queue is manual) and every candidate's
    outcome: the eligible in rank order (chosen first), then the others by user id."""

    agent: AgentState | None
    considered: tuple[Consideration, ...]

    @property
    def agent_id(self) -> str | None:
        return None if self.agent is None else self.agent.user_id

    def reason_for(self, user_id: str) -> Consideration:
        """The outcome for one candidate (:class:`KeyError` if they were not one)."""
        for consideration in self.considered:
            if consideration.user_id == user_id:
                return consideration
        raise KeyError(user_id)


def validate_max_declines(value: int) -> int:
    """``value`` if it is an allowed ``max_declines`` (1 to 5), else :class:`ValueError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in MAX_DECLINES_RANGE:
        raise ValueError(N_("max_declines must be a whole number from 1 to 5"))
    return value


def ineligibility(
    agent: AgentState,
    *,
    required_skills: Iterable[str] = (),
    required_language: str | None = None,
    max_declines: int = DEFAULT_MAX_DECLINES,
    cost: int = 1,
) -> Consideration | None:
    """Why ``agent`` cannot take the conversation (the first rule they fail), or None if they can.

    Services use it on its own to check a transfer to a chosen agent, and the former agent of a
    customer who writes again.
    """
    if not agent.member:
        return _out(agent, ChoiceReason.NOT_MEMBER, N_("not a member of the queue"))
    if not agent.online:
        return _out(agent, ChoiceReason.OFFLINE, N_("not online and available"))
    if agent.declines >= max_declines:
        declined = N_("declined this conversation once")
        if agent.declines != 1:
            declined = N_("declined this conversation %(count)s times", count=agent.declines)
        return _out(agent, ChoiceReason.DECLINED, declined)
    has = {_label(skill) for skill in agent.skills}
    missing = sorted({_label(skill) for skill in required_skills} - has)
    if missing:
        lacking = N_("missing skill %(skills)s", skills=missing[0])
        if len(missing) > 1:
            lacking = N_("missing skills %(skills)s", skills=", ".join(missing))
        return _out(agent, ChoiceReason.MISSING_SKILL, lacking)
    if required_language and not _speaks(agent.languages, required_language):
        return _out(
            agent,
            ChoiceReason.LANGUAGE,
            N_("does not speak %(language)s", language=required_language),
        )
    if agent.free < cost:
        return _out(
            agent,
            ChoiceReason.AT_CAPACITY,
            N_(
                "at capacity (%(used)s of %(capacity)s units used, %(cost)s needed)",
                used=agent.used,
                capacity=agent.capacity,
                cost=cost,
            ),
        )
    return None


def choose_agent(
    method: AssignmentMethod | str,
    candidates: Sequence[AgentState],
    required_skills: Iterable[str] = (),
    required_language: str | None = None,
    affinity_agent_id: str | None = None,
    max_declines: int = DEFAULT_MAX_DECLINES,
    cost: int = 1,
) -> Choice:
    """Choose who gets a conversation among ``candidates`` (see the module docstring).

    ``affinity_agent_id``: the customer's former agent, chosen whenever they can take it (not in
    a manual queue). :class:`ValueError` for an unknown method, a ``cost`` below 1 or a user id
    listed twice.
    """
    ranking = AssignmentMethod(method)
    if cost < 1:
        raise ValueError(N_("a conversation costs at least 1 unit of capacity"))
    ids = [agent.user_id for agent in candidates]
    if len(set(ids)) != len(ids):
        raise ValueError(N_("each candidate must be listed once"))
    skills = tuple(required_skills)
    eligible: list[AgentState] = []
    refused: list[Consideration] = []
    for agent in candidates:
        refusal = ineligibility(
            agent,
            required_skills=skills,
            required_language=required_language,
            max_declines=max_declines,
            cost=cost,
        )
        if refusal is None:
            eligible.append(agent)
        else:
            refused.append(refusal)
    refused.sort(key=lambda consideration: consideration.user_id)
    ranked = sorted(eligible, key=lambda agent: _rank(ranking, agent))

    if ranking is AssignmentMethod.MANUAL:
        picks = [
            _out(a, ChoiceReason.MANUAL, N_("the queue is manual: agents pick")) for a in ranked
        ]
        return Choice(None, (*picks, *refused))
    if not ranked:
        return Choice(None, tuple(refused))
    former = next((a for a in ranked if a.user_id == affinity_agent_id), None)
    if former is not None:
        others = [
            _out(
                a,
                ChoiceReason.AFFINITY_ELSEWHERE,
                N_("the customer's former agent %(agent)s", agent=former.user_id),
            )
            for a in ranked
            if a is not former
        ]
        chosen = _out(former, ChoiceReason.AFFINITY, N_("the customer's former agent"))
        return Choice(former, (chosen, *others, *refused))
    winner, *losers = ranked
    chosen = _out(winner, ChoiceReason.CHOSEN, _chosen_detail(ranking, winner))
    return Choice(winner, (chosen, *(_lost(ranking, a, winner) for a in losers), *refused))


# --- ranking ----------------------------------------------------------------------------------

_Moment = tuple[int, datetime | None]


def _moment(value: datetime | None) -> _Moment:
    """A sort key on which "never" comes before any time."""
    return (0, None) if value is None else (1, as_utc(value))


def _rank(method: AssignmentMethod, agent: AgentState) -> tuple[object, ...]:
    assigned = (_moment(agent.last_assigned_at), agent.assignments_total)
    if method is AssignmentMethod.HIGHEST_CAPACITY:
        return (-agent.free, assigned, agent.user_id)
    if method is AssignmentMethod.LEAST_ACTIVE:
        return (_moment(agent.last_capacity_release_at), assigned, agent.user_id)
    return (assigned, agent.user_id)


def _chosen_detail(method: AssignmentMethod, agent: AgentState) -> str:
    if method is AssignmentMethod.HIGHEST_CAPACITY:
        return N_("most free capacity (%(free)s units)", free=agent.free)
    if method is AssignmentMethod.LEAST_ACTIVE:
        return N_(
            "released capacity longest ago (%(when)s)", when=_when(agent.last_capacity_release_at)
        )
    return N_("assigned least recently (%(when)s)", when=_when(agent.last_assigned_at))


def _lost(method: AssignmentMethod, agent: AgentState, winner: AgentState) -> Consideration:
    """Why an eligible ``agent`` ranked after ``winner``: the first measure that differs."""
    name = winner.user_id
    if method is AssignmentMethod.HIGHEST_CAPACITY and agent.free != winner.free:
        return _out(
            agent,
            ChoiceReason.LOWER_FREE_CAPACITY,
            N_(
                "%(free)s free units, fewer than %(agent)s's %(winner_free)s",
                free=agent.free,
                agent=name,
                winner_free=winner.free,
            ),
        )
    released = _moment(agent.last_capacity_release_at)
    if method is AssignmentMethod.LEAST_ACTIVE and released != _moment(
        winner.last_capacity_release_at
    ):
        return _out(
            agent,
            ChoiceReason.RELEASED_MORE_RECENTLY,
            N_(
                "released capacity %(when)s, after %(agent)s (%(agent_when)s)",
                when=_when(agent.last_capacity_release_at),
                agent=name,
                agent_when=_when(winner.last_capacity_release_at),
            ),
        )
    if _moment(agent.last_assigned_at) != _moment(winner.last_assigned_at):
        detail = N_(
            "last assigned %(when)s, after %(agent)s (%(agent_when)s)",
            when=_when(agent.last_assigned_at),
            agent=name,
            agent_when=_when(winner.last_assigned_at),
        )
        if method is AssignmentMethod.ROUND_ROBIN:
            return _out(agent, ChoiceReason.ASSIGNED_MORE_RECENTLY, detail)
        return _out(agent, ChoiceReason.TIE_LOST, _tie_lost(name, detail))
    if agent.assignments_total != winner.assignments_total:
        detail = N_(
            "last assigned at the same time as %(agent)s, with %(count)s "
            "assignments to %(agent_count)s",
            agent=name,
            count=agent.assignments_total,
            agent_count=winner.assignments_total,
        )
        return _out(agent, ChoiceReason.TIE_LOST, _tie_lost(name, detail))
    detail = N_("same standing, ordered by id")
    return _out(agent, ChoiceReason.TIE_LOST, _tie_lost(name, detail))


def _tie_lost(name: str, detail: str) -> str:
    return N_("tie lost to %(agent)s: %(detail)s", agent=name, detail=detail)


def _when(value: datetime | None) -> str:
    return N_("never") if value is None else as_utc(value).isoformat()


def _out(agent: AgentState, reason: ChoiceReason, detail: str) -> Consideration:
    return Consideration(agent.user_id, reason, detail)


def _label(skill: str) -> str:
    return skill.strip().casefold()


def _speaks(languages: Iterable[str], required: str) -> bool:
    wanted = _language(required)
    return any(_language(tag) == wanted for tag in languages)


def _language(tag: str) -> str:
    return tag.strip().replace("_", "-").split("-", 1)[0].lower()
