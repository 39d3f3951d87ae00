"""Routing benchmark: ``python -m bench.routing [--replies N] [--agents M] [--postgres URL]``.

Customers answer at once; how fast are their replies routed to a queue and assigned to an
agent, and how long until a console sees each assignment? For each scenario the service runs
in processes of its own on a fresh database (*SQLite*: ``outbound serve`` with its worker in
one process; *PostgreSQL*, with ``--postgres``: 2 API processes and 2 workers), with M agents,
all available, in one queue (the organisation's fallback) and room for every reply (capacity
``ceil(N / M)`` each, or ``--capacity``), so that what is measured is routing and assignment,
not agents being full. A client subscribed to ``GET /v1/stream`` with an admin key reads the
live updates while ``--concurrency`` clients post N replies from N numbers to the sandbox
channel's webhook, spread over the API processes.

Printed per scenario: replies the webhooks accepted per second and their latency; replies
routed and assigned per second, from the first post until the last ``conversation.routed`` /
``conversation.assigned`` event arrived on the stream; the time from posting a reply to its
``conversation.assigned`` event on the stream (p50/p99; the stream reads new events every
0.25 s) and, from the database, from the reply's arrival to the assignment's commit; the peak
resident memory of the service's processes and their CPU time (and PostgreSQL's) per reply.
Record results with the machine in bench/results.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx2
import sqlalchemy as sa
from cryptography.fernet import Fernet
from rich.table import Table

from bench.__main__ import (
    PYTHON,
    STALL_SECONDS,
    _admin_key,
    _cpu_seconds,
    _free_port,
    _fresh,
    _pct,
    _peak_rss_mb,
    _postgres_cpu_seconds,
    _process,
    _wait_port,
    console,
    contextlib_exit,
)
from outbound.adapters.db.engine import create_engine
from outbound.adapters.db.migrate import upgrade
from outbound.adapters.db.models import Conversation, ConversationEvent, InboundMessage

MAX_CAPACITY = 100
# Presence needs a sign of life within the timeout; a long one spares the run its heartbeats.
PRESENCE_TIMEOUT_SECONDS = 3600
COLUMNS = (
    "scenario",
    "replies",
    "agents",
    "accepted/s",
    "webhook p50/p99 ms",
    "routed/s",
    "assigned/s",
    "reply→assigned on stream p50/p99 ms",
    "reply→assigned in db p50/p99 ms",
    "assigned",
    "peak MB",
    "CPU ms/reply service / db",
)


@dataclass
class Timeline:
    """When each reply was posted, and when the stream told of its routing and assignment."""

    posted: dict[str, float] = field(default_factory=dict)
    webhook_ms: list[float] = field(default_factory=list)
    routed: dict[str, float] = field(default_factory=dict)
    assigned: dict[str, float] = field(default_factory=dict)
    started: float = 0.0
    all_posted: float = 0.0


@dataclass
class Result:
    timeline: Timeline
    stream_ms: list[float]
    database_ms: list[float]
    peak_mb: float
    cpu_service: float
    cpu_database: float


def _number(index: int) -> str:
    return f"+3361{index % 10_000_000:07d}"


def _setup(api: str, key: str, agents: int, capacity: int) -> str:
    """Agents, their keys and presence, one queue of them all, a sandbox channel: its webhook."""
    with httpx2.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        members = []
        for i in range(agents):
            user = c.post(
                "/v1/users",
                json={
                    "email": f"agent{i}@example.com",
                    "name": f"Agent {i}",
                    "role": "agent",
                    "capacity": capacity,
                },
            ).json()
            agent_key = c.post("/v1/api-keys", json={"role": "agent", "user_id": user["id"]})
            c.put(
                "/v1/users/me/presence",
                json={"status": "available"},
                headers={"Authorization": f"Bearer {agent_key.json()['key']}"},
            ).raise_for_status()
            members.append(user["id"])
        c.post("/v1/queues", json={"name": "Support", "members": members}).raise_for_status()
        channel = c.post(
            "/v1/channels",
            json={"name": "SMS", "type": "sms", "provider": "sandbox", "sender": "+15005550006"},
        )
        channel.raise_for_status()
    return str(channel.json()["webhook_url"])


async def _listen(
    session: aiohttp.ClientSession, api: str, key: str, timeline: Timeline, ready: asyncio.Event
) -> None:
    """Reads the event stream (``id:``, ``event:``, ``data:`` lines, a blank line ends one)."""
    headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
    async with session.get(f"{api}/v1/stream", headers=headers) as response:
        assert response.status == 200, response.status
        kind, data = "", ""
        async for raw in response.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith(":"):
                if line.startswith(": connected"):
                    ready.set()
                continue
            if line:
                name, _, value = line.partition(":")
                if name == "event":
                    kind = value.strip()
                elif name == "data":
                    data += value.removeprefix(" ")
                continue
            arrived = time.perf_counter()
            if kind in ("conversation.routed", "conversation.assigned") and data:
                conversation_id = json.loads(data)["conversation_id"]
                seen = timeline.routed if kind == "conversation.routed" else timeline.assigned
                seen.setdefault(conversation_id, arrived)
            kind, data = "", ""


async def _post(
    session: aiohttp.ClientSession,
    apis: list[str],
    webhook: str,
    replies: int,
    concurrency: int,
    timeline: Timeline,
) -> None:
    indexes = iter(range(replies))

    async def client() -> None:
        for index in indexes:
            number = _number(index)
            body = {"from": number, "body": f"Hello, this is customer {index}"}
            began = time.perf_counter()
            timeline.posted[number] = began
            async with session.post(apis[index % len(apis)] + webhook, json=body) as response:
                await response.read()
                assert response.status == 200, response.status
            timeline.webhook_ms.append((time.perf_counter() - began) * 1000)

    await asyncio.gather(*(client() for _ in range(concurrency)))


async def _drive(
    apis: list[str], key: str, webhook: str, replies: int, concurrency: int
) -> Timeline:
    timeline = Timeline()
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        ready = asyncio.Event()
        listener = asyncio.create_task(_listen(session, apis[0], key, timeline, ready))
        await asyncio.wait_for(ready.wait(), 30)
        timeline.started = time.perf_counter()
        await _post(session, apis, webhook, replies, concurrency, timeline)
        timeline.all_posted = time.perf_counter()
        last, last_change = -1, time.monotonic()
        while len(timeline.assigned) < replies and not listener.done():
            if len(timeline.assigned) != last:
                last, last_change = len(timeline.assigned), time.monotonic()
            elif time.monotonic() - last_change > STALL_SECONDS:
                break
            await asyncio.sleep(0.02)
        listener.cancel()
        try:
            await listener
        except asyncio.CancelledError:
            pass
    return timeline


def _database_ms(engine: sa.Engine) -> tuple[dict[str, str], list[float]]:
    """Each conversation's number, and each reply's arrival to its assignment's commit."""
    with engine.connect() as conn:
        numbers = {
            cid: number
            for cid, number in conn.execute(
                sa.select(Conversation.id, Conversation.customer_number)
            ).all()
        }
        rows = conn.execute(
            sa.select(InboundMessage.received_at, ConversationEvent.occurred_at).join(
                ConversationEvent,
                sa.and_(
                    ConversationEvent.conversation_id == InboundMessage.conversation_id,
                    ConversationEvent.kind == "assigned",
                ),
            )
        ).all()
    return numbers, [(assigned - received).total_seconds() * 1000 for received, assigned in rows]


