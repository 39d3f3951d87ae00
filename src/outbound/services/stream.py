"""Live updates for agents and supervisors, as Server-Sent Events.

Every change that a console shows (conversations offered, assigned, transferred, closed;
messages in and out and their statuses; presence) is written to ``stream_events`` in the
transaction of the change (:func:`outbound.services.conversation_log.publish`). Whatever process
made the change, each process's :class:`StreamHub` reads new rows with one indexed query every
``poll_interval`` seconds (on PostgreSQL, at once when ``NOTIFY`` says there are new ones) and
hands them to the clients connected to it. The table is the truth:
a client that reconnects with ``Last-Event-ID`` gets every event after that id that is still
kept (the retention window, one hour by default); one that has been away longer is told to
reload (``event: reset``).

Who sees what: an event without ``user_id`` goes to every user of the organisation; one with
``user_id`` (an offer to an agent) goes to that user and to supervisors and admins.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import StreamEvent
from outbound.domain.public_ids import IdKind, encode_public_id
from outbound.services.conversation_log import NOTIFY_CHANNEL
from outbound.services.public_ids import org_id_key

__all__ = ["NOTIFY_CHANNEL", "StreamHub", "StreamItem", "Subscriber", "format_sse"]

log = logging.getLogger(__name__)

BATCH = 500
QUEUE_LIMIT = 1000
# PostgreSQL hands out ids when rows are inserted, not when they commit: a row with a lower id
# may become visible after a higher one was read. Each read looks this many ids back.
LOOKBACK = 200


@dataclass(frozen=True)
class StreamItem:
    id: int
    org_id: str
    user_id: str | None
    kind: str
    payload: dict[str, Any]
    created_at: datetime


@dataclass(eq=False)
class Subscriber:
    """One connected client."""

    org_id: str
    user_id: str | None
    sees_all: bool
    queue: asyncio.Queue[StreamItem | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_LIMIT)
    )

    def wants(self, item: StreamItem) -> bool:
        if item.org_id != self.org_id:
            return False
        return item.user_id is None or self.sees_all or item.user_id == self.user_id


async def _next(subscriber: Subscriber) -> StreamItem | None:
    return await subscriber.queue.get()


def format_sse(item: StreamItem, key: str) -> str:
    """One event in the ``text/event-stream`` format, its id public under the organisation's
    ``key`` (:mod:`outbound.domain.public_ids`)."""
    data = json.dumps(
        {**item.payload, "at": item.created_at.isoformat().replace("+00:00", "Z")},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return (
        f"id: {encode_public_id(key, IdKind.UPDATE, item.id)}\nevent: {item.kind}\ndata: {data}\n\n"
    )


class StreamHub:
    """Reads new live updates once for the whole process and fans them out."""

    def __init__(self, db: Database, *, poll_interval: float = 0.25) -> None:
        self._db = db
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._subscribers: set[Subscriber] = set()
        self._last_id: int | None = None
        self._seen: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> int:
        return len(self._subscribers)

    def latest_id(self) -> int:
        with self._db.read() as session:
            return int(session.execute(sa.select(sa.func.max(StreamEvent.id))).scalar() or 0)

    def oldest_id(self, org_id: str) -> int | None:
        with self._db.read() as session:
            value = session.execute(
                sa.select(sa.func.min(StreamEvent.id)).where(StreamEvent.org_id == org_id)
            ).scalar()
        return int(value) if value is not None else None

    def after(self, subscriber: Subscriber, last_id: int, limit: int = BATCH) -> list[StreamItem]:
        """Kept events after ``last_id`` that the subscriber may see (for a reconnection)."""
        query = (
            sa.select(StreamEvent)
            .where(StreamEvent.org_id == subscriber.org_id, StreamEvent.id > last_id)
            .order_by(StreamEvent.id)
            .limit(limit)
        )
        if not subscriber.sees_all:
            query = query.where(
                sa.or_(StreamEvent.user_id.is_(None), StreamEvent.user_id == subscriber.user_id)
            )
        with self._db.read() as session:
            return [self._item(row) for row in session.execute(query).scalars()]

    async def subscribe(self, subscriber: Subscriber) -> None:
        async with self._lock:
            if self._last_id is None:
                self._last_id = await asyncio.to_thread(self.latest_id)
                # What was written before anyone listened is replayed per client, not here.
                self._seen = set(range(max(0, self._last_id - LOOKBACK) + 1, self._last_id + 1))
            self._subscribers.add(subscriber)
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._poll())
            if not self._db.is_sqlite and (self._listener is None or self._listener.done()):
                self._listener = asyncio.create_task(self._listen())

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    async def aclose(self) -> None:
        for subscriber in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                subscriber.queue.put_nowait(None)
        self._subscribers.clear()
        for task in (self._task, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def events(
        self, subscriber: Subscriber, last_event_id: int | None, *, heartbeat: float = 15.0
    ) -> AsyncGenerator[str, None]:
        """The text of the stream for one client: missed events first, then live ones."""
        key = await asyncio.to_thread(org_id_key, self._db, subscriber.org_id)
        await self.subscribe(subscriber)
        try:
            sent = last_event_id or 0
            replayed: set[int] = set()
            if last_event_id is not None:
                oldest = await asyncio.to_thread(self.oldest_id, subscriber.org_id)
                if oldest is not None and last_event_id + 1 < oldest:
                    yield "event: reset\ndata: {}\n\n"
                while True:
                    missed = await asyncio.to_thread(self.after, subscriber, sent)
                    for item in missed:
                        sent = item.id
                        replayed.add(item.id)
                        yield format_sse(item, key)
                    if len(missed) < BATCH:
                        break
            yield ": connected\n\n"
            while True:
                try:
                    live = await asyncio.wait_for(_next(subscriber), timeout=heartbeat)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if live is None:
                    return
                if live.id not in replayed:
                    yield format_sse(live, key)
        finally:
            self.unsubscribe(subscriber)

    async def _poll(self) -> None:
        while self._subscribers:
            try:
                items = await asyncio.to_thread(self._read_new)
            except Exception:
                log.exception("reading live updates failed; trying again")
                items = []
            for item in items:
                for subscriber in list(self._subscribers):
                    if subscriber.wants(item):
                        try:
                            subscriber.queue.put_nowait(item)
                        except asyncio.QueueFull:
                            # A client that does not read is closed; it reconnects with
                            # Last-Event-ID and misses nothing.
                            self.unsubscribe(subscriber)
                            with contextlib.suppress(asyncio.QueueEmpty):
                                subscriber.queue.get_nowait()
                            subscriber.queue.put_nowait(None)
            if not items:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval)

    async def _listen(self) -> None:
        """PostgreSQL: wake the reader as soon as another transaction publishes (``NOTIFY``),
        rather than at its next poll. Polling stays what makes the stream correct."""
        import psycopg

        url = self._db.engine.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while self._subscribers:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    async for _ in conn.notifies():
                        self._wake.set()
                        if not self._subscribers:
                            return
            except (OSError, psycopg.Error):
                log.warning("listening for live updates failed; polling until it works again")
                await asyncio.sleep(5)

    def _read_new(self) -> list[StreamItem]:
        last = self._last_id or 0
        with self._db.read() as session:
            rows = list(
                session.execute(
                    sa.select(StreamEvent)
                    .where(StreamEvent.id > max(0, last - LOOKBACK))
                    .order_by(StreamEvent.id)
                    .limit(BATCH + LOOKBACK)
                ).scalars()
            )
        items = [self._item(row) for row in rows if row.id not in self._seen and row.id > 0]
        items = [item for item in items if item.id > last - LOOKBACK]
        if items:
            self._seen.update(item.id for item in items)
            self._last_id = max(last, items[-1].id)
            floor = self._last_id - LOOKBACK
            self._seen = {i for i in self._seen if i > floor}
        return items

    @staticmethod
    def _item(row: StreamEvent) -> StreamItem:
        return StreamItem(
            id=row.id,
            org_id=row.org_id,
            user_id=row.user_id,
            kind=row.kind,
            payload=row.payload,
            created_at=row.created_at,
        )
