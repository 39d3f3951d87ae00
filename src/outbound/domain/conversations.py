"""Conversations: the thread that opens when a customer replies (or when a message is sent).

Where a conversation stands, and what may happen to it, is
:mod:`~outbound.domain.conversation_states`.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ConversationMode"]


class ConversationMode(StrEnum):
    """When a configuration's messages open a conversation: on the customer's reply, or on send."""

    ON_RESPONSE = "on_response"
    ON_SEND = "on_send"
