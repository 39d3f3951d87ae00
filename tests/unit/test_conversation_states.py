"""Unit tests for outbound.domain.conversation_states: the transition table and its policies."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from outbound.domain.conversation_states import (
    ASSIGNED_STATES,
    DEFAULT_ANSWER_TIMEOUT,
    DEFAULT_OFFER_TIMEOUT,
    MAX_WRAP_UP_HOLD,
    TRANSITIONS,
    ConversationAction,
    ConversationState,
    action_on_customer_message,
    allowed_actions,
    answer_overdue,
    due_for_auto_close,
    offer_expired,
    transition,
    uses_capacity,
    validate_wrap_up_hold,
    wrap_up_hold_ends,
    wrap_up_holds_capacity,
)
from outbound.errors import DomainError, InvalidTransitionError

S = ConversationState
A = ConversationAction
NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)

# The whole table, written out once more by hand: a change to the module must change this too.
EXPECTED: dict[tuple[S, A], S] = {
    (S.OPEN, A.ASSIGN): S.ACTIVE,
    (S.OPEN, A.OFFER): S.OFFERED,
    (S.OPEN, A.TRANSFER_TO_AGENT): S.ACTIVE,
    (S.OPEN, A.TRANSFER_TO_QUEUE): S.OPEN,
    (S.OPEN, A.CUSTOMER_REPLIED): S.OPEN,
    (S.OPEN, A.CLOSE): S.CLOSED,
    (S.OPEN, A.AUTO_CLOSE): S.CLOSED,
    (S.OFFERED, A.ACCEPT): S.ACTIVE,
    (S.OFFERED, A.DECLINE): S.OPEN,
    (S.OFFERED, A.REQUEUE): S.OPEN,
    (S.OFFERED, A.TRANSFER_TO_QUEUE): S.OPEN,
    (S.OFFERED, A.CUSTOMER_REPLIED): S.OFFERED,
    (S.OFFERED, A.CLOSE): S.CLOSED,
    (S.ACTIVE, A.TRANSFER_TO_AGENT): S.ACTIVE,
    (S.ACTIVE, A.TRANSFER_TO_QUEUE): S.OPEN,
    (S.ACTIVE, A.REQUEUE): S.OPEN,
    (S.ACTIVE, A.AGENT_REPLIED): S.WAITING,
    (S.ACTIVE, A.CUSTOMER_REPLIED): S.ACTIVE,
    (S.ACTIVE, A.SNOOZE): S.SNOOZED,
    (S.ACTIVE, A.WRAP_UP): S.WRAP_UP,
    (S.ACTIVE, A.CLOSE): S.CLOSED,
    (S.ACTIVE, A.AUTO_CLOSE): S.CLOSED,
    (S.WAITING, A.TRANSFER_TO_AGENT): S.WAITING,
    (S.WAITING, A.TRANSFER_TO_QUEUE): S.OPEN,
    (S.WAITING, A.REQUEUE): S.OPEN,
    (S.WAITING, A.AGENT_REPLIED): S.WAITING,
    (S.WAITING, A.CUSTOMER_REPLIED): S.ACTIVE,
    (S.WAITING, A.SNOOZE): S.SNOOZED,
    (S.WAITING, A.WRAP_UP): S.WRAP_UP,
    (S.WAITING, A.CLOSE): S.CLOSED,
    (S.WAITING, A.AUTO_CLOSE): S.CLOSED,
    (S.SNOOZED, A.WAKE): S.ACTIVE,
    (S.SNOOZED, A.CUSTOMER_REPLIED): S.ACTIVE,
    (S.SNOOZED, A.REQUEUE): S.OPEN,
    (S.SNOOZED, A.TRANSFER_TO_QUEUE): S.OPEN,
    (S.SNOOZED, A.CLOSE): S.CLOSED,
    (S.WRAP_UP, A.AGENT_REPLIED): S.WRAP_UP,
    (S.WRAP_UP, A.CUSTOMER_REPLIED): S.ACTIVE,
    (S.WRAP_UP, A.REQUEUE): S.OPEN,
    (S.WRAP_UP, A.CLOSE): S.CLOSED,
    (S.WRAP_UP, A.AUTO_CLOSE): S.CLOSED,
    (S.CLOSED, A.REOPEN): S.OPEN,
}


def test_names_are_the_documented_ones() -> None:
    assert [s.value for s in S] == [
        "open", "offered", "active", "waiting", "snoozed", "wrap_up", "closed",
    ]  # fmt: skip
    assert {a.value for a in A} == {
        "assign", "offer", "accept", "decline", "transfer_to_agent", "transfer_to_queue",
        "requeue", "agent_replied", "customer_replied", "snooze", "wake", "wrap_up", "close",
        "reopen", "auto_close",
    }  # fmt: skip


@pytest.mark.parametrize(("state", "action"), list(itertools.product(S, A)))
def test_every_pair_is_allowed_exactly_as_the_table_says(state: S, action: A) -> None:
    if (state, action) in EXPECTED:
        assert transition(state, action) is EXPECTED[(state, action)]
        assert action in allowed_actions(state)
    else:
        with pytest.raises(InvalidTransitionError) as caught:
            transition(state, action)
        assert caught.value.state is state
        assert caught.value.action is action
        assert action not in allowed_actions(state)


def test_table_has_no_row_beyond_the_expected_ones() -> None:
    rows = {(s, a): t for s, actions in TRANSITIONS.items() for a, t in actions.items()}
    assert rows == EXPECTED


def test_error_names_the_state_and_the_action_and_what_is_allowed() -> None:
    with pytest.raises(InvalidTransitionError, match="cannot accept a conversation that is active"):
        transition("active", "accept")
    with pytest.raises(DomainError, match=r"allowed when closed: reopen\)"):
        transition(S.CLOSED, A.CLOSE)


def test_strings_are_accepted_and_unknown_names_refused() -> None:
    assert transition("open", "offer") is S.OFFERED
    with pytest.raises(ValueError, match="'pending'"):
        transition("pending", "close")
    with pytest.raises(ValueError, match="'resolve'"):
        transition("open", "resolve")


def test_table_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        TRANSITIONS[S.OPEN][A.ACCEPT] = S.ACTIVE  # type: ignore[index]


def test_every_state_is_reachable_from_open_and_only_reopen_leaves_closed() -> None:
    reached, frontier = {S.OPEN}, [S.OPEN]
    while frontier:
        for target in TRANSITIONS[frontier.pop()].values():
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(S)
    assert allowed_actions(S.CLOSED) == {A.REOPEN}


def test_every_state_but_closed_can_be_closed() -> None:
    for state in S:
        assert (A.CLOSE in allowed_actions(state)) == (state is not S.CLOSED)


def test_states_that_lead_back_to_the_queue_free_the_agent() -> None:
    for state in ASSIGNED_STATES:
        assert transition(state, A.REQUEUE) is S.OPEN
    assert S.OPEN not in ASSIGNED_STATES and S.CLOSED not in ASSIGNED_STATES


@pytest.mark.parametrize(
    ("state", "holds", "expected"),
    [
        (S.OPEN, True, False),
        (S.OFFERED, False, True),
        (S.ACTIVE, False, True),
        (S.WAITING, True, False),
        (S.SNOOZED, True, False),
        (S.WRAP_UP, True, True),
        (S.WRAP_UP, False, False),
        (S.CLOSED, True, False),
    ],
)
def test_uses_capacity(state: S, holds: bool, expected: bool) -> None:
    assert uses_capacity(state, wrap_up_holds=holds) is expected
    assert uses_capacity(state.value, holds) is expected


def test_only_assigned_states_use_capacity() -> None:
    for state in S:
        if uses_capacity(state, wrap_up_holds=True):
            assert state in ASSIGNED_STATES


def test_wrap_up_hold_is_bounded() -> None:
    assert validate_wrap_up_hold(timedelta(0)) == timedelta(0)
    assert validate_wrap_up_hold(MAX_WRAP_UP_HOLD) == timedelta(minutes=60)
    for bad in (timedelta(seconds=-1), timedelta(minutes=60, seconds=1)):
        with pytest.raises(ValueError, match="between 0 seconds and 60 minutes"):
            validate_wrap_up_hold(bad)


def test_wrap_up_from_active_keeps_its_capacity_for_the_hold() -> None:
    started = NOW - timedelta(minutes=5)
    ends = wrap_up_hold_ends("active", started, timedelta(minutes=10))
    assert ends == NOW + timedelta(minutes=5)
    assert wrap_up_holds_capacity(ends, NOW)
    assert not wrap_up_holds_capacity(ends, ends)
    assert not wrap_up_holds_capacity(wrap_up_hold_ends(S.ACTIVE, NOW, timedelta(0)), NOW)
    assert not wrap_up_holds_capacity(None, NOW)


def test_wrap_up_from_waiting_takes_no_capacity_back() -> None:
    ends = wrap_up_hold_ends(S.WAITING, NOW, timedelta(minutes=10))
    assert ends == NOW
    assert not wrap_up_holds_capacity(ends, NOW)
    for state in S:
        if A.WRAP_UP in allowed_actions(state):
            holds = wrap_up_holds_capacity(wrap_up_hold_ends(state, NOW, MAX_WRAP_UP_HOLD), NOW)
            assert holds == uses_capacity(state, wrap_up_holds=False)


@pytest.mark.parametrize(
    ("state", "idle", "expected"),
    [
        (S.OPEN, timedelta(days=30), True),
        (S.OPEN, timedelta(days=29, hours=23), False),
        (S.ACTIVE, timedelta(days=30), True),
        (S.WAITING, timedelta(days=30), True),
        (S.WAITING, timedelta(days=29), False),
        (S.WRAP_UP, timedelta(days=1), True),
        (S.WRAP_UP, timedelta(hours=23), False),
        (S.OFFERED, timedelta(days=365), False),
        (S.SNOOZED, timedelta(days=365), False),
        (S.CLOSED, timedelta(days=365), False),
    ],
)
def test_auto_close_defaults(state: S, idle: timedelta, expected: bool) -> None:
    assert due_for_auto_close(state, NOW - idle, NOW) is expected
    if expected:
        assert A.AUTO_CLOSE in allowed_actions(state)


def test_auto_close_limits_are_configurable() -> None:
    last = NOW - timedelta(hours=2)
    assert due_for_auto_close("open", last, NOW, idle_open_active=timedelta(hours=1))
    assert not due_for_auto_close("open", last, NOW, idle_waiting=timedelta(hours=1))
    assert due_for_auto_close("waiting", last, NOW, idle_waiting=timedelta(hours=1))
    assert due_for_auto_close("wrap_up", last, NOW, idle_wrap_up=timedelta(hours=2))
    assert not due_for_auto_close("wrap_up", last, NOW, idle_wrap_up=timedelta(hours=3))


def test_offer_expires_at_its_deadline() -> None:
    assert DEFAULT_OFFER_TIMEOUT == timedelta(seconds=120)
    assert not offer_expired(NOW - timedelta(seconds=119), NOW)
    assert offer_expired(NOW - timedelta(seconds=120), NOW)
    assert offer_expired(NOW - timedelta(seconds=30), NOW, timeout=timedelta(seconds=30))


def test_answer_overdue_only_for_active_unanswered_conversations() -> None:
    assert DEFAULT_ANSWER_TIMEOUT == timedelta(minutes=10)
    since = NOW - timedelta(minutes=10)
    assert answer_overdue("active", since, NOW)
    assert not answer_overdue("active", since + timedelta(seconds=1), NOW)
    assert not answer_overdue("active", None, NOW)
    assert answer_overdue("active", NOW - timedelta(minutes=2), NOW, timedelta(minutes=2))
    for state in S:
        if state is not S.ACTIVE:
            assert not answer_overdue(state, since - timedelta(days=1), NOW)


@pytest.mark.parametrize("state", [S.WAITING, S.SNOOZED, S.WRAP_UP])
def test_customer_message_returns_to_the_agent_who_can_take_it(state: S) -> None:
    action = action_on_customer_message(state, assignee_can_take=True, reopen_closed=False)
    assert action is A.CUSTOMER_REPLIED
    assert transition(state, action) is S.ACTIVE
    fallback = action_on_customer_message(state, assignee_can_take=False, reopen_closed=False)
    assert fallback is A.REQUEUE
    assert transition(state, fallback) is S.OPEN


@pytest.mark.parametrize("state", [S.OPEN, S.OFFERED, S.ACTIVE])
def test_customer_message_leaves_other_live_states_as_they_are(state: S) -> None:
    for can_take in (True, False):
        action = action_on_customer_message(state, assignee_can_take=can_take, reopen_closed=True)
        assert action is A.CUSTOMER_REPLIED
        assert transition(state, action) is state


def test_customer_message_after_closing_reopens_or_starts_anew() -> None:
    assert action_on_customer_message("closed", assignee_can_take=True, reopen_closed=True) is (
        A.REOPEN
    )
    assert action_on_customer_message("closed", assignee_can_take=True, reopen_closed=False) is None
