"""Conversation states: where a conversation with a customer stands, and what may happen next.

::

    open ──offer──► offered ──accept──► active ──agent_replied──► waiting
    open ──assign, transfer_to_agent──► active
    offered ──decline──► open
    waiting, snoozed, wrap_up ──customer_replied──► active        snoozed ──wake──► active
    active, waiting ──snooze──► snoozed       active, waiting ──wrap_up──► wrap_up
    any assigned state ──transfer_to_queue, requeue──► open   (wrap_up: requeue only)
    every state but closed ──close──► closed ──reopen──► open

:data:`TRANSITIONS` is the whole table.

- ``open``: waiting in a queue for an agent; holds no capacity.
- ``offered``: offered to one agent who must accept before a deadline
  (:data:`DEFAULT_OFFER_TIMEOUT`); a missed deadline counts as a decline. The offer holds the
  agent's capacity, so that accepting can never take them over it, and moving a conversation
  from ``open`` is the one compare-and-set that stops two processes from offering it twice.
- ``active``: an agent has it and it uses their capacity.
- ``waiting``: the agent answered and waits for the customer; no capacity. The customer's next
  message brings it back to ``active`` with the same agent, if that agent can take it (online,
  room); else it goes back to the queue (``requeue``), where affinity still prefers that agent.
- ``snoozed``: set aside by its agent until a time; no capacity. It wakes at that time or on a
  customer message, like ``waiting``. Snoozed conversations are not closed for being idle.
- ``wrap_up``: the agent finishes their notes. Coming from ``active``, the capacity it held is
  kept for a configured time (0 s to :data:`MAX_WRAP_UP_HOLD`), then released while the state
  stays until closed; coming from ``waiting`` it holds none (:func:`wrap_up_hold_ends`).
- ``closed``: done. A customer who writes again gets the conversation reopened, or a new one
  (the organisation's choice, see :func:`action_on_customer_message`).

Which agent holds a conversation is not part of the state: the service records it, along with
who made each change, when and why. :func:`transition` only says whether an action is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from outbound.domain.timezones import as_utc
from outbound.errors import InvalidTransitionError
from outbound.texts import N_

__all__ = [
    "ASSIGNED_STATES",
    "DEFAULT_ANSWER_TIMEOUT",
    "DEFAULT_IDLE_OPEN_ACTIVE",
    "DEFAULT_IDLE_WAITING",
    "DEFAULT_IDLE_WRAP_UP",
    "DEFAULT_OFFER_TIMEOUT",
    "MAX_WRAP_UP_HOLD",
    "TRANSITIONS",
    "ConversationAction",
    "ConversationState",
    "action_on_customer_message",
    "allowed_actions",
    "answer_overdue",
    "due_for_auto_close",
    "offer_expired",
    "transition",
    "uses_capacity",
    "validate_wrap_up_hold",
    "wrap_up_hold_ends",
    "wrap_up_holds_capacity",
]


class ConversationState(StrEnum):
    """Where a conversation stands (see the module docstring)."""

    OPEN = "open"
    OFFERED = "offered"
    ACTIVE = "active"
    WAITING = "waiting"
    SNOOZED = "snoozed"
    WRAP_UP = "wrap_up"
    CLOSED = "closed"


class ConversationAction(StrEnum):
    """What can happen to a conversation; each names a row of :data:`TRANSITIONS`."""

    ASSIGN = "assign"
    """The router (or an agent picking from a manual queue) gives it to an agent directly."""
    OFFER = "offer"
    """The router offers it to an agent, who must accept."""
    ACCEPT = "accept"
    DECLINE = "decline"
    """The agent declined the offer, or let its deadline pass."""
    TRANSFER_TO_AGENT = "transfer_to_agent"
    TRANSFER_TO_QUEUE = "transfer_to_queue"
    REQUEUE = "requeue"
    """Back to its queue: an offer withdrawn, an unanswered assignment, an agent who left."""
    AGENT_REPLIED = "agent_replied"
    CUSTOMER_REPLIED = "customer_replied"
    SNOOZE = "snooze"
    WAKE = "wake"
    WRAP_UP = "wrap_up"
    CLOSE = "close"
    REOPEN = "reopen"
    AUTO_CLOSE = "auto_close"
    """Closed by the sweep for being idle (:func:`due_for_auto_close`)."""


_S = ConversationState
_A = ConversationAction

TRANSITIONS: Final[Mapping[ConversationState, Mapping[ConversationAction, ConversationState]]] = (
    MappingProxyType(
        {
            _S.OPEN: MappingProxyType(
                {
                    _A.ASSIGN: _S.ACTIVE,
                    _A.OFFER: _S.OFFERED,
                    _A.TRANSFER_TO_AGENT: _S.ACTIVE,
                    _A.TRANSFER_TO_QUEUE: _S.OPEN,
                    _A.CUSTOMER_REPLIED: _S.OPEN,
                    _A.CLOSE: _S.CLOSED,
                    _A.AUTO_CLOSE: _S.CLOSED,
                }
            ),
            _S.OFFERED: MappingProxyType(
                {
                    _A.ACCEPT: _S.ACTIVE,
                    _A.DECLINE: _S.OPEN,
                    _A.REQUEUE: _S.OPEN,
                    _A.TRANSFER_TO_QUEUE: _S.OPEN,
                    _A.CUSTOMER_REPLIED: _S.OFFERED,
                    _A.CLOSE: _S.CLOSED,
                }
            ),
            _S.ACTIVE: MappingProxyType(
                {
                    _A.TRANSFER_TO_AGENT: _S.ACTIVE,
                    _A.TRANSFER_TO_QUEUE: _S.OPEN,
                    _A.REQUEUE: _S.OPEN,
                    _A.AGENT_REPLIED: _S.WAITING,
                    _A.CUSTOMER_REPLIED: _S.ACTIVE,
                    _A.SNOOZE: _S.SNOOZED,
                    _A.WRAP_UP: _S.WRAP_UP,
                    _A.CLOSE: _S.CLOSED,
                    _A.AUTO_CLOSE: _S.CLOSED,
                }
            ),
            _S.WAITING: MappingProxyType(
                {
                    # The new agent waits for the customer as the old one did.
                    _A.TRANSFER_TO_AGENT: _S.WAITING,
                    _A.TRANSFER_TO_QUEUE: _S.OPEN,
                    _A.REQUEUE: _S.OPEN,
                    _A.AGENT_REPLIED: _S.WAITING,
                    _A.CUSTOMER_REPLIED: _S.ACTIVE,
                    _A.SNOOZE: _S.SNOOZED,
                    _A.WRAP_UP: _S.WRAP_UP,
                    _A.CLOSE: _S.CLOSED,
                    _A.AUTO_CLOSE: _S.CLOSED,
                }
            ),
            _S.SNOOZED: MappingProxyType(
                {
                    _A.WAKE: _S.ACTIVE,
                    _A.CUSTOMER_REPLIED: _S.ACTIVE,
                    _A.REQUEUE: _S.OPEN,
                    _A.TRANSFER_TO_QUEUE: _S.OPEN,
                    _A.CLOSE: _S.CLOSED,
                }
            ),
            _S.WRAP_UP: MappingProxyType(
                {
                    # A last word to the customer does not end the wrap-up.
                    _A.AGENT_REPLIED: _S.WRAP_UP,
                    _A.CUSTOMER_REPLIED: _S.ACTIVE,
                    _A.REQUEUE: _S.OPEN,
                    _A.CLOSE: _S.CLOSED,
                    _A.AUTO_CLOSE: _S.CLOSED,
                }
            ),
            _S.CLOSED: MappingProxyType({_A.REOPEN: _S.OPEN}),
        }
    )
)
"""For each state, the actions allowed in it and the state each leads to."""

ASSIGNED_STATES: Final = frozenset({_S.OFFERED, _S.ACTIVE, _S.WAITING, _S.SNOOZED, _S.WRAP_UP})
"""States in which one agent holds the conversation (``offered``: the agent it is offered to)."""

DEFAULT_OFFER_TIMEOUT: Final = timedelta(seconds=120)
"""How long an agent has to accept an offer."""
DEFAULT_ANSWER_TIMEOUT: Final = timedelta(minutes=10)
"""How long an assigned customer waits for a first answer before the conversation is requeued."""
MAX_WRAP_UP_HOLD: Final = timedelta(minutes=60)
"""The longest that wrap-up may hold an agent's capacity."""
DEFAULT_IDLE_OPEN_ACTIVE: Final = timedelta(days=30)
DEFAULT_IDLE_WRAP_UP: Final = timedelta(days=1)
DEFAULT_IDLE_WAITING: Final = timedelta(days=30)


