"""Message statuses and the transitions allowed between them.

::

    queued ──► sending ──► sent ──► delivered
      │  ▲        │  │       │  └──► undelivered ──► delivered
      │  └────────┘  │       └─────► failed
      │   (retry)    ├──► delivered / undelivered   (report before the "sent" record)
      │              ├──► failed
      │              └──► skipped   (consent withdrawn, found before the provider call)
      └──► canceled / failed / skipped

No transition leads to ``rejected``: a message can only be created in that status.
Terminal statuses never change, with one exception: ``undelivered → delivered``.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "TERMINAL_STATUSES",
    "MessageStatus",
    "can_transition",
    "status_rank",
]


class MessageStatus(StrEnum):
    """Lifecycle status of one outbound message."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    SKIPPED = "skipped"
    REJECTED = "rejected"
    CANCELED = "canceled"


TERMINAL_STATUSES: frozenset[MessageStatus] = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.FAILED,
        MessageStatus.SKIPPED,
        MessageStatus.REJECTED,
        MessageStatus.CANCELED,
    }
)
"""Statuses a message normally never leaves."""

_TRANSITIONS: dict[MessageStatus, frozenset[MessageStatus]] = {
    MessageStatus.QUEUED: frozenset(
        {
            MessageStatus.SENDING,
            MessageStatus.CANCELED,
            MessageStatus.FAILED,
            MessageStatus.SKIPPED,
        }
    ),
    # Not CANCELED: once the provider call has started, the message may already be out.
    # DELIVERED/UNDELIVERED: a provider's delivery report can arrive before we record "sent".
    # QUEUED: a transient provider error puts the message back for a retry.
    # SKIPPED: the worker found consent withdrawn just before calling the provider.
    MessageStatus.SENDING: frozenset(
        {
            MessageStatus.SENT,
            MessageStatus.QUEUED,
            MessageStatus.FAILED,
            MessageStatus.SKIPPED,
            MessageStatus.DELIVERED,
            MessageStatus.UNDELIVERED,
        }
    ),
    MessageStatus.SENT: frozenset(
        {MessageStatus.DELIVERED, MessageStatus.UNDELIVERED, MessageStatus.FAILED}
    ),
    # Carriers sometimes report an intermediate "undelivered" (e.g. handset off) and later a
    # final "delivered" once the SMSC's retry succeeds; the later report is the truth.
    MessageStatus.UNDELIVERED: frozenset({MessageStatus.DELIVERED}),
}

_RANKS: dict[MessageStatus, int] = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.SENT: 2,
}
_TERMINAL_RANK = 3


def can_transition(current: MessageStatus, new: MessageStatus) -> bool:
    """Whether a message in ``current`` may move to ``new``.

    A same-status update is a no-op and returns ``False``. Statuses never move backwards
    (a late "sent" does not overwrite "delivered"), except ``sending → queued`` for a retry.
    """
    return new in _TRANSITIONS.get(current, frozenset())


def status_rank(status: MessageStatus) -> int:
    """Order of ``status`` in the lifecycle: queued 0, sending 1, sent 2, terminal 3."""
    return _RANKS.get(status, _TERMINAL_RANK)
