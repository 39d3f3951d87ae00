"""Canceling queued messages, one or in bulk, and a cancel racing a claim (SQLite, PostgreSQL).

A claim never hands over a canceled message, and a cancel never changes a message a worker has
claimed: both orders, and each one caught in the middle of the other's transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import outbound.adapters.queue.outbox as outbox_module
from outbound.adapters.db.models import FlowRun, FlowRunBatch, Message, SendRequest
from outbound.adapters.queue.outbox import Outbox
from outbound.app import Container, create_app
from outbound.domain.roles import Role
from outbound.errors import ConflictError
from outbound.services.auth import Principal
from outbound.testing import FakeClock, ScriptedProvider
from tests.helpers import Setup, Tenant, contact, make_setup, make_tenant

NUMBERS = ["+33612345678", "+33612345679", "+33612345670"]


@pytest.fixture
def stenant(scripted_container: Container) -> Iterator[Tenant]:
    with TestClient(create_app(scripted_container, run_worker=False)) as client:
        yield make_tenant(scripted_container, client)


@pytest.fixture
def ssetup(stenant: Tenant) -> Setup:
    return make_setup(stenant)


def _send(tenant: Tenant, config_id: str, numbers: list[str]) -> tuple[str, list[str]]:
    response = tenant.post(
        "/v1/outbound/send",
        {"configuration_id": config_id, "contacts": [contact(n) for n in numbers]},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    return body["request_id"], [r["message_id"] for r in body["results"]]


def _status(container: Container, message_id: str) -> str:
    with container.db.read() as session:
        return str(
            session.execute(sa.select(Message.status).where(Message.id == message_id)).scalar_one()
        )


def test_cancel_one_message_records_who_and_when(
    stenant: Tenant, ssetup: Setup, scripted_container: Container, clock: FakeClock
) -> None:
    _, (message_id, other) = _send(stenant, ssetup.config_id, NUMBERS[:2])
    clock.advance(5)
    response = stenant.post(f"/v1/messages/{message_id}/cancel", role=Role.SENDER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["reason"]) == ("canceled", "canceled")
    last = body["history"][-1]
    assert last["status"] == "canceled"
    assert last["source"] == "api"
    assert last["actor"].startswith("key:")
    assert last["occurred_at"].startswith(clock.now().isoformat()[:19])
    assert _status(scripted_container, other) == "queued"

    again = stenant.post(f"/v1/messages/{message_id}/cancel")
    assert again.status_code == 409
    error = again.json()["error"]
    assert (error["code"], error["status"]) == ("not_cancelable", "canceled")
    assert "canceled" in error["message"]


def test_cancel_refuses_other_roles_and_other_organisations(
    stenant: Tenant, ssetup: Setup, scripted_container: Container
) -> None:
    _, (message_id,) = _send(stenant, ssetup.config_id, NUMBERS[:1])
    assert stenant.post(f"/v1/messages/{message_id}/cancel", role=Role.AGENT).status_code == 403
    other = make_tenant(scripted_container, stenant.client, "Other")
    assert other.post(f"/v1/messages/{message_id}/cancel").status_code == 404
    assert (
        other.post("/v1/outbound/cancel", {"configuration_id": ssetup.config_id}).status_code == 404
    )
    assert _status(scripted_container, message_id) == "queued"


async def test_a_sending_or_sent_message_cannot_be_canceled(
    stenant: Tenant, ssetup: Setup, scripted_container: Container, provider: ScriptedProvider
) -> None:
    """Claim first, then cancel: 409 naming the status, and the message is sent."""
    _, (message_id,) = _send(stenant, ssetup.config_id, NUMBERS[:1])
    dispatcher = scripted_container.dispatcher("w1")
    batch = await dispatcher._claim()
    assert batch is not None and [m.id for m in batch.claimed] == [message_id]
    response = stenant.post(f"/v1/messages/{message_id}/cancel")
    assert response.status_code == 409
    assert response.json()["error"]["status"] == "sending"
    await dispatcher._process(batch)
    assert _status(scripted_container, message_id) == "sent"
    assert [m.id for m in provider.sent] == [message_id]
    response = stenant.post(f"/v1/messages/{message_id}/cancel")
    assert (response.status_code, response.json()["error"]["status"]) == (409, "sent")


async def test_a_canceled_message_is_never_claimed(
    stenant: Tenant, ssetup: Setup, scripted_container: Container, provider: ScriptedProvider
) -> None:
    """Cancel first, then claim: nothing is handed over, nothing is sent."""
    _, (message_id,) = _send(stenant, ssetup.config_id, NUMBERS[:1])
    assert stenant.post(f"/v1/messages/{message_id}/cancel").status_code == 200
    assert await scripted_container.dispatcher().run_once() == 0
    assert provider.sent == []
    assert _status(scripted_container, message_id) == "canceled"


def test_bulk_cancel_by_request_configuration_and_flow_run(
    stenant: Tenant, ssetup: Setup, scripted_container: Container, clock: FakeClock
) -> None:
    request_id, ids = _send(stenant, ssetup.config_id, NUMBERS)
    _, other_ids = _send(stenant, ssetup.config_id, NUMBERS[:2])
    stenant.post(f"/v1/messages/{ids[0]}/cancel")

    response = stenant.post("/v1/outbound/cancel", {"request_id": request_id}, role=Role.SENDER)
    assert response.status_code == 200, response.text
    assert response.json() == {"canceled": 2}
    assert [_status(scripted_container, m) for m in other_ids] == ["queued", "queued"]

    # The configuration's id as Dynamics writes it.
    braced = "{" + ssetup.config_id.upper() + "}"
    assert stenant.post("/v1/outbound/cancel", {"configuration_id": braced}).json() == {
        "canceled": 2
    }
    assert stenant.post("/v1/outbound/cancel", {"configuration_id": braced}).json() == {
        "canceled": 0
    }

    # A flow run's messages are those of the send requests of its batches.
    _, run_ids = _send(stenant, ssetup.config_id, NUMBERS[:2])
    with scripted_container.db.read() as session:
        run_request = session.execute(
            sa.select(Message.request_id).where(Message.id == run_ids[0])
        ).scalar_one()
        assert session.get(SendRequest, run_request) is not None
    now = clock.now()
    with scripted_container.db.transaction() as session:
        flow_run = _flow_run(session, stenant.org_id, ssetup.config_id, now)
        session.add(
            FlowRunBatch(
                run_id=flow_run, seq=1, status="sent", request_id=run_request, created_at=now
            )
        )
    assert stenant.post("/v1/outbound/cancel", {"flow_run_id": flow_run}).json() == {"canceled": 2}
    assert [_status(scripted_container, m) for m in run_ids] == ["canceled", "canceled"]


def _flow_run(session: Any, org_id: str, config_id: str, now: Any) -> str:
    from outbound.adapters.db.models import Flow

    flow = Flow(
        org_id=org_id,
        name="f",
        trigger_type="instant",
        configuration_id=config_id,
        definition={},
        source="",
        source_format="yaml",
        created_at=now,
        updated_at=now,
    )
    session.add(flow)
    session.flush()
    run = FlowRun(
        org_id=org_id,
        flow_id=flow.id,
        trigger="manual",
        source="contacts",
        status="completed",
        due_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(run)
    session.flush()
    return str(run.id)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"request_id": "a", "configuration_id": "b"},
        {"flow_run_id": "a", "nope": 1},
    ],
)
def test_bulk_cancel_needs_exactly_one_target(stenant: Tenant, body: dict[str, Any]) -> None:
    response = stenant.post("/v1/outbound/cancel", body)
    assert response.status_code == 422, response.text


def test_bulk_cancel_of_an_unknown_target_is_404(stenant: Tenant) -> None:
    for key in ("request_id", "flow_run_id", "configuration_id"):
        response = stenant.post("/v1/outbound/cancel", {key: "nope"})
        assert response.status_code == 404
        assert response.json()["error"]["field"] == key


# --- a cancel and a claim caught in the middle of each other ------------------------------


def _principal(tenant: Tenant) -> Principal:
    return Principal(org_id=tenant.org_id, key_id="k", role=Role.ADMIN)


def _paused_write_events(
    monkeypatch: pytest.MonkeyPatch, thread_name: str
) -> tuple[threading.Event, threading.Event]:
    """Make ``thread_name``'s next history write (inside its open transaction) wait."""
    reached, release = threading.Event(), threading.Event()
    original = outbox_module.write_events

    def write_events(session: Any, events: Any) -> None:
        original(session, events)
        if threading.current_thread().name == thread_name and not reached.is_set():
            reached.set()
            assert release.wait(30)

    monkeypatch.setattr(outbox_module, "write_events", write_events)
    return reached, release