def _scenario(
    database_url: str | None,
    *,
    api_processes: int,
    workers: int,
    replies: int,
    agents: int,
    concurrency: int,
    capacity: int,
) -> Result:
    with (
        tempfile.TemporaryDirectory(prefix="outbound-bench-routing-") as tmp,
        _fresh(database_url) as fresh_url,
    ):
        data_dir = Path(tmp)
        url = fresh_url or f"sqlite:///{data_dir / 'bench.db'}"
        secret = Fernet.generate_key().decode()
        engine = create_engine(url)
        upgrade(engine)
        _org, key = _admin_key(url, secret, data_dir)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")}
        env |= {
            "OUTBOUND_DATABASE_URL": url,
            "OUTBOUND_SECRET_KEY": secret,
            "OUTBOUND_DATA_DIR": str(data_dir),
            "OUTBOUND_LOG_LEVEL": "WARNING",
            "OUTBOUND_PRESENCE_TIMEOUT_SECONDS": str(PRESENCE_TIMEOUT_SECONDS),
        }
        ports = [_free_port() for _ in range(api_processes)]
        apis = [f"http://127.0.0.1:{port}" for port in ports]
        with contextlib_exit() as stack:
            processes = []
            for port in ports:
                args = [PYTHON, "-m", "outbound", "serve", "--port", str(port)]
                args.append("--no-worker" if workers else "--worker")
                processes.append(stack.enter_context(_process(args, env)))
            for _ in range(workers):
                processes.append(
                    stack.enter_context(_process([PYTHON, "-m", "outbound", "worker"], env))
                )
            for port in ports:
                _wait_port(port)
            webhook = _setup(apis[0], key, agents, capacity)
            cpu_before = [_cpu_seconds(p.pid) for p in processes]
            database_before = _postgres_cpu_seconds() if database_url else 0.0
            timeline = asyncio.run(_drive(apis, key, webhook, replies, concurrency))
            cpu_service = sum(
                _cpu_seconds(p.pid) - before
                for p, before in zip(processes, cpu_before, strict=True)
            )
            cpu_database = _postgres_cpu_seconds() - database_before if database_url else 0.0
            peak = max(_peak_rss_mb(p.pid) for p in processes)
        numbers, database_ms = _database_ms(engine)
        engine.dispose()
    stream_ms = [
        (arrived - timeline.posted[numbers[cid]]) * 1000
        for cid, arrived in timeline.assigned.items()
        if numbers.get(cid) in timeline.posted
    ]
    return Result(timeline, stream_ms, database_ms, peak, cpu_service, cpu_database)