def transition(
    state: ConversationState | str, action: ConversationAction | str
) -> ConversationState:
    """The state that ``action`` leads to from ``state``.

    :class:`~outbound.errors.InvalidTransitionError` when the action is not allowed there;
    :class:`ValueError` for a name that is no state or action.
    """
    current, done = ConversationState(state), ConversationAction(action)
    try:
        return TRANSITIONS[current][done]
    except KeyError:
        raise InvalidTransitionError(current, done, TRANSITIONS[current]) from None


def allowed_actions(state: ConversationState | str) -> frozenset[ConversationAction]:
    """The actions allowed in ``state`` (what a console offers as buttons)."""
    return frozenset(TRANSITIONS[ConversationState(state)])


def uses_capacity(state: ConversationState | str, wrap_up_holds: bool) -> bool:
    """Whether a conversation in ``state`` counts against its agent's capacity.

    ``offered`` and ``active`` do; ``wrap_up`` does while ``wrap_up_holds``
    (:func:`wrap_up_holds_capacity`); ``open``, ``waiting``, ``snoozed`` and ``closed`` do not.
    """
    current = ConversationState(state)
    if current is _S.WRAP_UP:
        return wrap_up_holds
    return current in (_S.OFFERED, _S.ACTIVE)


def validate_wrap_up_hold(hold: timedelta) -> timedelta:
    """``hold`` if it is between 0 s and 60 minutes, else :class:`ValueError`."""
    if not timedelta(0) <= hold <= MAX_WRAP_UP_HOLD:
        raise ValueError(N_("the wrap-up capacity hold must be between 0 seconds and 60 minutes"))
    return hold


