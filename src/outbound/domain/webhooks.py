"""Webhooks to the integrator's systems: event types, signatures, retries, allowed addresses.

Signatures follow the Standard Webhooks specification: the signed content is
``{webhook-id}.{webhook-timestamp}.{body}``, signed with HMAC-SHA256 under the secret (the
base64 bytes after ``whsec_``), and sent as ``v1,<base64 signature>`` in ``webhook-signature``.

Addresses: an endpoint may only resolve to public addresses, so that a tenant cannot make the
service call its own network (loopback, private, link-local, shared, reserved, multicast
ranges), unless the operator names the host or its network in the allowed hosts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from outbound.errors import UnsafeWebhookAddressError
from outbound.texts import N_

__all__ = [
    "EVENT_TYPES",
    "RETRY_SCHEDULE",
    "SECRET_PREFIX",
    "TEST_EVENT",
    "AllowedHosts",
    "IpAddress",
    "address_refusal",
    "check_address",
    "check_patterns",
    "check_url",
    "next_retry",
    "sign",
    "signature_headers",
    "subscribed",
]

SECRET_PREFIX = "whsec_"

MESSAGE_STATUS_CHANGED = "message.status_changed"
MESSAGE_INBOUND = "message.inbound"
CONSENT_CHANGED = "consent.changed"
FLOW_RUN_COMPLETED = "flow_run.completed"
TEST_EVENT = "webhook.test"

CONVERSATION_CHANGES = (
    "opened",
    "customer_message",
    "customer_replied",
    "routed",
    "overflowed",
    "offered",
    "offer_expired",
    "accepted",
    "declined",
    "reassigned",
    "transferred",
    "agent_replied",
    "snoozed",
    "woke",
    "closed",
    "auto_closed",
    "reopened",
)

EVENT_TYPES: tuple[str, ...] = (
    MESSAGE_STATUS_CHANGED,
    MESSAGE_INBOUND,
    CONSENT_CHANGED,
    FLOW_RUN_COMPLETED,
    *(f"conversation.{change}" for change in CONVERSATION_CHANGES),
)
"""Every event an endpoint may subscribe to (``conversation.*`` takes every conversation
change; ``*`` takes everything)."""

RETRY_SCHEDULE: tuple[float, ...] = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800)
"""Seconds between one failed attempt and the next: eleven attempts over about a day."""

_JITTER = 0.2

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def check_patterns(patterns: Iterable[str]) -> list[str]:
    """The patterns, each of which must name at least one event type; raises ValueError."""
    result: list[str] = []
    for pattern in patterns:
        if not any(fnmatchcase(t, pattern) for t in EVENT_TYPES):
            raise ValueError(
                N_(
                    "%(pattern)r names no event; known: %(events)s, conversation.* or *",
                    pattern=pattern,
                    events=", ".join(_PUBLIC_NAMES),
                )
            )
        if pattern not in result:
            result.append(pattern)
    if not result:
        raise ValueError(N_("at least one event is needed"))
    return result


_PUBLIC_NAMES = (MESSAGE_STATUS_CHANGED, MESSAGE_INBOUND, CONSENT_CHANGED, FLOW_RUN_COMPLETED)


def subscribed(patterns: Iterable[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to ``patterns`` wants ``event_type``."""
    return any(fnmatchcase(event_type, pattern) for pattern in patterns)


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of one attempt: ``v1,<base64 HMAC-SHA256>``."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def next_retry(
    attempts: int, schedule: Sequence[float] = RETRY_SCHEDULE, rng: random.Random | None = None
) -> float | None:
    """Seconds before the next attempt after ``attempts`` failed ones, or None: give up.

    Each wait is the schedule's, give or take a fifth, so that the deliveries an endpoint
    failed together do not all come back at the same instant.
    """
    if attempts < 1 or attempts > len(schedule):
        return None
    base = schedule[attempts - 1]
    return base * (1 + (rng or random).uniform(-_JITTER, _JITTER))


@dataclass(frozen=True)
class AllowedHosts:
    """The hosts and networks the operator allows even though they are not public."""

    names: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, value: str | None) -> AllowedHosts:
        """``127.0.0.1, 10.0.0.0/8, hooks.internal``: addresses, networks or host names."""
        names: set[str] = set()
        networks = []
        for raw in (value or "").split(","):
            item = raw.strip().lower().strip("[]")
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                names.add(item.rstrip("."))
        return cls(frozenset(names), tuple(networks))

    def allows(self, host: str, address: IpAddress | None = None) -> bool:
        if host.lower().rstrip(".").strip("[]") in self.names:
            return True
        return address is not None and any(address in net for net in self.networks)


def address_refusal(address: IpAddress) -> str | None:
    """Why an endpoint may not be called at ``address``, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return N_("a loopback address")
    if address.is_link_local:
        return N_("a link-local address")
    if address.is_private:
        return N_("a private address")
    if address.is_multicast:
        return N_("a multicast address")
    if not address.is_global:
        return N_("a reserved address")
    return None


def check_address(host: str, address: IpAddress, allowed: AllowedHosts) -> None:
    """Raise :class:`UnsafeWebhookAddressError` unless ``host`` may be called at ``address``."""
    reason = address_refusal(address)
    if reason is not None and not allowed.allows(host, address):
        raise UnsafeWebhookAddressError(
            N_(
                "%(host)s resolves to %(address)s, %(reason)s; "
                "the operator may allow it with OUTBOUND_WEBHOOK_ALLOWED_HOSTS",
                host=host,
                address=str(address),
                reason=reason,
            )
        )


def check_url(url: str) -> str:
    """The host of an endpoint URL, which must be http(s) with a host; raises ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise ValueError(N_("must be an http:// or https:// URL"))
    if not parts.hostname:
        raise ValueError(N_("must name a host"))
    if parts.username is not None or parts.password is not None:
        raise ValueError(N_("must not carry a user name or password (the signature authenticates)"))
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValueError(N_("has an invalid port")) from exc
    return parts.hostname
