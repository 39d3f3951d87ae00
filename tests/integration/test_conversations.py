"""Opening or continuing a customer's conversation when a message is sent (on_send mode);
replies go through routing (tests/acceptance/test_agents.py)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from outbound.adapters.db.models import Conversation, InboundMessage, Message
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


def test_a_conversations_thread_has_what_was_sent_its_customer_on_its_channel_since_it_began(
    container: Container, clock: FakeClock
) -> None:
    c = container
    org = create_organization(c.db, c.clock, "Acme")
    channel, other_channel = (
        c.channels.create(
            org.id, ChannelCreate(name=name, type="sms", provider="sandbox", sender=sender)
        ).id
        for name, sender in (("s", "+15005550006"), ("t", "+15005550007"))
    )
    sent: dict[str, str] = {}

    def send(name: str, to: str = A, *, on: str = channel, within: str | None = None) -> None:
        clock.advance(60)
        with c.db.transaction() as session:
            message = Message(
                org_id=org.id,
                contact_index=0,
                channel_id=on,
                channel_type="sms",
                provider="sandbox",
                to_raw=to,
                to_number=to,
                body=name,
                status="delivered",
                max_attempts=1,
                conversation_id=within,
                scheduled_at=clock.now(),
                created_at=clock.now(),
                updated_at=clock.now(),
            )
            session.add(message)
            session.flush()
            sent[name] = message.id

    def conversation(*, answered: str | None, replying_to: str | None = None) -> str:
        clock.advance(60)
        with c.db.transaction() as session:
            row = Conversation(
                org_id=org.id,
                channel_id=channel,
                customer_number=A,
                status="closed" if replying_to else "active",
                answered_message_id=answered,
                created_at=clock.now(),
                updated_at=clock.now(),
                last_message_at=clock.now(),
            )
            session.add(row)
            session.flush()
            if replying_to is not None:  # no answered message kept: the first reply tells
                session.add(
                    InboundMessage(
                        org_id=org.id,
                        channel_id=channel,
                        provider="sandbox",
                        provider_message_id=f"in-{row.id}",
                        from_number=A,
                        body="yes",
                        raw={},
                        in_reply_to=replying_to,
                        conversation_id=row.id,
                        received_at=clock.now(),
                    )
                )
            return row.id

    send("earlier")
    send("replied to, without a conversation")
    first = conversation(answered=None, replying_to=sent["replied to, without a conversation"])
    send("answered")
    current = conversation(answered=sent["answered"])
    send("agent's answer", within=current)
    send("sent the customer since")
    send("in the first conversation", within=first)
    send("another number", B)
    send("another channel", on=other_channel)

    def thread(conversation_id: str) -> list[str | None]:
        got = c.conversations.get(org.id, conversation_id).messages or []
        return [m.body for m in got if m.direction == "outbound"]

    assert thread(current) == ["answered", "agent's answer", "sent the customer since"]
    assert thread(first) == [
        "replied to, without a conversation",
        "answered",
        "sent the customer since",
        "in the first conversation",
    ]


def test_the_live_conversations_are_listed_newest_first_through_their_own_index(
    container: Container, clock: FakeClock
) -> None:
    c = container
    org = create_organization(c.db, c.clock, "Acme")
    statuses = ["closed"] * 40 + ["open", "active", "waiting", "wrap_up"] * 2
    made: dict[str, str] = {}
    with c.db.transaction() as session:
        for index, status in enumerate(statuses):
            clock.advance(60)
            row = Conversation(
                org_id=org.id,
                channel_id="ch",
                customer_number=f"+336123400{index:02d}",
                status=status,
                created_at=clock.now(),
                updated_at=clock.now(),
                last_message_at=clock.now(),
            )
            session.add(row)
            session.flush()
            made[row.id] = status
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    engine = c.db.engine
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        first = c.conversations.list(org.id, "open,active,waiting,wrap_up", None, 5)
        rest = c.conversations.list(org.id, "open,active,waiting,wrap_up", first.next_cursor, 5)
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    listed = [conv.id for conv in first.data + rest.data]
    live = [id_ for id_, status in made.items() if status != "closed"]
    assert listed == list(reversed(live)) and rest.next_cursor is None
    listing = [s for s in statements if "FROM conversations" in s]
    if engine.dialect.name == "sqlite":
        assert all("INDEXED BY ix_conversations_org_status" in s for s in listing), listing
    # Closed ones too: no index is named, the database chooses.
    closed = c.conversations.list(org.id, "closed,open", None, 100)
    assert len(closed.data) == statuses.count("closed") + statuses.count("open")