def test_a_cancel_waiting_on_a_claim_in_progress_leaves_the_message_to_the_worker(
    stenant: Tenant,
    ssetup: Setup,
    scripted_container: Container,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, (message_id,) = _send(stenant, ssetup.config_id, NUMBERS[:1])
    reached, release = _paused_write_events(monkeypatch, "claimer")
    claimed: list[Any] = []
    claimer = threading.Thread(
        name="claimer",
        target=lambda: claimed.extend(
            Outbox(scripted_container.db).claim("w1", 10, clock.now(), timedelta(seconds=30))
        ),
    )
    claimer.start()
    assert reached.wait(30)  # the claim has updated the row and not committed yet
    outcome: list[BaseException | object] = []

    def cancel() -> None:
        try:
            outcome.append(
                scripted_container.cancellation.cancel_message(_principal(stenant), message_id)
            )
        except BaseException as exc:
            outcome.append(exc)

    canceler = threading.Thread(target=cancel)
    canceler.start()
    canceler.join(0.5)
    assert canceler.is_alive()  # it waits for the claim's transaction
    release.set()
    claimer.join(30)
    canceler.join(30)
    assert [m.id for m in claimed] == [message_id]
    (result,) = outcome
    assert isinstance(result, ConflictError)
    assert result.details == {"status": "sending"}
    assert _status(scripted_container, message_id) == "sending"


def test_a_claim_waiting_on_a_cancel_in_progress_takes_nothing(
    stenant: Tenant,
    ssetup: Setup,
    scripted_container: Container,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, (message_id,) = _send(stenant, ssetup.config_id, NUMBERS[:1])
    reached, release = _paused_write_events(monkeypatch, "canceler")
    canceler = threading.Thread(
        name="canceler",
        target=lambda: scripted_container.cancellation.cancel_message(
            _principal(stenant), message_id
        ),
    )
    canceler.start()
    assert reached.wait(30)  # the cancel has updated the row and not committed yet
    claimed: list[Any] = []
    claimer = threading.Thread(
        target=lambda: claimed.extend(
            Outbox(scripted_container.db).claim("w1", 10, clock.now(), timedelta(seconds=30))
        )
    )
    claimer.start()
    claimer.join(0.5)  # PostgreSQL skips the locked row; SQLite waits for the writer
    release.set()
    canceler.join(30)
    claimer.join(30)
    assert claimed == []
    assert _status(scripted_container, message_id) == "canceled"
    assert Outbox(scripted_container.db).claim("w1", 10, clock.now(), timedelta(seconds=30)) == []
