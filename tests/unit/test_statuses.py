"""Unit tests for outbound.domain.statuses."""

from __future__ import annotations

import itertools

import pytest

from outbound.domain.statuses import (
    TERMINAL_STATUSES,
    MessageStatus,
    can_transition,
    status_rank,
)

S = MessageStatus

ALLOWED: frozenset[tuple[MessageStatus, MessageStatus]] = frozenset(
    {
        (S.QUEUED, S.SENDING),
        (S.QUEUED, S.CANCELED),
        (S.QUEUED, S.FAILED),
        (S.QUEUED, S.SKIPPED),
        (S.SENDING, S.SENT),
        (S.SENDING, S.QUEUED),
        (S.SENDING, S.FAILED),
        (S.SENDING, S.DELIVERED),
        (S.SENDING, S.UNDELIVERED),
        (S.SENDING, S.SKIPPED),
        (S.SENT, S.DELIVERED),
        (S.SENT, S.UNDELIVERED),
        (S.SENT, S.FAILED),
        (S.UNDELIVERED, S.DELIVERED),
    }
)


def test_values_are_lower_case_names() -> None:
    assert [s.value for s in MessageStatus] == [
        "queued",
        "sending",
        "sent",
        "delivered",
        "undelivered",
        "failed",
        "skipped",
        "rejected",
        "canceled",
    ]
    for status in MessageStatus:
        assert status.value == status.name.lower()
        assert MessageStatus(status.value) is status


def test_terminal_statuses() -> None:
    assert (
        frozenset({S.DELIVERED, S.UNDELIVERED, S.FAILED, S.SKIPPED, S.REJECTED, S.CANCELED})
        == TERMINAL_STATUSES
    )


@pytest.mark.parametrize(("current", "new"), list(itertools.product(MessageStatus, MessageStatus)))
def test_transition_matrix(current: MessageStatus, new: MessageStatus) -> None:
    assert can_transition(current, new) is ((current, new) in ALLOWED)


@pytest.mark.parametrize("status", list(MessageStatus))
def test_same_status_is_not_a_transition(status: MessageStatus) -> None:
    assert can_transition(status, status) is False


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.DELIVERED, S.SENT),  # a late "sent" never overwrites "delivered"
        (S.DELIVERED, S.SENDING),
        (S.DELIVERED, S.UNDELIVERED),
        (S.DELIVERED, S.FAILED),
        (S.UNDELIVERED, S.SENT),
        (S.FAILED, S.SENT),
        (S.FAILED, S.QUEUED),
        (S.FAILED, S.DELIVERED),
        (S.SENT, S.SENDING),
        (S.SENT, S.QUEUED),
        (S.CANCELED, S.QUEUED),
        (S.SKIPPED, S.QUEUED),
        (S.REJECTED, S.QUEUED),
    ],
)
def test_backwards_refused(current: MessageStatus, new: MessageStatus) -> None:
    assert can_transition(current, new) is False


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.SENDING, S.CANCELED),  # the provider call may already have gone out
        (S.SENT, S.CANCELED),
        (S.QUEUED, S.SENT),  # must pass through sending
        (S.QUEUED, S.DELIVERED),
        (S.QUEUED, S.REJECTED),
        (S.SENT, S.SKIPPED),
    ],
)
def test_other_refusals(current: MessageStatus, new: MessageStatus) -> None:
    assert can_transition(current, new) is False


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES - {S.UNDELIVERED}))
def test_terminal_statuses_are_final(status: MessageStatus) -> None:
    assert not any(can_transition(status, new) for new in MessageStatus)


def test_undelivered_only_moves_to_delivered() -> None:
    assert [new for new in MessageStatus if can_transition(S.UNDELIVERED, new)] == [S.DELIVERED]


def test_nothing_moves_into_rejected() -> None:
    assert not any(can_transition(current, S.REJECTED) for current in MessageStatus)


def test_accepts_plain_strings() -> None:
    assert can_transition(S("queued"), S("sending"))


@pytest.mark.parametrize(
    ("status", "rank"),
    [
        (S.QUEUED, 0),
        (S.SENDING, 1),
        (S.SENT, 2),
        (S.DELIVERED, 3),
        (S.UNDELIVERED, 3),
        (S.FAILED, 3),
        (S.SKIPPED, 3),
        (S.REJECTED, 3),
        (S.CANCELED, 3),
    ],
)
def test_status_rank(status: MessageStatus, rank: int) -> None:
    assert status_rank(status) == rank


@pytest.mark.parametrize(("current", "new"), sorted(ALLOWED))
def test_allowed_transitions_never_go_down_in_rank_except_retry(
    current: MessageStatus, new: MessageStatus
) -> None:
    if (current, new) == (S.SENDING, S.QUEUED):
        assert status_rank(new) < status_rank(current)
    else:
        assert status_rank(new) >= status_rank(current)
