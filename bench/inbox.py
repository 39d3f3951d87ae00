"""The inbox among years of closed conversations: ``python -m bench.inbox``.

Seeds one organisation with ``--conversations`` conversations (1,000,000 by default), all
closed but a few live ones (open, active, waiting) spread among them, then times the three
lists the workspace's inbox asks for (``ConversationService.list``: the unassigned ones of a
queue, every live one, one agent's), on SQLite and, with ``--postgres URL``, on a database
created there and dropped after. Each figure is the best of five, after one warm-up.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet
from rich.console import Console
from rich.progress import track
from rich.table import Table

from outbound.adapters.db.models import Conversation
from outbound.app import build_container
from outbound.config import Settings
from outbound.services.auth import create_organization

LIVE = {"open": 10, "active": 5, "waiting": 3}
CHUNK = 20_000


def _best_ms(list_them: Callable[[], Any]) -> tuple[float, int]:
    list_them()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        rows = len(list_them().data)
        times.append(time.perf_counter() - start)
    return min(times) * 1000, rows


def run(count: int, url: str | None, data_dir: Path) -> dict[str, tuple[float, int]]:
    settings = Settings(
        data_dir=data_dir,
        secret_key=Fernet.generate_key().decode(),
        **({"database_url": url} if url else {}),
    )
    c = build_container(settings)
    c.migrate()
    org = create_organization(c.db, c.clock, "Bench")
    now = datetime.now(UTC)
    statuses = ["closed"] * count
    rng = random.Random(7)
    places = iter(rng.sample(range(count), sum(LIVE.values())))
    for status, how_many in LIVE.items():
        for _ in range(how_many):
            statuses[next(places)] = status

    def row(i: int) -> dict[str, Any]:
        at = now - timedelta(minutes=count - i)
        return {
            "id": str(uuid.uuid4()),
            "org_id": org.id,
            "channel_id": "channel",
            "customer_number": f"+3361{i % 10_000_000:07d}",
            "status": statuses[i],
            "assigned_to": "agent" if statuses[i] in ("active", "waiting") else None,
            "queue_id": "queue",
            "created_at": at,
            "updated_at": at,
            "last_message_at": at,
            "priority": 0,
            "required_skills": [],
            "version": 1,
        }

    with c.db.transaction() as session:
        for start in track(range(0, count, CHUNK), description="seeding conversations"):
            end = min(count, start + CHUNK)
            session.execute(sa.insert(Conversation), [row(i) for i in range(start, end)])
    if c.db.dialect == "postgresql":
        with c.db.transaction() as session:
            session.execute(sa.text("ANALYZE conversations"))
    lists = c.conversations
    live = "open,active,waiting,wrap_up"
    return {
        "unassigned in a queue": _best_ms(
            lambda: lists.list(org.id, "open", None, 200, available_to="agent", queue_ids=["queue"])
        ),
        "every live one": _best_ms(lambda: lists.list(org.id, live, None, 200)),
        "one agent's": _best_ms(
            lambda: lists.list(org.id, "active,waiting,wrap_up", None, 200, assigned_to="agent")
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="a PostgreSQL URL on which databases may be created")
    args = parser.parse_args()
    results: dict[str, dict[str, tuple[float, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="outbound-bench-inbox-") as tmp:
        results["SQLite"] = run(args.conversations, None, Path(tmp))
    if args.postgres:
        base = "postgresql+psycopg://" + args.postgres.split("://", 1)[1]
        admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        name = f"outbound_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            url = sa.make_url(base).set(database=name).render_as_string(hide_password=False)
            with tempfile.TemporaryDirectory(prefix="outbound-bench-inbox-") as tmp:
                results["PostgreSQL"] = run(args.conversations, url, Path(tmp))
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    live = sum(LIVE.values())
    table = Table(
        title=f"the inbox's lists among {args.conversations:,} conversations, {live} live"
    )
    table.add_column("list")
    for database in results:
        table.add_column(f"{database} ms (rows)", justify="right")
    for name in next(iter(results.values())):
        table.add_row(name, *(f"{r[name][0]:.1f} ({r[name][1]})" for r in results.values()))
    Console().print(table)


if __name__ == "__main__":
    main()
