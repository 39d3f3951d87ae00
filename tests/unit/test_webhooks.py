"""Webhook rules without I/O: subscriptions, signatures, retry schedule, allowed addresses."""

from __future__ import annotations

import ipaddress
import random
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from outbound.domain.webhooks import (
    RETRY_SCHEDULE,
    AllowedHosts,
    address_refusal,
    check_address,
    check_patterns,
    check_url,
    next_retry,
    sign,
    signature_headers,
    subscribed,
)
from outbound.errors import UnsafeWebhookAddressError

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_the_signature_is_the_standard_webhooks_one() -> None:
    # The example of the Standard Webhooks specification.
    body = b'{"test": 2432232314}'
    assert sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_standard_webhooks_accepts_the_headers() -> None:
    now = int(datetime.now(UTC).timestamp())
    body = b'{"type":"message.inbound","data":{}}'
    headers = signature_headers(SECRET, "evt_1", now, body)
    assert Webhook(SECRET).verify(body, headers)["type"] == "message.inbound"


def test_patterns() -> None:
    assert check_patterns(["conversation.*", "message.inbound", "message.inbound"]) == [
        "conversation.*",
        "message.inbound",
    ]
    assert subscribed(["conversation.*"], "conversation.opened")
    assert not subscribed(["conversation.*"], "message.inbound")
    assert subscribed(["*"], "flow_run.completed")
    for bad in (["message.sent"], [], ["webhook.test"]):
        with pytest.raises(ValueError):
            check_patterns(bad)


def test_the_retry_schedule_spans_about_a_day_then_gives_up() -> None:
    rng = random.Random(7)
    waits = [next_retry(n, rng=rng) for n in range(1, len(RETRY_SCHEDULE) + 1)]
    assert all(w is not None for w in waits)
    total = sum(w for w in waits if w is not None)
    assert 0.8 * 86_400 < total < 1.2 * 86_400
    assert next_retry(len(RETRY_SCHEDULE) + 1) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.8", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "private"),
        ("100.64.0.1", "reserved"),
        ("224.0.0.1", "multicast"),
        ("93.184.215.14", None),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", None),
    ],
)
def test_address_refusal(address: str, reason: str | None) -> None:
    refusal = address_refusal(ipaddress.ip_address(address))
    assert (refusal is None) == (reason is None)
    if reason is not None:
        assert refusal is not None and reason in refusal


def test_allowed_hosts_by_name_address_or_network() -> None:
    allowed = AllowedHosts.parse("127.0.0.1, 10.0.0.0/8, hooks.internal., [::1]")
    loopback = ipaddress.ip_address("127.0.0.1")
    check_address("anything", loopback, allowed)
    check_address("x", ipaddress.ip_address("10.9.9.9"), allowed)
    check_address("HOOKS.internal", ipaddress.ip_address("192.168.0.1"), allowed)
    check_address("x", ipaddress.ip_address("::1"), allowed)
    with pytest.raises(UnsafeWebhookAddressError, match="OUTBOUND_WEBHOOK_ALLOWED_HOSTS"):
        check_address("x", ipaddress.ip_address("192.168.0.1"), allowed)
    with pytest.raises(UnsafeWebhookAddressError):
        check_address("x", loopback, AllowedHosts.parse(None))


@pytest.mark.parametrize(
    "url", ["ftp://a.example/x", "http:///x", "https://u:p@a.example/", "http://a.example:99999/"]
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        check_url(url)
