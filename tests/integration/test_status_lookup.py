"""The adapters' status look-ups against the fake providers: the request each real service
expects (auth, path), the message's current status read as its callback would be, 404 for a
message the provider does not know."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from telesign.rest import RestClient

from outbound.adapters.providers.acs import AcsProvider
from outbound.adapters.providers.base import (
    ChannelInfo,
    OutgoingMessage,
    StatusLookup,
    StatusReport,
)
from outbound.adapters.providers.http import HttpClient
from outbound.adapters.providers.sandbox import SandboxProvider
from outbound.adapters.providers.telesign import TeleSignProvider
from outbound.adapters.providers.twilio import TwilioProvider
from outbound.domain.statuses import MessageStatus
from outbound.errors import (
    CredentialsError,
    TransientProviderError,
    UnknownProviderMessageError,
)
from outbound.testing import FakeClock
from outbound.testing.fakes import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_API_KEY,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_CUSTOMER_ID,
    FakeTeleSign,
    FakeTwilio,
)

CUSTOMER = "+33612345678"


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient(total_timeout=5.0, connect_timeout=2.0)
    yield client
    await client.aclose()


def _channel(provider: str, base_url: str, credentials: dict[str, str]) -> ChannelInfo:
    return ChannelInfo(
        id="ch-1",
        org_id="org-1",
        type="sms",
        provider=provider,
        sender="+15005550006",
        base_url=base_url,
        credentials=credentials,
        options={},
    )


def _message(channel: ChannelInfo, to: str = CUSTOMER) -> OutgoingMessage:
    return OutgoingMessage(id="msg-1", org_id="org-1", channel=channel, to=to, body="Hi", attempt=1)


def test_twilio_telesign_and_the_sandbox_answer_look_ups_and_acs_does_not() -> None:
    http = HttpClient()
    assert isinstance(TwilioProvider(http), StatusLookup)
    assert isinstance(TeleSignProvider(http), StatusLookup)
    assert isinstance(SandboxProvider(_Nobody()), StatusLookup)
    # ACS has no per-message status GET: its reports come through Event Grid only.
    assert not isinstance(AcsProvider(http), StatusLookup)


# --- Twilio -------------------------------------------------------------------------------


def _twilio(fake: FakeTwilio, **credentials: str) -> ChannelInfo:
    return _channel(
        "twilio",
        fake.base_url,
        credentials or {"account_sid": DEFAULT_ACCOUNT_SID, "auth_token": DEFAULT_AUTH_TOKEN},
    )


async def test_twilio_reads_the_message_resource(http: HttpClient) -> None:
    clock = FakeClock()
    async with FakeTwilio(callback_delay=0.0, clock=clock) as fake:
        provider = TwilioProvider(http, clock=clock)
        channel = _twilio(fake)
        sid = (await provider.send(_message(channel))).provider_message_id
        await fake.drain()
        report = await provider.fetch_status(channel, sid)
        request = fake.requests[-1]
    assert (request.method, request.path) == (
        "GET",
        f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages/{sid}.json",
    )
    assert (request.headers["Authorization"] or "").startswith("Basic ")
    assert report == StatusReport(
        provider="twilio",
        provider_message_id=sid,
        status=MessageStatus.DELIVERED,
        occurred_at=clock.now().replace(microsecond=0),
        raw=report.raw if report else {},
    )


async def test_twilio_statuses_before_a_final_one_are_no_report(http: HttpClient) -> None:
    async with FakeTwilio(callback_delay=0.0, callback_sequence=()) as fake:
        provider = TwilioProvider(http)
        channel = _twilio(fake)
        sid = (await provider.send(_message(channel))).provider_message_id
        assert fake.messages[sid].status == "queued"
        assert await provider.fetch_status(channel, sid) is None
        for status in ("sending", "sent", "accepted", "scheduled"):
            fake.messages[sid].status = status
            assert await provider.fetch_status(channel, sid) is None
        fake.messages[sid].status = "read"
        report = await provider.fetch_status(channel, sid)
    assert report is not None and report.status is MessageStatus.DELIVERED


async def test_twilio_undelivered_carries_its_error_code(http: HttpClient) -> None:
    async with FakeTwilio(callback_delay=0.0, failing_numbers={CUSTOMER: "30005"}) as fake:
        provider = TwilioProvider(http)
        channel = _twilio(fake)
        sid = (await provider.send(_message(channel))).provider_message_id
        await fake.drain()
        report = await provider.fetch_status(channel, sid)
    assert report is not None
    assert (report.status, report.error_code, report.error_message) == (
        MessageStatus.UNDELIVERED,
        "30005",
        "Unknown destination handset",
    )


async def test_twilio_unknown_message_bad_credentials_and_outage(http: HttpClient) -> None:
    async with FakeTwilio(api_keys={"SK" + "1" * 32: "key-secret"}) as fake:
        provider = TwilioProvider(http)
        with pytest.raises(UnknownProviderMessageError) as unknown:
            await provider.fetch_status(_twilio(fake), "SM" + "0" * 32)
        assert unknown.value.code == "20404"
        wrong = _twilio(fake, account_sid=DEFAULT_ACCOUNT_SID, auth_token="wrong")
        with pytest.raises(CredentialsError):
            await provider.fetch_status(wrong, "SM" + "0" * 32)
        # An API key pair stands in for the auth token, as when sending.
        with_key = _twilio(
            fake,
            account_sid=DEFAULT_ACCOUNT_SID,
            auth_token=DEFAULT_AUTH_TOKEN,
            api_key_sid="SK" + "1" * 32,
            api_key_secret="key-secret",
        )
        with pytest.raises(UnknownProviderMessageError):
            await provider.fetch_status(with_key, "SM" + "0" * 32)
        fake.fail_next(1, status=503)
        with pytest.raises(TransientProviderError):
            await provider.fetch_status(_twilio(fake), "SM" + "0" * 32)


# --- TeleSign -----------------------------------------------------------------------------


def _telesign(fake: FakeTeleSign, api_key: str = DEFAULT_API_KEY) -> ChannelInfo:
    return _channel(
        "telesign", fake.base_url, {"customer_id": DEFAULT_CUSTOMER_ID, "api_key": api_key}
    )


async def test_telesign_reads_the_status_by_reference_id_signed_as_the_sdk_signs(
    http: HttpClient,
) -> None:
    clock = FakeClock(datetime(2026, 1, 15, 9, 0, 0, 250_000, tzinfo=UTC))
    async with FakeTeleSign(callback_delay=0.0, clock=clock) as fake:
        provider = TeleSignProvider(http, clock=clock)
        channel = _telesign(fake)
        reference = (await provider.send(_message(channel))).provider_message_id
        await fake.drain()
        report = await provider.fetch_status(channel, reference)
        request = fake.requests[-1]
    assert (request.method, request.path, request.body) == (
        "GET",
        f"/v1/messaging/{reference}",
        b"",
    )
    sdk = await asyncio.to_thread(
        RestClient.generate_telesign_headers,
        DEFAULT_CUSTOMER_ID,
        DEFAULT_API_KEY,
        "GET",
        request.path,
        "",
        date_rfc2616=request.headers["Date"],
        nonce=request.headers["x-ts-nonce"],
    )
    assert request.headers["Authorization"] == sdk["Authorization"]
    assert report == StatusReport(
        provider="telesign",
        provider_message_id=reference,
        status=MessageStatus.DELIVERED,
        occurred_at=clock.now(),
        raw=report.raw if report else {},
    )


async def test_telesign_pending_codes_are_no_report_and_failures_carry_the_code(
    http: HttpClient,
) -> None:
    async with FakeTeleSign(
        callback_delay=0.0, callback_sequence=[203], failing_numbers={"33612345679": 211}
    ) as fake:
        provider = TeleSignProvider(http)
        channel = _telesign(fake)
        pending = (await provider.send(_message(channel))).provider_message_id
        failing = (await provider.send(_message(channel, "+33612345679"))).provider_message_id
        await fake.drain()
        assert await provider.fetch_status(channel, pending) is None
        report = await provider.fetch_status(channel, failing)
    assert report is not None
    assert (report.status, report.error_code, report.error_message) == (
        MessageStatus.FAILED,
        "211",
        "Permanent phone error",
    )


async def test_telesign_unknown_reference_and_bad_key(http: HttpClient) -> None:
    async with FakeTeleSign() as fake:
        provider = TeleSignProvider(http)
        with pytest.raises(UnknownProviderMessageError) as unknown:
            await provider.fetch_status(_telesign(fake), "0" * 32)
        assert unknown.value.code == "-10001"
        with pytest.raises(CredentialsError) as refused:
            await provider.fetch_status(_telesign(fake, api_key="b3RoZXIta2V5"), "0" * 32)
        assert refused.value.code == "-30006"


# --- the sandbox --------------------------------------------------------------------------


class _Nobody:
    """A reporter whose reports match no message."""

    async def report(self, report: StatusReport) -> bool:
        return False


async def test_the_sandbox_gives_the_report_it_could_not_make(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("outbound.adapters.providers.sandbox._REPORT_RETRY_DELAY", 0.0)
    provider = SandboxProvider(_Nobody(), delivery_delay=0.05)
    channel = _channel("sandbox", "", {})
    pid = (await provider.send(_message(channel))).provider_message_id
    assert await provider.fetch_status(channel, pid) is None  # its report is still to come
    await provider.drain()
    report = await provider.fetch_status(channel, pid)
    assert report is not None and report.status is MessageStatus.DELIVERED
    with pytest.raises(UnknownProviderMessageError):
        await provider.fetch_status(channel, "SBX" + "0" * 32)
    await provider.aclose()
