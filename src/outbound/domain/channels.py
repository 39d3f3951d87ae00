"""Channels: a sender on a provider, for one type of message.

:class:`ProviderName` names every provider a channel may use; the database keeps a channel's
provider as one of :data:`PROVIDER_NAMES` (a CHECK built from them), and each name has an
adapter in ``adapters/providers``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["PROVIDER_NAMES", "ChannelType", "ProviderName"]


class ChannelType(StrEnum):
    """The kind of messages a channel sends, and a template or configuration is for."""

    SMS = "sms"
    WHATSAPP = "whatsapp"


class ProviderName(StrEnum):
    """The provider a channel sends through."""

    SANDBOX = "sandbox"
    TWILIO = "twilio"
    TELESIGN = "telesign"
    ACS = "acs"


PROVIDER_NAMES: Final = tuple(name.value for name in ProviderName)
"""Every provider name, in the order the API lists them."""
