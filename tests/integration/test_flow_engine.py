"""The flow engine on SQLite and PostgreSQL: batching, quota waits, crash resume, schedules."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from outbound.adapters.db.models import Contact, FlowRun, FlowRunBatch, Message, new_id
from outbound.app import Container
from outbound.schemas import FlowRunIn
from outbound.services import flow_runs
from outbound.services.events import record_event
from outbound.services.sending import SendService
from outbound.testing import FakeClock
from tests.helpers import Setup, Tenant

INSTANT = """\
name: everyone
configuration: Case updates
trigger:
  type: instant
source:
  records: contacts
conditions:
  - field: contact.custom.segment
    op: eq
    value: gold
recipient:
  contextitems:
    CaseName: "{contact.custom.ref}"
"""


def add_contacts(container: Container, org_id: str, count: int, **overrides: Any) -> list[str]:
    now = container.clock.now()
    rows = []
    for i in range(count):
        row = {
            "id": new_id(),
            "org_id": org_id,
            "external_id": None,
            "name": f"Customer {i}",
            "mobile_phone": f"+336{10000000 + i:08d}",
            "whatsapp_number": None,
            "preferred_language": "fr-FR" if i % 2 else "en-US",
            "consent_sms": True,
            "consent_whatsapp": False,
            "time_zone": None,
            "custom": {"segment": "gold", "ref": f"R-{i}"},
            "created_at": now,
            "updated_at": now,
        }
        row.update(overrides)
        rows.append(row)
    with container.db.transaction() as session:
        session.execute(sa.insert(Contact), rows)
    return [r["id"] for r in rows]


def messages(container: Container, org_id: str) -> list[Message]:
    with container.db.read() as session:
        return list(
            session.execute(sa.select(Message).where(Message.org_id == org_id)).scalars().all()
        )


def run_row(container: Container, run_id: str) -> FlowRun:
    with container.db.read() as session:
        run = session.get(FlowRun, run_id)
        assert run is not None
        return run


def test_instant_run_sends_in_batches_of_100(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    add_contacts(container, tenant.org_id, 230)
    add_contacts(container, tenant.org_id, 20, custom={"segment": "silver", "ref": "x"})
    add_contacts(container, tenant.org_id, 5, consent_sms=False)
    container.flows.apply(tenant.org_id, INSTANT)
    run = container.flows.start_run(tenant.org_id, "everyone")
    container.flow_engine("w1").run_until_idle()

    done = run_row(container, run.id)
    assert done.status == "completed"
    assert (done.total, done.scanned, done.matched) == (255, 255, 235)
    assert (done.queued, done.skipped, done.rejected) == (230, 5, 0)
    with container.db.read() as session:
        sizes = [
            b.queued + b.skipped + b.rejected
            for b in session.execute(
                sa.select(FlowRunBatch)
                .where(FlowRunBatch.run_id == run.id)
                .order_by(FlowRunBatch.seq)
            ).scalars()
        ]
    assert sizes == [100, 100, 35]
    sent = messages(container, tenant.org_id)
    assert len(sent) == 235
    assert {m.body for m in sent if m.to_number == "+33610000001"} == {
        "Bonjour Customer 1, dossier R-1 mis à jour."
    }


def test_quota_makes_the_run_wait_not_fail(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    from outbound.services.auth import set_limits

    set_limits(container.db, tenant.org_id, max_contacts_per_request=None, hourly_request_quota=2)
    add_contacts(container, tenant.org_id, 250)
    container.flows.apply(tenant.org_id, INSTANT)
    run = container.flows.start_run(tenant.org_id, "everyone")
    engine = container.flow_engine("w1")
    engine.run_until_idle()

    waiting = run_row(container, run.id)
    assert waiting.status == "running"
    assert waiting.queued == 200
    assert waiting.wait_reason is not None and "quota" in waiting.wait_reason
    assert waiting.due_at > clock.now()
    assert waiting.error_count == 0

    clock.set(waiting.due_at)
    engine.run_until_idle()
    done = run_row(container, run.id)
    assert done.status == "completed"
    assert done.queued == 250
    assert len(messages(container, tenant.org_id)) == 250


class Crash(BaseException):
    """Stands for the process dying (not an error the engine handles)."""


def test_crash_after_sending_resumes_without_duplicates(
    tenant: Tenant,
    setup: Setup,
    container: Container,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_contacts(container, tenant.org_id, 250)
    container.flows.apply(tenant.org_id, INSTANT)
    run = container.flows.start_run(tenant.org_id, "everyone")
    real_send = SendService.send
    calls = {"n": 0}

    def send_then_die(self: SendService, *args: Any, **kwargs: Any) -> Any:
        result = real_send(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            raise Crash  # the batch's messages are committed; its checkpoint is not
        return result

    monkeypatch.setattr(SendService, "send", send_then_die)
    with pytest.raises(Crash):
        container.flow_engine("w1").run_until_idle()
    monkeypatch.setattr(SendService, "send", real_send)
    assert len(messages(container, tenant.org_id)) == 200

    # Another worker takes the run over once the dead worker's lease has expired.
    other = container.flow_engine("w2")
    other.run_until_idle()
    assert run_row(container, run.id).status == "running"  # lease still held by w1
    clock.advance(container.settings.lease_seconds + 1)
    other.run_until_idle()

    done = run_row(container, run.id)
    assert done.status == "completed"
    assert (done.queued, done.batches) == (250, 3)
    per_number = Counter(m.to_number for m in messages(container, tenant.org_id))
    assert len(per_number) == 250
    assert set(per_number.values()) == {1}


def test_crash_before_sending_resumes_with_the_written_batch(
    tenant: Tenant,
    setup: Setup,
    container: Container,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_contacts(container, tenant.org_id, 150)
    container.flows.apply(tenant.org_id, INSTANT)
    run = container.flows.start_run(tenant.org_id, "everyone")

    def die(self: SendService, *args: Any, **kwargs: Any) -> Any:
        raise Crash

    monkeypatch.setattr(SendService, "send", die)
    with pytest.raises(Crash):
        container.flow_engine("w1").run_until_idle()
    monkeypatch.undo()
    assert messages(container, tenant.org_id) == []
    # The first batch was written down before the crash: a contact of it renamed meanwhile
    # is still sent what the batch holds (the batch is resent as it was, same key and body).
    with container.db.read() as session:
        batch = session.execute(
            sa.select(FlowRunBatch).where(FlowRunBatch.run_id == run.id)
        ).scalar_one()
    assert batch.status == "pending" and batch.contacts is not None
    written = batch.contacts[0]
    with container.db.transaction() as session:
        renamed = session.execute(
            sa.select(Contact).where(Contact.mobile_phone == written["tocontactid"])
        ).scalar_one()
        renamed.name = "Renamed"
    clock.advance(container.settings.lease_seconds + 1)
    container.flow_engine("w2").run_until_idle()
    done = run_row(container, run.id)
    assert done.status == "completed"
    assert (done.queued, done.batches) == (150, 2)
    sent = messages(container, tenant.org_id)
    assert len(sent) == 150
    (first,) = [m for m in sent if m.to_number == written["tocontactid"]]
    assert first.body is not None
    assert written["contextitems"]["CustomerName"] in first.body
    assert "Renamed" not in first.body


def test_cancel_stops_a_run(tenant: Tenant, setup: Setup, container: Container) -> None:
    add_contacts(container, tenant.org_id, 300)
    container.flows.apply(tenant.org_id, INSTANT)
    run = container.flows.start_run(tenant.org_id, "everyone")
    engine = container.flow_engine("w1")
    assert engine.claim() == [run.id]
    engine.execute(run.id, max_batches=1)
    container.flows.cancel_run(tenant.org_id, run.id)
    engine.run_until_idle()
    done = run_row(container, run.id)
    assert done.status == "canceled"
    assert done.queued == 100
    assert len(messages(container, tenant.org_id)) == 100


AUTOMATIC = """\
name: case-created
configuration: Case updates
trigger:
  type: automatic
  event: case.created
