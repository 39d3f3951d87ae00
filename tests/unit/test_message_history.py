"""History rows: one shape for every writer, moves checked against the lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from outbound.adapters.queue.history import message_event
from outbound.adapters.queue.rollups import MOVED_FROM
from outbound.domain.statuses import MessageStatus

AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def test_a_row_has_every_column_of_the_history() -> None:
    row = message_event(
        "m1",
        "o1",
        MessageStatus.FAILED,
        source="worker",
        occurred_at=AT,
        moved_from=MessageStatus.SENDING,
        error_code="30003",
        error_message="unreachable",
        actor="user:u1",
    )
    assert row == {
        MOVED_FROM: MessageStatus.SENDING,  # for the rollups, not a column
        "message_id": "m1",
        "org_id": "o1",
        "status": "failed",
        "occurred_at": AT,
        "source": "worker",
        "error_code": "30003",
        "error_message": "unreachable",
        "actor": "user:u1",
    }


@pytest.mark.parametrize(
    ("moved_from", "status"),
    [
        (MessageStatus.QUEUED, MessageStatus.SENDING),
        (MessageStatus.SENDING, MessageStatus.QUEUED),
        (MessageStatus.SENDING, MessageStatus.DELIVERED),
        (MessageStatus.UNDELIVERED, MessageStatus.DELIVERED),
    ],
)
def test_allowed_moves_are_written(moved_from: MessageStatus, status: MessageStatus) -> None:
    row = message_event("m1", "o1", status, source="s", occurred_at=AT, moved_from=moved_from)
    assert row["status"] == status.value


@pytest.mark.parametrize(
    ("moved_from", "status"),
    [
        (MessageStatus.DELIVERED, MessageStatus.SENT),
        (MessageStatus.QUEUED, MessageStatus.REJECTED),
        (MessageStatus.SENDING, MessageStatus.SENDING),
    ],
)
def test_a_move_the_lifecycle_refuses_is_a_bug(
    moved_from: MessageStatus, status: MessageStatus
) -> None:
    with pytest.raises(ValueError, match="cannot move"):
        message_event("m1", "o1", status, source="s", occurred_at=AT, moved_from=moved_from)


@pytest.mark.parametrize("status", [MessageStatus.REJECTED, MessageStatus.SENDING])
def test_without_a_previous_status_nothing_is_checked(status: MessageStatus) -> None:
    # Created in that status (rejected), or claimed again after its lease expired (sending).
    row = message_event("m1", "o1", status, source="api", occurred_at=AT)
    assert (row["status"], row["error_code"], row["error_message"]) == (status.value, None, None)
