"""Two worker processes on one PostgreSQL database run flows: a scheduled time fires once, and
every contact of an instant run gets exactly one message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from outbound.adapters.db.models import FlowRun, Message
from outbound.app import Container
from outbound.config import Settings
from tests.helpers import SECRET, Setup, Tenant
from tests.integration.test_flow_engine import add_contacts

SCHEDULED = """\
name: at-once
configuration: Case updates
trigger: {{type: scheduled, at: "{at}"}}
conditions: [{{field: contact.custom.segment, value: scheduled}}]
recipient: {{contextitems: {{CaseName: "{{contact.custom.ref}}"}}}}
"""
INSTANT = """\
name: everyone
configuration: Case updates
trigger: {type: instant}
conditions: [{field: contact.custom.segment, value: gold}]
recipient: {contextitems: {CaseName: "{contact.custom.ref}"}}
"""


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_two_worker_processes_share_flows(
    tenant: Tenant, setup: Setup, container: Container, settings: Settings, tmp_path: Path
) -> None:
    for i in range(3):
        add_contacts(
            container,
            tenant.org_id,
            1,
            mobile_phone=f"+3365000000{i}",
            custom={"segment": "scheduled", "ref": "S"},
        )
    gold = 250
    add_contacts(container, tenant.org_id, gold)
    # A few seconds ahead on the real clock, which the worker processes use.
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    container.flows.apply(tenant.org_id, SCHEDULED.format(at=at.isoformat()))
    container.flows.apply(tenant.org_id, INSTANT)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "outbound", "worker"],
            env={
                **base_env,
                "OUTBOUND_DATABASE_URL": settings.resolved_database_url,
                "OUTBOUND_SECRET_KEY": SECRET,
                "OUTBOUND_DATA_DIR": str(tmp_path),
                "OUTBOUND_WORKER_POLL_INTERVAL": "0.1",
                "OUTBOUND_LOG_LEVEL": "WARNING",
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        run = container.flows.start_run(tenant.org_id, "everyone")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with container.db.read() as session:
                count = session.execute(
                    sa.select(sa.func.count()).select_from(Message)
                ).scalar_one()
                finished = session.execute(
                    sa.select(sa.func.count())
                    .select_from(FlowRun)
                    .where(FlowRun.status == "completed")
                ).scalar_one()
            if count >= gold + 3 and finished >= 2:
                break
            time.sleep(0.2)
        time.sleep(1.0)  # anything sent twice would show up now
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(20)
    with container.db.read() as session:
        runs = session.execute(sa.select(FlowRun.trigger, FlowRun.status, FlowRun.queued)).all()
        numbers = Counter(session.execute(sa.select(Message.to_number)).scalars())
    assert sorted(runs) == [("manual", "completed", gold), ("schedule", "completed", 3)], runs
    assert len(numbers) == gold + 3
    assert set(numbers.values()) == {1}
    assert container.flows.get_run(tenant.org_id, run.id).batches == 3