conditions:
  - {field: case.status, op: eq, value: active}
"""


def raise_event(container: Container, org_id: str, type_: str, data: dict[str, Any]) -> int:
    with container.db.transaction() as session:
        event = record_event(
            session,
            org_id=org_id,
            type=type_,
            record_type="case",
            record_id=data["case"]["id"],
            data=data,
            source="test",
            now=container.clock.now(),
        )
        return event.id


def case_data(status: str = "active", number: str = "CAS-7") -> dict[str, Any]:
    return {
        "case": {"id": new_id(), "number": number, "title": "Broken", "status": status},
        "contact": {
            "name": "Ana",
            "mobile_phone": "+33612345678",
            "preferred_language": "fr-FR",
            "consent": {"sms": True, "whatsapp": False},
        },
    }


def test_events_start_one_run_per_matching_flow(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    container.flows.apply(tenant.org_id, AUTOMATIC)
    raise_event(container, tenant.org_id, "case.created", case_data())
    raise_event(container, tenant.org_id, "case.created", case_data(status="canceled"))
    raise_event(container, tenant.org_id, "case.updated", case_data())
    engine = container.flow_engine("w1")
    engine.run_until_idle()
    engine.run_until_idle()  # nothing is started twice
    sent = messages(container, tenant.org_id)
    assert len(sent) == 1
    assert sent[0].body == "Bonjour Ana, dossier Broken mis à jour."
    assert sent[0].regarding_object_id is not None
    with container.db.read() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(FlowRun)).scalar() == 1


SCHEDULED = """\
name: weekly
configuration: Case updates
trigger:
  type: scheduled
  cron: "0 9 * * *"
  timezone: Europe/Paris
  on_missed: {policy}
