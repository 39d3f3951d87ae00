"""Channels' shared sending state: slots on rate-limited channels, stops for bad credentials."""

from __future__ import annotations

from datetime import timedelta

from outbound.adapters.db.models import Channel
from outbound.adapters.queue.channel_state import ChannelState
from outbound.app import Container
from outbound.schemas import ChannelCreate
from outbound.services.auth import create_organization


def _channel(c: Container) -> str:
    org = create_organization(c.db, c.clock, "Acme")
    channel = c.channels.create(
        org.id, ChannelCreate(name="s", type="sms", provider="sandbox", sender="+15005550006")
    )
    return channel.id


def test_slots_follow_the_rate_and_what_falls_too_far_ahead_waits(container: Container) -> None:
    channel_id = _channel(container)
    state = ChannelState(container.db)
    now = container.clock.now()
    second = timedelta(seconds=1)
    slots, deferred = state.reserve_slots(
        {channel_id: (2.0, ["a", "b", "c", "d"])}, now=now, until=now + second
    )
    assert slots == {"a": now, "b": now + second / 2}
    assert deferred == {"c": now + second, "d": now + second}
    # Another worker, at the same moment: the next slot is taken, nothing fits before `until`.
    slots, deferred = state.reserve_slots({channel_id: (2.0, ["e"])}, now=now, until=now + second)
    assert (slots, deferred) == ({}, {"e": now + second})
    # Once the next slot is free, at least one message goes even past `until`.
    later = now + 2 * second
    slots, deferred = state.reserve_slots({channel_id: (2.0, ["e", "f"])}, now=later, until=now)
    assert (slots, deferred) == ({"e": later}, {"f": later + second / 2})
    with container.db.read() as session:
        channel = session.get(Channel, channel_id)
        assert channel is not None
        assert channel.next_slot_at is not None
        assert channel.next_slot_at.replace(tzinfo=later.tzinfo) == later + second / 2


def test_a_stopped_channel_keeps_its_first_reason(container: Container) -> None:
    channel_id = _channel(container)
    state = ChannelState(container.db)
    now = container.clock.now()
    state.stop(channel_id, "credentials refused", now)
    state.stop(channel_id, "refused again", now + timedelta(seconds=5))
    with container.db.read() as session:
        channel = session.get(Channel, channel_id)
        assert channel is not None
        assert (channel.healthy, channel.health_detail) == (False, "credentials refused")
