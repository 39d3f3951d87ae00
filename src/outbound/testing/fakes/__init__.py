"""Faithful local fakes of the SMS/WhatsApp providers: Twilio, TeleSign and Azure ACS.

Each fake is an aiohttp server on ``127.0.0.1`` that checks authentication and signatures
itself, validates requests, answers with the provider's real response shapes and status codes,
and sends signed callbacks (status reports, inbound messages, Event Grid events) to our webhooks.
They stand in for the real services in tests, the demo and benchmarks::

    async with FakeTwilio(account_sid, auth_token) as twilio:
        base_url = twilio.base_url  # http://127.0.0.1:PORT
        twilio.fail_next(status=429, retry_after=1)
        ...

Run one from a shell with ``python -m outbound.testing.fakes twilio|telesign|acs``.
"""

from __future__ import annotations

from outbound.testing.fakes.acs import (
    DEFAULT_ACCESS_KEY,
    AcsMessage,
    FakeACS,
    acs_content_hash,
    acs_signature,
    acs_string_to_sign,
)
from outbound.testing.fakes.base import (
    CALLBACK_TALLY_PATH,
    CallbackResult,
    CapturedRequest,
    FakeProviderServer,
    ServerOptions,
    WebhookReceiver,
    sms_segments,
)
from outbound.testing.fakes.telesign import (
    DEFAULT_API_KEY,
    DEFAULT_CUSTOMER_ID,
    FakeTeleSign,
    TeleSignMessage,
    telesign_callback_signature,
    telesign_request_signature,
    telesign_string_to_sign,
)
from outbound.testing.fakes.twilio import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    FakeTwilio,
    TwilioMessage,
    twilio_signature,
)

__all__ = [
    "CALLBACK_TALLY_PATH",
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_API_KEY",
    "DEFAULT_AUTH_TOKEN",
    "DEFAULT_CUSTOMER_ID",
    "AcsMessage",
    "CallbackResult",
    "CapturedRequest",
    "FakeACS",
    "FakeProviderServer",
    "FakeTeleSign",
    "FakeTwilio",
    "ServerOptions",
    "TeleSignMessage",
    "TwilioMessage",
    "WebhookReceiver",
    "acs_content_hash",
    "acs_signature",
    "acs_string_to_sign",
    "sms_segments",
    "telesign_callback_signature",
    "telesign_request_signature",
    "telesign_string_to_sign",
    "twilio_signature",
]