"""


@pytest.mark.parametrize(("policy", "runs"), [("run_once", 1), ("run_all", 3), ("skip", 0)])
def test_schedules_catch_up_as_the_flow_says(
    tenant: Tenant,
    setup: Setup,
    container: Container,
    clock: FakeClock,
    policy: str,
    runs: int,
) -> None:
    clock.set(datetime(2026, 1, 15, 7, 0, tzinfo=UTC))  # 08:00 in Paris
    add_contacts(container, tenant.org_id, 3)
    container.flows.apply(tenant.org_id, SCHEDULED.format(policy=policy))
    engine = container.flow_engine("w1")
    engine.run_until_idle()
    assert len(messages(container, tenant.org_id)) == 0
    # Down for three days: 09:00 Paris passed on the 15th, 16th and 17th.
    clock.set(datetime(2026, 1, 17, 12, 0, tzinfo=UTC))
    engine.run_until_idle()
    with container.db.read() as session:
        fired = session.execute(sa.select(FlowRun)).scalars().all()
    assert len(fired) == runs
    assert len(messages(container, tenant.org_id)) == 3 * runs
    # On time the next day: every policy fires once.
    clock.set(datetime(2026, 1, 18, 8, 0, 30, tzinfo=UTC))
    engine.run_until_idle()
    assert len(messages(container, tenant.org_id)) == 3 * (runs + 1)


def test_schedule_fires_once_with_two_workers(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 1, 15, 7, 0, tzinfo=UTC))
    add_contacts(container, tenant.org_id, 2)
    container.flows.apply(tenant.org_id, SCHEDULED.format(policy="run_once"))
    clock.set(datetime(2026, 1, 15, 8, 0, 1, tzinfo=UTC))
    engines = [container.flow_engine(f"w{i}") for i in range(2)]
    barrier = threading.Barrier(2)
    fired: list[int] = []

    def fire(engine: Any) -> None:
        barrier.wait()
        fired.append(engine.fire_schedules())

    threads = [threading.Thread(target=fire, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(fired) == [0, 1]
    for engine in engines:
        engine.run_until_idle()
    assert len(messages(container, tenant.org_id)) == 2


DELAYED = """\
name: follow-up
configuration: Case updates
trigger:
  type: automatic
  event: case.resolved
  delay: 24h
conditions:
  - {field: case.status, op: eq, value: resolved}
