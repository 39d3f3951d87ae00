"""Conversations: the thread that opens when a customer replies (or when a message is sent).

Where a conversation stands, and what may happen to it, is
:mod:`~outbound.domain.conversation_states`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from outbound.domain.conversation_states import ConversationState

__all__ = ["CONVERSATION_STATUSES", "LIVE_STATUSES", "ConversationMode"]

CONVERSATION_STATUSES: Final = tuple(
    state.value
    for state in (
        ConversationState.OPEN,
        ConversationState.ACTIVE,
        ConversationState.WAITING,
        ConversationState.WRAP_UP,
        ConversationState.CLOSED,
    )
)
"""The statuses a conversation is stored with: ``offered`` and ``snoozed`` are ``open`` and
``waiting`` conversations with an offer or a snooze time (``services.lifecycle.state_of``)."""

LIVE_STATUSES: Final = tuple(s for s in CONVERSATION_STATUSES if s != ConversationState.CLOSED)
"""The stored statuses of conversations not yet closed."""


class ConversationMode(StrEnum):
    """When a configuration's messages open a conversation: on the customer's reply, or on send."""

    ON_RESPONSE = "on_response"
    ON_SEND = "on_send"