def wrap_up_hold_ends(
    previous: ConversationState | str, started_at: datetime, hold: timedelta
) -> datetime:
    """When a wrap-up entered from ``previous`` at ``started_at`` stops holding capacity.

    From a state that used capacity (``active``), the conversation keeps it for ``hold``. From
    one that did not (``waiting``), it takes none: taking capacity back could put the agent over
    it, and no assignment would have been allowed to. The service stores the result with the
    conversation, so that a later change of the hold setting does not move it.
    """
    start = as_utc(started_at)
    return start + hold if uses_capacity(previous, wrap_up_holds=False) else start


def wrap_up_holds_capacity(hold_ends_at: datetime | None, now: datetime) -> bool:
    """Whether a wrap-up still holds capacity at ``now`` (see :func:`wrap_up_hold_ends`)."""
    return hold_ends_at is not None and as_utc(now) < as_utc(hold_ends_at)


def due_for_auto_close(
    state: ConversationState | str,
    last_activity: datetime,
    now: datetime,
    *,
    idle_open_active: timedelta = DEFAULT_IDLE_OPEN_ACTIVE,
    idle_wrap_up: timedelta = DEFAULT_IDLE_WRAP_UP,
    idle_waiting: timedelta = DEFAULT_IDLE_WAITING,
) -> bool:
    """Whether the sweep should close a conversation idle since ``last_activity``.

    ``open`` and ``active`` close after ``idle_open_active``, ``waiting`` after ``idle_waiting``,
    ``wrap_up`` after ``idle_wrap_up``. ``offered`` (its offer expires long before),
    ``snoozed`` (it wakes at its time) and ``closed`` never do.
    """
    idle_limits = {
        _S.OPEN: idle_open_active,
        _S.ACTIVE: idle_open_active,
        _S.WAITING: idle_waiting,
        _S.WRAP_UP: idle_wrap_up,
    }
    limit = idle_limits.get(ConversationState(state))
    return limit is not None and as_utc(now) - as_utc(last_activity) >= limit


def offer_expired(
    offered_at: datetime, now: datetime, timeout: timedelta = DEFAULT_OFFER_TIMEOUT
) -> bool:
    """Whether an offer made at ``offered_at`` has passed its deadline (then: ``decline``)."""
    return as_utc(now) >= as_utc(offered_at) + timeout


def answer_overdue(
    state: ConversationState | str,
    unanswered_since: datetime | None,
    now: datetime,
    timeout: timedelta = DEFAULT_ANSWER_TIMEOUT,
) -> bool:
    """Whether an ``active`` conversation's customer has waited too long for its agent.

    ``unanswered_since`` is when the agent got the conversation or the customer's first message
    since the agent's last answer, whichever is later; None once answered. Then: ``requeue``, so
    that the conversation is offered again.
    """
    if ConversationState(state) is not _S.ACTIVE or unanswered_since is None:
        return False
    return as_utc(now) >= as_utc(unanswered_since) + timeout


def action_on_customer_message(
    state: ConversationState | str, *, assignee_can_take: bool, reopen_closed: bool
) -> ConversationAction | None:
    """What a new message from the customer does to their latest conversation.

    ``assignee_can_take``: the conversation's agent is online, still in its queue and has room for
    it (counting what it already holds, so a wrap-up that holds capacity always has room).
    ``waiting``, ``snoozed`` and ``wrap_up`` go back to that agent (``customer_replied``) if they
    can take it, else back to the queue (``requeue``). ``closed`` is reopened when
    ``reopen_closed``, else None: the service opens a new conversation. Other states take the
    message as they are (``customer_replied``, which leaves the state unchanged).
    """
    current = ConversationState(state)
    if current is _S.CLOSED:
        return _A.REOPEN if reopen_closed else None
    if current in (_S.WAITING, _S.SNOOZED, _S.WRAP_UP) and not assignee_can_take:
        return _A.REQUEUE
    return _A.CUSTOMER_REPLIED
