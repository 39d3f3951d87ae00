"""Console benchmark: ``python -m bench.console [--messages 1000000] [--postgres URL]``.

A fresh database is seeded with that many messages of one organisation, spread over the last
seven days on two channels in every status, then the console's pages that read them are
timed through HTTP (the application in process, no worker): for a signed-in admin, the
dashboard (the first page people see), the messages list (its first page, unfiltered and
filtered by status) and the dashboard's figures alone (``DashboardService.summary``, the
queries without rendering); for an agent and for the admin, the agent workspace's first
render (the inbox's tabs, and one conversation opened). Each is asked once to warm up, then
:data:`ROUNDS` times; the median and the slowest are printed. Record results with the
machine in bench/results.md.

One message in :data:`MESSAGES_PER_CONVERSATION` was answered: its customer's conversation
has one to three inbound messages and, once an agent took it, the agent's reply (an outbound
message more). Most conversations are closed; the live ones (:data:`CONVERSATION_STATUSES`)
wait in one of two queues (some offered to an agent) or are assigned to one of
:data:`AGENTS` agents, members of both queues.

The messages are written directly (not through the send path), so their report rollups are
written beside them, as the status path would have left them: one row per hour and per day
and channel, with each message counted at the stage its status says (:data:`STAGES`).
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet
from rich.console import Console
from rich.table import Table

console = Console(width=160)
ROUNDS = 5
SEED_CHUNK = 20_000
PASSWORD = "bench-password-1"
AGENTS = 20
MESSAGES_PER_CONVERSATION = 20
# Out of 200 conversations: 3 open (waiting in a queue, one of them offered to an agent),
# 2 active, 1 waiting, 1 in wrap-up, the rest closed.
CONVERSATION_STATUSES = ["open"] * 3 + ["active"] * 2 + ["waiting"] + ["wrap_up"] + ["closed"] * 193
# Most messages end delivered; the rest spread over the other statuses.
STATUSES = (
    ["delivered"] * 80
    + ["sent"] * 6
    + ["failed"] * 4
    + ["undelivered"] * 4
    + ["queued"] * 2
    + ["skipped"] * 2
    + ["rejected"] * 2
)

STAGES = {
    "delivered": ("sent", "delivered"),
    "sent": ("sent",),
    "failed": ("failed",),
    "undelivered": ("sent", "undelivered"),
    "queued": (),
    "skipped": ("skipped",),
    "rejected": ("rejected",),
}
"""The rollup counters (beside ``requested``) a message in each status adds to."""


def _rollups(
    org_id: str, rows: list[dict[str, Any]], into: dict[tuple[Any, ...], dict[str, int]]
) -> None:
    """Count ``rows`` (messages) into the rollup rows ``into``, per hour and per day."""
    for row in rows:
        hour = row["created_at"].replace(minute=0, second=0, microsecond=0)
        dimensions = (
            row["configuration_id"] or "",
            row["template_id"] or "",
            row["channel_id"],
            "",
            "",
            "",
        )
        for key in (
            (org_id, "hour", hour, *dimensions),
            (org_id, "day", hour.replace(hour=0), *dimensions),
        ):
            values = into.setdefault(key, {})
            values["requested"] = values.get("requested", 0) + 1
            for stage in STAGES[row["status"]]:
                values[stage] = values.get(stage, 0) + 1
            if "sent" in STAGES[row["status"]]:
                values["segments"] = values.get("segments", 0) + 1


def _conversations(
    rows: list[dict[str, Any]], first: int, agents: list[str], queues: list[str], now: datetime
) -> dict[str, list[dict[str, Any]]]:
    """The conversations of the messages ``rows`` (the first's index ``first``) that were
    answered, with their inbound messages, agents' replies and recipients."""
    made: dict[str, list[dict[str, Any]]] = {
        "conversations": [],
        "inbound": [],
        "replies": [],
        "recipients": [],
    }
    for offset, row in enumerate(rows):
        index = first + offset
        if index % MESSAGES_PER_CONVERSATION != 3:
            continue
        number = index // MESSAGES_PER_CONVERSATION
        status = CONVERSATION_STATUSES[number % len(CONVERSATION_STATUSES)]
        # Each block of statuses to the next agents, so that every agent has some of each.
        agent = agents[(number + number // len(CONVERSATION_STATUSES)) % len(agents)]
        conversation_id = str(uuid.uuid4())
        started = min(now, row["created_at"] + timedelta(minutes=3))
        received = [min(now, started + timedelta(minutes=2 * i)) for i in range(1 + number % 3)]
        made["inbound"] += [
            {
                "id": str(uuid.uuid4()),
                "org_id": row["org_id"],
                "channel_id": row["channel_id"],
                "provider": "sandbox",
                "provider_message_id": f"SMIN{index}-{i}",
                "from_number": row["to_number"],
                "to_number": "+15005550006",
                "body": "Yes, but can we move it to Thursday?",
                "raw": {},
                "in_reply_to": row["id"],
                "conversation_id": conversation_id,
                "received_at": at,
            }
            for i, at in enumerate(received)
        ]
        replied = None
        if status != "open":
            replied = min(now, received[0] + timedelta(minutes=1))
            made["replies"].append(
                {
                    **row,
                    "id": str(uuid.uuid4()),
                    "template_id": None,
                    "body": "Thursday works: see you then.",
                    "status": "delivered",
                    "conversation_id": conversation_id,
                    "sent_by_user_id": agent,
                    "scheduled_at": replied,
                    "created_at": replied,
                    "updated_at": replied,
                }
            )
        last = max(received[-1], replied or received[-1])
        offered = status == "open" and number % len(CONVERSATION_STATUSES) == 0
        made["conversations"].append(
            {
                "id": conversation_id,
                "org_id": row["org_id"],
                "channel_id": row["channel_id"],
                "configuration_id": row["configuration_id"],
                "customer_number": row["to_number"],
                "status": status,
                "assigned_to": None if status == "open" else agent,
                "created_at": started,
                "updated_at": last,
                "last_message_at": last,
                "queue_id": queues[number % len(queues)],
                "priority": 0,
                "required_skills": [],
                "answered_message_id": row["id"],
                "waiting_since": started if status == "open" else None,
                "offered_to": agent if offered else None,
                "offer_expires_at": now + timedelta(minutes=1) if offered else None,
                "assigned_at": replied,
                "first_response_at": replied,
                "last_agent_message_at": replied,
                "last_customer_message_at": received[-1],
                "closed_at": last if status == "closed" else None,
                "version": 1,
            }
        )
        made["recipients"].append(
            {
                "id": str(uuid.uuid4()),
                "org_id": row["org_id"],
                "channel_id": row["channel_id"],
                "number": row["to_number"],
                "opted_out": False,
                "last_inbound_at": received[-1],
                "updated_at": received[-1],
            }
        )
    return made


def _seed(container: Any, org_id: str, count: int, agents: list[str]) -> float:
    from outbound.adapters.db.models import (
        ROLLUP_DIMENSIONS,
        Conversation,
        InboundMessage,
        Message,
        MessageRollup,
        Recipient,
    )
    from outbound.domain.reports import COUNTERS
    from outbound.schemas import ChannelCreate, ConfigurationCreate, QueueCreate, TemplateCreate

    channels = [
        container.channels.create(
            org_id,
            ChannelCreate(name=f"SMS {n}", type="sms", provider="sandbox", sender=sender),
        )
        for n, sender in ((1, "+15005550006"), (2, "+15005550007"))
    ]
    template = container.templates.create(
        org_id,
        TemplateCreate(
            name="Bench", channel_type="sms", default_locale="en", default_text="Hi {Name}"
        ),
    )
    config = container.configurations.create(
        org_id,
        ConfigurationCreate(
            name="Bench", channel_type="sms", channel_id=channels[0].id, template_id=template.id
        ),
    )
    queues = [
        container.queues.create_queue(org_id, QueueCreate(name=name, members=agents)).id
        for name in ("Sales", "Support")
    ]
    now = container.clock.now()
    span = timedelta(days=7).total_seconds()
    started = time.perf_counter()
    rollups: dict[tuple[Any, ...], dict[str, int]] = {}
    for first in range(0, count, SEED_CHUNK):
        rows = []
        for index in range(first, min(count, first + SEED_CHUNK)):
            created = now - timedelta(seconds=span * (count - index) / count)
            number = f"+3361{index % 10_000_000:07d}"
            rows.append(
                {
                    "id": str(uuid.uuid4()),
                    "org_id": org_id,
                    "contact_index": 0,
                    "configuration_id": config.id,
                    "channel_id": channels[index % 2].id,
                    "template_id": template.id,
                    "channel_type": "sms",
                    "provider": "sandbox",
                    "to_raw": number,
                    "to_number": number,
                    "body": "Hi Ana",
                    "status": STATUSES[index % len(STATUSES)],
                    "max_attempts": 8,
                    "attempts": 1,
                    "scheduled_at": created,
                    "created_at": created,
                    "updated_at": created,
                }
            )
        made = _conversations(rows, first, agents, queues, now)
        with container.db.transaction() as session:
            session.execute(sa.insert(Message), rows)
            if made["replies"]:
                session.execute(sa.insert(Message), made["replies"])
            if made["conversations"]:
                session.execute(sa.insert(Conversation), made["conversations"])
                session.execute(sa.insert(InboundMessage), made["inbound"])
                session.execute(sa.insert(Recipient), made["recipients"])
        _rollups(org_id, rows + made["replies"], rollups)
    names = ("org_id", "period", "starts_at", *ROLLUP_DIMENSIONS)
    zeros = dict.fromkeys(c.name for c in MessageRollup.__table__.c if c.name not in names)
    with container.db.transaction() as session:
        session.execute(
            sa.insert(MessageRollup.__table__),
            [
                {**{n: 0 for n in zeros}, **dict(zip(names, key, strict=True)), **values}
                for key, values in rollups.items()
            ],
        )
    assert set(COUNTERS) >= {stage for stages in STAGES.values() for stage in stages}
    return time.perf_counter() - started


def _timed(call: Callable[[], Any]) -> tuple[float, float]:
    call()
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def _opened(container: Any, agents: list[str]) -> tuple[str, str]:
    """The conversation the bench opens, the latest active one, and its agent's email."""
    from outbound.adapters.db.models import Conversation

    with container.db.read() as session:
        found = session.execute(
            sa.select(Conversation.id, Conversation.assigned_to)
            .where(Conversation.status == "active")
            .order_by(Conversation.created_at.desc())
            .limit(1)
        ).one()
    return found.id, f"agent{agents.index(found.assigned_to)}@example.com"


def _token(client: Any, path: str) -> str:
    page = client.get(path).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, page
    return token.group(1)


def _sign_in(client: Any, email: str) -> None:
    answer = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": _token(client, "/login")},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def _sign_out(client: Any) -> None:
    client.post("/logout", data={"csrf_token": _token(client, "/account")})


def run(count: int, postgres: str | None) -> None:
    from fastapi.testclient import TestClient

    from outbound.app import build_container, create_app
    from outbound.config import Settings
    from outbound.console.routes.workspace import VIEWS
    from outbound.schemas import UserCreate
    from outbound.services.auth import create_organization

    with tempfile.TemporaryDirectory(prefix="outbound-bench-console-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        if postgres:
            admin = sa.create_engine(postgres, isolation_level="AUTOCOMMIT")
            name = f"outbound_bench_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            url = sa.make_url(postgres).set(database=name).render_as_string(hide_password=False)
        settings = Settings(
            data_dir=Path(tmp), database_url=url, secret_key=Fernet.generate_key().decode()
        )
        container = build_container(settings)
        try:
            container.migrate()
            org = create_organization(container.db, container.clock, "Bench")
            container.users.create(
                org.id,
                UserCreate(email="admin@example.com", name="A", role="admin", password=PASSWORD),
            )
            agents = [
                container.users.create(
                    org.id,
                    UserCreate(
                        email=f"agent{n}@example.com",
                        name=f"Agent {n}",
                        role="agent",
                        password=PASSWORD,
                    ),
                ).id
                for n in range(AGENTS)
            ]
            seed_seconds = _seed(container, org.id, count, agents)
            opened, agent = _opened(container, agents)
            with TestClient(create_app(container, run_worker=False)) as client:

                def get(path: str) -> Callable[[], Any]:
                    def call() -> None:
                        response = client.get(path)
                        assert response.status_code == 200, (path, response.status_code)

                    return call

                _sign_in(client, "admin@example.com")
                measures = {
                    "GET /dashboard": _timed(get("/dashboard")),
                    "DashboardService.summary": _timed(lambda: container.dashboard.summary(org.id)),
                    "GET /messages": _timed(get("/messages")),
                    "GET /messages?status=failed": _timed(get("/messages?status=failed")),
                }
                for who, views in (("agent", ("mine", "unassigned")), ("admin", VIEWS)):
                    if who == "agent":
                        _sign_out(client)
                        _sign_in(client, agent)
                    for view in views:
                        path = f"/workspace?view={view}"
                        measures[f"{who}: GET {path}"] = _timed(get(path))
                    measures[f"{who}: GET /workspace/{{id}}"] = _timed(get(f"/workspace/{opened}"))
        finally:
            container.db.dispose()
            if postgres:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    backend = "PostgreSQL" if postgres else "SQLite"
    table = Table(
        title=f"console pages, {count:,} messages on {backend} "
        f"(seeded in {seed_seconds:.0f} s); {platform.machine()}, {platform.python_version()}"
    )
    for column in ("what", "median ms", "slowest ms"):
        table.add_column(column)
    for what, (median, slowest) in measures.items():
        table.add_row(what, f"{median:.0f}", f"{slowest:.0f}")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="a PostgreSQL URL on which databases may be created")
    args = parser.parse_args()
    postgres = args.postgres
    if postgres and postgres.startswith(("postgresql://", "postgres://")):
        postgres = "postgresql+psycopg://" + postgres.split("://", 1)[1]
    run(args.messages, postgres)


if __name__ == "__main__":
    main()
