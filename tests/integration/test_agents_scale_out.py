"""Routing with several processes on one PostgreSQL database: 2 API processes take 200 replies
at once, 2 worker processes sweep, 10 agents of capacity 3 close what they get in rounds. Read
back from the history of every conversation: each one assigned exactly once, never more than 3
active per agent at any moment, never to an agent who was not available."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa

from outbound.adapters.db.models import Conversation, ConversationEvent, StreamEvent
from outbound.app import Container
from outbound.config import Settings
from outbound.schemas import Role
from outbound.services.auth import create_api_key, create_organization
from tests.helpers import SECRET
from tests.integration.test_scale_out import _free_port, _wait_metrics

AGENTS = 10
CAPACITY = 3
REPLIES = 200
SWEEP_SECONDS = 1.0
RUN_SECONDS = 110.0
HOLDING = ("active", "wrap_up")


@dataclass(frozen=True)
class Agent:
    id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@contextmanager
def _started(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process of the service, stopped with SIGTERM (then killed) however the test ends."""
    with log.open("wb") as output:
        process = subprocess.Popen(args, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _ok(response: httpx2.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def _statuses(container: Container, org_id: str) -> Counter[str]:
    with container.db.read() as session:
        rows = session.execute(
            sa.select(Conversation.status, sa.func.count())
            .where(Conversation.org_id == org_id)
            .group_by(Conversation.status)
        ).all()
    return Counter({status: count for status, count in rows})


def _holders(container: Container, org_id: str) -> list[tuple[str, str]]:
    with container.db.read() as session:
        rows = session.execute(
            sa.select(Conversation.id, Conversation.assigned_to).where(
                Conversation.org_id == org_id, Conversation.status == "active"
            )
        ).all()
    return [(cid, str(user)) for cid, user in rows]


class Steps:
    """The run's time limit, and how long each step took (told when a step runs out of time)."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.last = time.monotonic()
        self.took: dict[str, float] = {}

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.took[name] = round(now - self.last, 1)
        self.last = now

    def check(self, detail: object) -> None:
        assert time.monotonic() < self.deadline, f"out of time at {detail}; steps: {self.took}"


def _settle(container: Container, org_id: str, online_capacity: int, steps: Steps) -> None:
    """Waits until nothing waits while an online agent has a free unit."""
    while True:
        counts = _statuses(container, org_id)
        if counts["open"] == 0 or counts["active"] == online_capacity:
            return
        steps.check(counts)
        time.sleep(0.1)


# Several writer processes are the PostgreSQL deployment; SQLite has one writer.
@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_replies_are_assigned_once_within_capacity_across_processes(
    container: Container, settings: Settings, tmp_path: Path
) -> None:
    steps = Steps(RUN_SECONDS)
    org = create_organization(container.db, container.clock, "Acme")
    _key, admin_key = create_api_key(container.db, container.clock, org.id, Role.ADMIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")}
    env |= {
        "OUTBOUND_DATABASE_URL": settings.resolved_database_url,
        "OUTBOUND_SECRET_KEY": SECRET,
        "OUTBOUND_DATA_DIR": str(tmp_path),
        "OUTBOUND_LOG_LEVEL": "WARNING",
        "OUTBOUND_ROUTING_SWEEP_SECONDS": str(SWEEP_SECONDS),
        "OUTBOUND_SANDBOX_DELIVERY_DELAY": "0",
    }
    api_ports = [_free_port() for _ in range(2)]
    worker_ports = [_free_port() for _ in range(2)]
    stop_heartbeats = threading.Event()
    with ExitStack() as stack:
        for index, port in enumerate(api_ports):
            args = [sys.executable, "-m", "outbound", "serve", "--no-worker", "--port", str(port)]
            stack.enter_context(_started(args, env, tmp_path / f"api-{index}.log"))
        for index, port in enumerate(worker_ports):
            args = [sys.executable, "-m", "outbound", "worker"]
            worker_env = env | {"OUTBOUND_WORKER_METRICS_PORT": str(port)}
            stack.enter_context(_started(args, worker_env, tmp_path / f"worker-{index}.log"))
        for port in api_ports + worker_ports:
            _wait_metrics(port)
        steps.done("start")
        apis = [
            stack.enter_context(httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30))
            for port in api_ports
        ]
        admin = {"Authorization": f"Bearer {admin_key}"}

        agents = []
        for i in range(AGENTS):
            user = _ok(
                apis[i % 2].post(
                    "/v1/users",
                    json={
                        "email": f"agent{i}@example.com",
                        "name": f"Agent {i}",
                        "role": "agent",
                        "capacity": CAPACITY,
                    },
                    headers=admin,
                ),
                201,
            )
            key = _ok(
                apis[i % 2].post(
                    "/v1/api-keys", json={"role": "agent", "user_id": user["id"]}, headers=admin
                ),
                201,
            )
            agents.append(Agent(user["id"], key["key"]))
        queue = _ok(
            apis[0].post(
                "/v1/queues",
                json={"name": "Support", "members": [a.id for a in agents]},
                headers=admin,
            ),
            201,
        )
        assert queue["fallback"] is True
        channel = _ok(
            apis[0].post(
                "/v1/channels",
                json={
                    "name": "SMS",
                    "type": "sms",
                    "provider": "sandbox",
                    "sender": "+15005550006",
                },
                headers=admin,
            ),
            201,
        )
        for i, agent in enumerate(agents):
            status = {"status": "available"}
            _ok(apis[i % 2].put("/v1/users/me/presence", json=status, headers=agent.headers))
        steps.done("set up")

        def heartbeats() -> None:
            # Presence needs a sign of life within 60 s; any request of theirs also counts.
            while not stop_heartbeats.wait(5):
                for i, agent in enumerate(agents):
                    apis[i % 2].post("/v1/users/me/heartbeat", headers=agent.headers)

        beating = threading.Thread(target=heartbeats, daemon=True)
        beating.start()
        stack.callback(beating.join, 10)
        stack.callback(stop_heartbeats.set)

        def reply(i: int) -> None:
            body = {"from": f"+3361{i:07d}", "body": f"Hello, this is customer {i}"}
            response = apis[i % 2].post(channel["webhook_url"], json=body)
            assert response.status_code == 200, response.text

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(reply, range(REPLIES)))
        steps.done("replies")

        # Round 1: every unit taken, the rest waits.
        full = AGENTS * CAPACITY
        _settle(container, org.id, full, steps)
        steps.done("round 1")
        time.sleep(3 * SWEEP_SECONDS)  # sweeps find nothing more to assign
        assert _statuses(container, org.id) == {"active": full, "open": REPLIES - full}
        first = Counter(user for _, user in _holders(container, org.id))
        assert first == {a.id: CAPACITY for a in agents}

        # The last agent goes offline for a while: none of theirs until they are back.
        away = agents[-1]
        offline = {"status": "offline"}
        _ok(apis[1].put("/v1/users/me/presence", json=offline, headers=away.headers))
        by_id = {a.id: a for a in agents}

        def close(index_and_holding: tuple[int, tuple[str, str]]) -> None:
            index, (conversation_id, user_id) = index_and_holding
            path = f"/v1/conversations/{conversation_id}/close"
            _ok(apis[index % 2].post(path, json={}, headers=by_id[user_id].headers))

        rounds = 1
        while _statuses(container, org.id)["closed"] < REPLIES:
            steps.check(_statuses(container, org.id))
            rounds += 1
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(close, enumerate(_holders(container, org.id))))
            steps.done(f"round {rounds} closes")
            if rounds == 3:
                available = {"status": "available"}
                _ok(apis[0].put("/v1/users/me/presence", json=available, headers=away.headers))
            online = full if rounds >= 3 else full - CAPACITY
            _settle(container, org.id, online, steps)
            steps.done(f"round {rounds}")
        assert rounds >= 8  # 30, then 27 and 30 a round: the rounds did take turns

    with container.db.read() as session:
        events = session.execute(
            sa.select(ConversationEvent)
            .where(ConversationEvent.org_id == org.id)
            .order_by(ConversationEvent.id)
        ).scalars()
        history = [
            (e.conversation_id, e.kind, e.from_status, e.to_status, e.to_user_id) for e in events
        ]
        stream = [
            (s.kind, s.payload)
            for s in session.execute(
                sa.select(StreamEvent).where(StreamEvent.org_id == org.id).order_by(StreamEvent.id)
            ).scalars()
        ]
        numbers = session.execute(
            sa.select(sa.func.count(sa.distinct(Conversation.customer_number))).where(
                Conversation.org_id == org.id
            )
        ).scalar_one()
    assert numbers == REPLIES
    _assert_assigned_once_within_capacity(history)
    _assert_only_available_agents(stream, {a.id for a in agents}, away.id)


def _assert_assigned_once_within_capacity(
    history: list[tuple[str, str, str | None, str | None, str | None]],
) -> None:
    """Replays every change in the order it was committed (the ids: each assignment and each
    release of an agent's unit takes the agent's row lock before writing its event)."""
    holder: dict[str, str | None] = {}
    held: defaultdict[str, set[str]] = defaultdict(set)
    assigned: Counter[str] = Counter()
    peak = 0
    for conversation_id, kind, _from, to_status, to_user in history:
        previous = holder.get(conversation_id)
        if kind == "assigned":
            assert previous is None, f"{conversation_id} assigned twice without a release"
            assert to_user is not None
            assigned[conversation_id] += 1
        current = (to_user or previous) if to_status in HOLDING else None
        if previous is not None:
            held[previous].discard(conversation_id)
        if current is not None:
            held[current].add(conversation_id)
            assert len(held[current]) <= CAPACITY, (current, sorted(held[current]))
            peak = max(peak, len(held[current]))
        holder[conversation_id] = current
    assert len(assigned) == REPLIES
    assert set(assigned.values()) == {1}  # one assignment round each: no reassignment here
    assert peak == CAPACITY
    assert not any(held.values())  # all closed in the end
    kinds = Counter(kind for _, kind, *_ in history)
    assert kinds["opened"] == kinds["routed"] == kinds["closed"] == REPLIES, kinds


def _assert_only_available_agents(
    stream: list[tuple[str, dict[str, Any]]], agent_ids: set[str], away_id: str
) -> None:
    """Replays the live updates in id order (presence changes and assignments both lock the
    agent's row before writing theirs): each assignment went to an agent then available."""
    presence: dict[str, str] = {}
    per_agent: Counter[str] = Counter()
    assigned_while_away = 0
    for kind, payload in stream:
        if kind == "presence":
            presence[payload["user_id"]] = payload["status"]
        elif kind in ("conversation.assigned", "conversation.offered"):
            user = payload["assigned_to"] or payload["offered_to"]
            assert presence.get(user) == "available", (kind, payload, presence.get(user))
            per_agent[user] += 1
        if presence.get(away_id) == "offline" and kind == "conversation.assigned":
            assigned_while_away += 1
    assert set(per_agent) == agent_ids  # the away agent took part before and after
    assert sum(per_agent.values()) == REPLIES
    assert assigned_while_away > 0  # the others went on while they were away
