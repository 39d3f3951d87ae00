"""Unit tests for outbound.adapters.providers.registry: each adapter declares its provider."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest

from outbound.adapters.providers import acs, sandbox, telesign, twilio
from outbound.adapters.providers.base import (
    InboundReport,
    ProviderDeps,
    StatusReport,
    WebhookAuth,
)
from outbound.adapters.providers.http import HttpClient
from outbound.adapters.providers.registry import ADAPTERS, adapter_for, build_providers
from outbound.config import Settings
from outbound.domain.channels import PROVIDER_NAMES
from outbound.domain.statuses import MessageStatus
from outbound.errors import WebhookSignatureError
from outbound.testing import FakeClock

URL = "https://sms.example.com/webhooks/ch_1"
API_KEY = base64.b64encode(b"k" * 32).decode()


class _Reporter:
    async def report(self, report: StatusReport) -> bool:
        return True


def test_every_adapter_module_is_found_under_its_providers_name() -> None:
    assert dict(ADAPTERS) == {
        "acs": acs.AcsProvider,
        "sandbox": sandbox.SandboxProvider,
        "telesign": telesign.TeleSignProvider,
        "twilio": twilio.TwilioProvider,
    }
    for module in (acs, sandbox, telesign, twilio):
        assert adapter_for(module.ADAPTER.name) is module.ADAPTER
    with pytest.raises(KeyError):
        adapter_for("nexmo")


@pytest.mark.parametrize(
    ("provider", "fields", "types", "max_body", "auth"),
    [
        ("twilio", ("account_sid", "auth_token"), {"sms", "whatsapp"}, 1600, "signature"),
        ("telesign", ("customer_id", "api_key"), {"sms"}, 1600, "signature"),
        ("acs", ("access_key",), {"sms"}, 2048, "token"),
        ("sandbox", (), {"sms", "whatsapp"}, 2000, "token"),
    ],
)
def test_each_provider_declares_its_facts(
    provider: str, fields: tuple[str, ...], types: set[str], max_body: int, auth: str
) -> None:
    adapter = adapter_for(provider)
    assert adapter.credential_fields == fields
    assert adapter.channel_types == types
    assert adapter.max_body == max_body
    assert adapter.webhook_auth is WebhookAuth(auth)


def test_the_registry_builds_one_adapter_per_provider() -> None:
    deps = ProviderDeps(
        http=HttpClient(),
        clock=FakeClock(),
        reporter=_Reporter(),
        settings=Settings(),
        status_callback=lambda channel_id: f"{URL}?{channel_id}",
    )
    built = build_providers(deps)
    assert sorted(built) == sorted(ADAPTERS)
    for name, provider in built.items():
        assert isinstance(provider, ADAPTERS[name])
        assert provider.name == name


def test_twilio_reads_a_signed_status_callback_and_refuses_a_bad_signature() -> None:
    form = [("MessageSid", "SM1"), ("MessageStatus", "delivered"), ("To", "+33612345678")]
    body = urlencode(form).encode()
    signature = twilio.twilio_signature(URL, form, "token")
    events = twilio.TwilioProvider.parse_webhook(
        URL, {"X-Twilio-Signature": signature}, body, {"account_sid": "AC1", "auth_token": "token"}
    )
    assert [(s.provider, s.provider_message_id, s.status) for s in events.statuses] == [
        ("twilio", "SM1", MessageStatus.DELIVERED)
    ]
    assert events.reply.content_type == "text/xml"
    with pytest.raises(WebhookSignatureError):
        twilio.TwilioProvider.parse_webhook(
            URL, {"X-Twilio-Signature": signature}, body, {"auth_token": "another"}
        )


def test_telesign_reads_a_signed_inbound_message() -> None:
    body = json.dumps(
        {
            "reference_id": "R1",
            "sub_resource": "mo_sms",
            "user_response": {"phone_number": "33612345678", "mo_message": "STOP"},
        }
    ).encode()
    signature = telesign.telesign_callback_signature(API_KEY, body)
    credentials = {"customer_id": "C1", "api_key": API_KEY}
    events = telesign.TeleSignProvider.parse_webhook(
        URL, {"Authorization": f"TSA C1:{signature}"}, body, credentials
    )
    assert events.inbound == [
        InboundReport(
            provider="telesign",
            provider_message_id="R1",
            from_number="+33612345678",
            to_number=None,
            body="STOP",
            raw=json.loads(body),
        )
    ]
    with pytest.raises(WebhookSignatureError):
        telesign.TeleSignProvider.parse_webhook(URL, {}, body, credentials)


def test_acs_reads_an_event_grid_delivery_report() -> None:
    event = {
        "eventType": "Microsoft.Communication.SMSDeliveryReportReceived",
        "data": {"messageId": "M1", "deliveryStatus": "Delivered"},
    }
    events = acs.AcsProvider.parse_webhook(URL, {}, json.dumps([event]).encode(), {})
    assert [(s.provider, s.provider_message_id, s.status) for s in events.statuses] == [
        ("acs", "M1", MessageStatus.DELIVERED)
    ]


def test_the_sandbox_reads_a_status_report_and_an_inbound_message() -> None:
    report = json.dumps({"provider_message_id": "SBX1", "status": "undelivered"}).encode()
    events = sandbox.SandboxProvider.parse_webhook(URL, {}, report, {})
    assert [(s.provider, s.status) for s in events.statuses] == [
        ("sandbox", MessageStatus.UNDELIVERED)
    ]
    inbound = json.dumps({"from": "+33612345678", "body": "Hi", "id": "IN1"}).encode()
    events = sandbox.SandboxProvider.parse_webhook(URL, {}, inbound, {})
    assert [(i.provider_message_id, i.body) for i in events.inbound] == [("IN1", "Hi")]
    with pytest.raises(WebhookSignatureError):
        sandbox.SandboxProvider.parse_webhook(URL, {}, b"not json", {})


def test_every_provider_name_the_api_and_the_database_take_has_an_adapter() -> None:
    """A new adapter needs its name in domain.channels too (and a migration for the CHECK)."""
    assert sorted(ADAPTERS) == sorted(PROVIDER_NAMES)