"""


def test_delay_after_event_checks_the_record_again(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    from outbound.adapters.db.models import Case

    container.flows.apply(tenant.org_id, DELAYED)
    now = clock.now()
    contact_id = add_contacts(container, tenant.org_id, 1)[0]
    case_ids = [new_id(), new_id()]
    with container.db.transaction() as session:
        for i, case_id in enumerate(case_ids):
            session.add(
                Case(
                    id=case_id,
                    org_id=tenant.org_id,
                    number=f"CAS-{i}",
                    title=f"Case {i}",
                    contact_id=contact_id,
                    status="resolved",
                    custom={},
                    created_at=now,
                    updated_at=now,
                    resolved_at=now,
                )
            )
    for case_id in case_ids:
        raise_event(
            container,
            tenant.org_id,
            "case.resolved",
            {"case": {"id": case_id, "status": "resolved"}, "contact": None},
        )
    engine = container.flow_engine("w1")
    engine.run_until_idle()
    assert messages(container, tenant.org_id) == []
    # The second case is reopened before the day is over.
    with container.db.transaction() as session:
        reopened = session.get(Case, case_ids[1])
        assert reopened is not None
        reopened.status = "active"
    clock.advance(24 * 3600)
    engine.run_until_idle()
    sent = messages(container, tenant.org_id)
    assert [m.regarding_object_id for m in sent] == [case_ids[0]]
    assert sent[0].body is not None and "Case 0" in sent[0].body


def test_a_run_of_a_csv_list(tenant: Tenant, setup: Setup, container: Container) -> None:
    container.flows.apply(
        tenant.org_id,
        "name: weather\nconfiguration: Case updates\ntrigger: {type: instant}\n"
        "source: {records: csv}\nrecipient:\n  optin: true\n"
        "  contextitems: {CaseName: '{record.order}'}\n",
    )
    lines = [
        "\ufeffname,mobile_phone,order\n",
        "Ana,+33612345678,A-1\n",
        '"Bo, Jr",+33612345679,"B-2"\n',
        "Cy,not a number,C-3\n",
        "Di,,D-4\n",
    ]
    run = container.flows.start_run(tenant.org_id, "weather", csv_lines=lines)
    assert run.total == 4
    container.flow_engine("w1").run_until_idle()
    done = container.flows.get_run(tenant.org_id, run.id)
    assert (done.status.value, done.queued, done.rejected) == ("completed", 2, 2)
    fields = {e.field for e in done.errors}
    assert "tocontactid" in fields
    bodies = sorted(m.body or "" for m in messages(container, tenant.org_id) if m.body)
    assert bodies == [
        "Hi Ana, case A-1 was updated.",
        "Hi Bo, Jr, case B-2 was updated.",
    ]
    with container.db.read() as session:
        from outbound.adapters.db.models import FlowRunRow

        assert session.execute(sa.select(sa.func.count()).select_from(FlowRunRow)).scalar() == 0


def test_time_relative_conditions_use_the_clock(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    add_contacts(container, tenant.org_id, 2)
    container.flows.apply(tenant.org_id, INSTANT)
    old = clock.now() - timedelta(days=30)
    with container.db.transaction() as session:
        first = session.execute(sa.select(Contact).limit(1)).scalar_one()
        first.created_at = old
    run = container.flows.start_run(
        tenant.org_id,
        "everyone",
        data=FlowRunIn(conditions=[{"field": "contact.created_at", "op": "since", "value": "7d"}]),
    )
    container.flow_engine("w1").run_until_idle()
    assert container.flows.get_run(tenant.org_id, run.id).queued == 1


def test_seen_events_are_deleted_after_their_retention(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    from outbound.adapters.db.models import Event

    raise_event(container, tenant.org_id, "case.created", case_data())
    engine = container.flow_engine("w1")
    engine.run_until_idle()
    raise_event(container, tenant.org_id, "case.created", case_data())  # not seen yet
    clock.advance(container.settings.event_retention_days * 86400 + 1)
    assert engine.purge_events() == 1
    with container.db.read() as session:
        left = session.execute(sa.select(Event.processed_at)).scalars().all()
    assert left == [None]


def test_sparse_matches_checkpoint_as_the_source_is_read(
    tenant: Tenant, setup: Setup, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flow_runs, "SCAN_LIMIT", 50)
    add_contacts(container, tenant.org_id, 160, custom={"segment": "silver", "ref": "x"})
    add_contacts(container, tenant.org_id, 2)
    container.flows.apply(tenant.org_id, INSTANT)
    run = container.flows.start_run(tenant.org_id, "everyone")
    engine = container.flow_engine("w1")
    assert engine.claim() == [run.id]
    progress: list[int] = []
    engine.execute(run.id, progress=lambda state: progress.append(state.scanned))
    # The cursor moves on by at most 50 records at a time, batch or no batch.
    steps = [b - a for a, b in itertools.pairwise(progress) if b != a]
    assert steps and max(steps) <= 50
    assert sum(steps) == 162
    done = run_row(container, run.id)
    assert (done.status, done.scanned, done.matched, done.queued) == ("completed", 162, 2, 2)


def test_a_run_keeps_the_definition_it_started_with(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    add_contacts(container, tenant.org_id, 3)
    container.flows.apply(tenant.org_id, INSTANT)
    run = container.flows.start_run(tenant.org_id, "everyone")
    container.flows.apply(tenant.org_id, INSTANT.replace("value: gold", "value: nobody"))
    container.flow_engine("w1").run_until_idle()
    assert run_row(container, run.id).queued == 3


def test_events_of_runs_still_to_come_outlive_their_retention(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    from outbound.adapters.db.models import Event

    container.flows.apply(
        tenant.org_id,
        DELAYED.replace("delay: 24h", "delay: 60d")
        .replace("conditions:\n", "")
        .replace("  - {field: case.status, op: eq, value: resolved}\n", ""),
    )
    raise_event(container, tenant.org_id, "case.resolved", case_data(status="resolved"))
    engine = container.flow_engine("w1")
    engine.run_until_idle()
    clock.advance(container.settings.event_retention_days * 86400 + 1)
    assert engine.purge_events() == 0
    with container.db.read() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Event)).scalar() == 1


def test_external_events_see_the_contact_they_name(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    contact_id = add_contacts(container, tenant.org_id, 1)[0]
    container.flows.apply(
        tenant.org_id,
        "name: ext\nconfiguration: Case updates\n"
        "trigger: {type: automatic, event: order.delayed}\n"
        "conditions:\n  - {field: contact.mobile_phone, op: exists}\n"
        "recipient: {contextitems: {CaseName: '{record.order}'}}\n",
    )
    with container.db.transaction() as session:
        record_event(
            session,
            org_id=tenant.org_id,
            type="order.delayed",
            record_type="external",
            record_id=None,
            data={"record": {"order": "SO-1", "contact_id": contact_id}},
            source="external",
            now=container.clock.now(),
        )
    container.flow_engine("w1").run_until_idle()
    sent = messages(container, tenant.org_id)
    assert [m.body for m in sent] == ["Hi Customer 0, case SO-1 was updated."]


def test_a_one_time_schedule_fires_once(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 1, 15, 7, 0, tzinfo=UTC))
    add_contacts(container, tenant.org_id, 2)
    flow, _ = container.flows.apply(
        tenant.org_id,
        "name: once\nconfiguration: Case updates\n"
        "trigger: {type: scheduled, at: '2026-01-20T09:30:00', timezone: Europe/Paris}\n",
    )
    assert flow.next_fire_at == datetime(2026, 1, 20, 8, 30, tzinfo=UTC)
    engine = container.flow_engine("w1")
    clock.set(datetime(2026, 1, 20, 8, 29, tzinfo=UTC))
    engine.run_until_idle()
    assert messages(container, tenant.org_id) == []
    clock.set(datetime(2026, 1, 20, 8, 31, tzinfo=UTC))
    engine.run_until_idle()
    clock.advance(86400 * 400)
    engine.run_until_idle()
    assert len(messages(container, tenant.org_id)) == 2
    assert container.flows.get(tenant.org_id, "once").next_fire_at is None


def test_flows_hold_messages_to_the_contacts_own_window(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    tenant.patch(
        f"/v1/outbound-configurations/{setup.config_id}",
        {"contact_window": {"start": "09:00", "end": "18:00"}},
    )
    clock.set(datetime(2026, 1, 15, 15, 0, tzinfo=UTC))  # 16:00 in Paris, 10:00 in New York
    add_contacts(container, tenant.org_id, 1, time_zone="America/Los_Angeles")  # 07:00 there
    add_contacts(
        container,
        tenant.org_id,
        1,
        time_zone="America/New_York",
        mobile_phone="+33610000001",  # another number: one message per number and request
    )
    container.flows.apply(tenant.org_id, INSTANT)
    container.flows.start_run(tenant.org_id, "everyone")
    container.flow_engine("w1").run_until_idle()
    held = {m.time_zone: m.scheduled_at for m in messages(container, tenant.org_id)}
    assert held == {
        "America/Los_Angeles": datetime(2026, 1, 15, 17, 0, tzinfo=UTC),  # 09:00 there
        "America/New_York": datetime(2026, 1, 15, 15, 0, tzinfo=UTC),  # now: inside
    }


def test_an_idle_tick_makes_one_read_and_no_write(container: Container) -> None:
    engine = container.flow_engine()
    assert engine.tick() is False  # the first one also purges old events
    before = container.db.stages.snapshot()["other"]
    writes: list[float] = []
    container.db.write_observer = lambda waited, took: writes.append(took)
    try:
        assert engine.tick() is False
    finally:
        container.db.write_observer = None
    after = container.db.stages.snapshot()["other"]
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
    assert writes == []
