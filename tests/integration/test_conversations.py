"""Opening or continuing a customer's conversation when a message is sent (on_send mode);
replies go through routing (tests/acceptance/test_agents.py)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from outbound.adapters.db.models import Conversation
from outbound.app import Container
from outbound.schemas import ChannelCreate
from outbound.services.auth import create_organization
from outbound.services.conversations import open_conversations
from outbound.testing import FakeClock

A, B = "+33612345678", "+33612345679"


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)  # SQLite gives back naive UTC times


def test_a_number_continues_its_latest_live_conversation_or_opens_one(
    container: Container, clock: FakeClock
) -> None:
    c = container
    org = create_organization(c.db, c.clock, "Acme")
    channel = c.channels.create(
        org.id, ChannelCreate(name="s", type="sms", provider="sandbox", sender="+15005550006")
    )

    def open_now(numbers: list[str], *, config: str | None = None) -> dict[str, str]:
        with c.db.transaction() as session:
            return open_conversations(
                session,
                org_id=org.id,
                channel_id=channel.id,
                configuration_id=config,
                numbers=numbers,
                now=clock.now(),
            )

    first = open_now([A], config="cfg")
    opened_at = clock.now()
    clock.advance(60)
    second_at = clock.now()
    with c.db.transaction() as session:  # a second one for A, opened by another process
        latest = Conversation(
            org_id=org.id,
            channel_id=channel.id,
            customer_number=A,
            created_at=clock.now(),
            updated_at=clock.now(),
            last_message_at=clock.now(),
        )
        session.add(latest)
    clock.advance(60)
    sent = open_now([A, B, A])  # a send: the last message does not move
    assert sent == {A: latest.id, B: sent[B]} and sent[B] != first[A]
    assert open_now([]) == {}

    def last_messages() -> dict[str, datetime]:
        with c.db.read() as session:
            rows = session.execute(sa.select(Conversation.id, Conversation.last_message_at))
            return {row.id: _naive(row.last_message_at) for row in rows}

    sent_at = clock.now()
    assert last_messages() == {
        first[A]: _naive(opened_at),
        latest.id: _naive(second_at),
        sent[B]: _naive(sent_at),
    }