def _p50_p99(values: list[float]) -> str:
    return f"{_pct(values, 50):.0f} / {_pct(values, 99):.0f}"


def _row(label: str, replies: int, agents: int, result: Result) -> list[str]:
    timeline = result.timeline

    def rate(arrivals: dict[str, float]) -> str:
        if len(arrivals) < replies:
            return f"{len(arrivals) / replies:.0%} seen"
        return f"{replies / (max(arrivals.values()) - timeline.started):.0f}"

    per_reply = 1000 / replies
    return [
        label,
        str(replies),
        str(agents),
        f"{replies / (timeline.all_posted - timeline.started):.0f}",
        _p50_p99(timeline.webhook_ms),
        rate(timeline.routed),
        rate(timeline.assigned),
        _p50_p99(result.stream_ms),
        _p50_p99(result.database_ms),
        str(len(result.database_ms)),
        f"{result.peak_mb:.0f}",
        f"{result.cpu_service * per_reply:.2f} / {result.cpu_database * per_reply:.2f}",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.routing")
    parser.add_argument("--replies", type=int, default=500, help="customer replies per run")
    parser.add_argument("--agents", type=int, default=10, help="available agents in the queue")
    parser.add_argument("--concurrency", type=int, default=8, help="replies posted at once")
    parser.add_argument(
        "--capacity",
        type=int,
        default=None,
        help=f"units per agent (default: room for every reply, at most {MAX_CAPACITY})",
    )
    parser.add_argument("--postgres", default=None, help="also run on this PostgreSQL URL")
    parser.add_argument(
        "--only", choices=["sqlite", "postgres"], default=None, help="run one scenario"
    )
    args = parser.parse_args(argv)
    if args.replies < 1 or args.agents < 1 or args.concurrency < 1:
        parser.error("--replies, --agents and --concurrency must be at least 1")
    capacity = args.capacity or math.ceil(args.replies / args.agents)
    if capacity * args.agents < args.replies or capacity > MAX_CAPACITY:
        parser.error(
            f"the agents need room for every reply, at most {MAX_CAPACITY} units each: "
            "change --capacity or --agents"
        )
    if args.only == "postgres" and not args.postgres:
        parser.error("--only postgres needs --postgres URL")

    scenarios: list[tuple[str, str | None, int, int]] = []
    if args.only != "postgres":
        scenarios.append(("outbound SQLite, 1 process", None, 1, 0))
    if args.postgres and args.only != "sqlite":
        scenarios.append(("outbound PostgreSQL, 2 API + 2 workers", args.postgres, 2, 2))
    table = Table(
        title=f"{args.replies} replies to {args.agents} available agents, "
        f"capacity {capacity} each, {args.concurrency} posted at once"
    )
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for label, url, api_processes, workers in scenarios:
        result = _scenario(
            url,
            api_processes=api_processes,
            workers=workers,
            replies=args.replies,
            agents=args.agents,
            concurrency=args.concurrency,
            capacity=capacity,
        )
        table.add_row(*_row(label, args.replies, args.agents, result))
    console.print(table)
    console.print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}; "
        f"replies={args.replies}, agents={args.agents}, capacity={capacity}, "
        f"concurrency={args.concurrency}"
    )


if __name__ == "__main__":
    main()
