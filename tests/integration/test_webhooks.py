"""Webhooks to the integrator: endpoints, events written with their change, signed deliveries,
retries, disabling, the delivery log, redelivery, test events, address checks (both databases).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook

from outbound.adapters.db.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from outbound.adapters.metrics import Metrics
from outbound.adapters.webhook_client import WebhookClient
from outbound.app import Container
from outbound.clock import SystemClock
from outbound.config import Settings
from outbound.domain.webhooks import AllowedHosts
from outbound.schemas import Role
from outbound.services.consent import record_consent
from outbound.services.webhook_delivery import WebhookDeliverer
from tests.helpers import SECRET, Setup, Tenant, contact
from tests.helpers.webhook_receiver import ERROR, Receiver

FAST_RETRIES = (0.05, 0.05, 0.05)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        secret_key=SECRET,
        default_region="FR",
        sandbox_delivery_delay=0.0,
        max_attempts=3,
        lease_seconds=30.0,
        webhook_allowed_hosts="127.0.0.1",
    )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


def _deliverer(container: Container, **kwargs: Any) -> WebhookDeliverer:
    allowed = kwargs.pop("allowed", AllowedHosts.parse("127.0.0.1"))
    client = WebhookClient(allowed, timeout=kwargs.pop("timeout", 2.0))
    return WebhookDeliverer(
        container.db,
        container.secrets,
        SystemClock(),
        client,
        poll_interval=0.05,
        retry_schedule=kwargs.pop("retry_schedule", FAST_RETRIES),
        **kwargs,
    )


async def _run_until(deliverer: WebhookDeliverer, done: Any, timeout: float = 20.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(deliverer.run(stop))
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task
        await deliverer._client.aclose()


def _endpoint(tenant: Tenant, url: str, events: list[str] | None = None) -> dict[str, Any]:
    response = tenant.post(
        "/v1/webhook-endpoints", {"url": url, "events": events or ["message.status_changed"]}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def _send(tenant: Tenant, setup: Setup, *numbers: str) -> list[str]:
    response = tenant.post(
        "/v1/outbound/send",
        {"configuration_id": setup.config_id, "contacts": [contact(n) for n in numbers]},
    )
    assert response.status_code == 202, response.text
    return [r["message_id"] for r in response.json()["results"]]


def _deliveries(container: Container) -> list[Any]:
    with container.db.read() as session:
        return list(
            session.execute(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)).scalars()
        )


# --- endpoints ------------------------------------------------------------------------------


def test_endpoint_secret_is_shown_once_and_stored_encrypted(
    tenant: Tenant, container: Container
) -> None:
    created = _endpoint(tenant, "http://127.0.0.1:9/hooks", ["message.*", "conversation.*"])
    assert created["secret"].startswith("whsec_")
    assert created["enabled"] is True
    assert created["events"] == ["message.*", "conversation.*"]
    shown = tenant.get(f"/v1/webhook-endpoints/{created['id']}").json()
    assert "secret" not in shown
    listed = tenant.get("/v1/webhook-endpoints").json()["data"]
    assert [e["id"] for e in listed] == [created["id"]] and "secret" not in listed[0]
    with container.db.read() as session:
        stored = session.execute(sa.select(WebhookEndpoint.secret_encrypted)).scalar_one()
    assert created["secret"] not in stored
    assert container.secrets.decrypt(stored) == {"secret": created["secret"]}


def test_endpoints_belong_to_admins_of_one_organisation(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    created = _endpoint(tenant, "http://127.0.0.1:9/hooks")
    assert tenant.get("/v1/webhook-endpoints", role=Role.SENDER).status_code == 403
    assert other_tenant.get(f"/v1/webhook-endpoints/{created['id']}").status_code == 404
    assert other_tenant.delete(f"/v1/webhook-endpoints/{created['id']}").status_code == 404
    assert other_tenant.get("/v1/webhook-endpoints").json()["data"] == []


def test_patch_and_delete_an_endpoint(tenant: Tenant) -> None:
    created = _endpoint(tenant, "http://127.0.0.1:9/hooks")
    path = f"/v1/webhook-endpoints/{created['id']}"
    changed = tenant.patch(path, {"events": ["*"], "description": "CRM", "enabled": False})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["events"], body["description"], body["enabled"]) == (["*"], "CRM", False)
    assert body["disabled_reason"] == "disabled by hand"
    again = tenant.patch(path, {"enabled": True}).json()
    assert again["enabled"] is True and again["disabled_reason"] is None
    assert tenant.delete(path).status_code == 204
    assert tenant.get(path).status_code == 404


@pytest.mark.parametrize(
    ("url", "events", "field"),
    [
        ("ftp://example.com/x", ["*"], "url"),
        ("http://user:pw@127.0.0.1/x", ["*"], "url"),
        ("http://127.0.0.1/x", ["message.sent"], "events"),
        ("http://127.0.0.1/x", [], "events"),
    ],
)
def test_bad_endpoints_are_refused_naming_the_field(
    tenant: Tenant, url: str, events: list[str], field: str
) -> None:
    response = tenant.post("/v1/webhook-endpoints", {"url": url, "events": events})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/hooks",
        "http://192.168.0.10/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hooks",
        "http://0.0.0.0:8080/hooks",
        "http://[::ffff:10.0.0.1]/hooks",
        "http://127.0.0.2/hooks",
    ],
)
def test_endpoints_on_non_public_addresses_are_refused(tenant: Tenant, url: str) -> None:
    response = tenant.post("/v1/webhook-endpoints", {"url": url, "events": ["*"]})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "url"
    assert "OUTBOUND_WEBHOOK_ALLOWED_HOSTS" in error["message"]


# --- events written with their change -------------------------------------------------------


def test_no_event_rows_without_a_subscribed_endpoint(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    _endpoint(tenant, "http://127.0.0.1:9/hooks", ["consent.changed"])
    _send(tenant, setup, "+33612345678")
    with container.db.read() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(WebhookEvent)).scalar() == 0


async def test_status_changes_are_queued_in_order_with_the_history(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    _endpoint(tenant, "http://127.0.0.1:9/hooks")
    [message_id] = _send(tenant, setup, "+33612345678")
    await container.dispatcher().run_once()
    await container.providers["sandbox"].drain()  # type: ignore[attr-defined]
    with container.db.read() as session:
        rows = session.execute(
            sa.select(WebhookEvent.payload, WebhookDelivery.ordering_key)
            .join(WebhookDelivery, WebhookDelivery.event_id == WebhookEvent.id)
            .order_by(WebhookDelivery.id)
        ).all()
    assert [r.payload["data"]["status"] for r in rows] == ["queued", "sending", "sent", "delivered"]
    assert {r.ordering_key for r in rows} == {message_id}
    first = rows[0].payload
    assert first["type"] == "message.status_changed"
    assert first["id"].startswith("evt_")
    assert first["data"]["configuration_id"] == setup.config_id
    assert first["data"]["to"] == "+33612345678"


def test_events_are_written_and_rolled_back_with_their_change(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    _endpoint(tenant, "http://127.0.0.1:9/hooks", ["consent.changed"])

    def withdraw(session: Any) -> None:
        record_consent(
            session,
            org_id=tenant.org_id,
            channel_id=setup.channel["id"],
            number="+33612345678",
            opted_out=True,
            source="api",
            detail=None,
            now=container.clock.now(),
        )

    with pytest.raises(RuntimeError), container.db.transaction() as session:
        withdraw(session)
        raise RuntimeError("the change fails")
    with container.db.read() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(WebhookEvent)).scalar() == 0
    with container.db.transaction() as session:
        withdraw(session)
    with container.db.read() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(WebhookEvent)).scalar() == 1


def test_inbound_consent_and_conversation_events(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    _endpoint(
        tenant,
        "http://127.0.0.1:9/hooks",
        ["message.inbound", "consent.changed", "conversation.*"],
    )
    url = setup.channel["webhook_url"]
    assert tenant.client.post(url, json={"id": "in-1", "from": "+33612345678", "body": "Hi"})
    assert tenant.client.post(url, json={"id": "in-2", "from": "+33612345678", "body": "STOP"})
    with container.db.read() as session:
        types = [
            row.type
            for row in session.execute(
                sa.select(WebhookEvent.type).order_by(WebhookEvent.created_at)
            )
        ]
        payloads = {
            row.type: row.payload
            for row in session.execute(sa.select(WebhookEvent.type, WebhookEvent.payload))
        }
    assert "conversation.opened" in types
    assert types.count("message.inbound") == 2
    assert payloads["consent.changed"]["data"]["action"] == "opt_out"
    assert payloads["consent.changed"]["data"]["source"] == "keyword"


# --- delivery -------------------------------------------------------------------------------


async def test_events_are_delivered_signed_in_order(
    tenant: Tenant, setup: Setup, container: Container, receiver: Receiver
) -> None:
    created = _endpoint(tenant, receiver.url)
    receiver.secret = created["secret"]
    ids = _send(tenant, setup, "+33612345678", "+33612345679")
    await container.dispatcher().run_once()
    await container.providers["sandbox"].drain()  # type: ignore[attr-defined]
    await _run_until(_deliverer(container), lambda: len(receiver.accepted) == 8)
    assert all(call.verified for call in receiver.calls)
    for message_id in ids:
        statuses = [
            p["data"]["status"]
            for p in receiver.accepted.values()
            if p["data"]["message_id"] == message_id
        ]
        assert statuses == ["queued", "sending", "sent", "delivered"]
    assert {d.status for d in _deliveries(container)} == {"succeeded"}
    endpoint = tenant.get(f"/v1/webhook-endpoints/{created['id']}").json()
    assert endpoint["last_success_at"] is not None and endpoint["failing_since"] is None


async def test_deliveries_queued_in_the_process_wake_an_idle_deliverer(
    tenant: Tenant, setup: Setup, container: Container, receiver: Receiver
) -> None:
    """Polling an hour apart, the deliverer still delivers what this process queues at once."""
    receiver.secret = _endpoint(tenant, receiver.url)["secret"]
    deliverer = WebhookDeliverer(
        container.db,
        container.secrets,
        SystemClock(),
        WebhookClient(AllowedHosts.parse("127.0.0.1"), timeout=2.0),
        poll_interval=3600,
        idle_poll_seconds=3600,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(deliverer.run(stop))
    try:
        await asyncio.sleep(0.2)  # its first look finds nothing; then it waits
        _send(tenant, setup, "+33612345678")
        async with asyncio.timeout(20):
            while len(receiver.accepted) < 1:
                await asyncio.sleep(0.02)
        assert [p["data"]["status"] for p in receiver.accepted.values()] == ["queued"]
    finally:
        stop.set()
        await task
        await deliverer._client.aclose()


async def test_failures_are_retried_and_logged_with_their_status_codes(
    tenant: Tenant, setup: Setup, container: Container, receiver: Receiver
) -> None:
    created = _endpoint(tenant, receiver.url)
    receiver.secret = created["secret"]
    receiver.fault = lambda _id, seen: ERROR if seen < 2 else "ok"
    _send(tenant, setup, "+33612345678")
    await _run_until(_deliverer(container), lambda: len(receiver.accepted) == 1)
    log = tenant.get(f"/v1/webhook-endpoints/{created['id']}/deliveries").json()["data"]
    assert len(log) == 1
    assert (log[0]["status"], log[0]["attempts"], log[0]["last_status_code"]) == (
        "succeeded",
        3,
        204,
    )
    one = tenant.get(f"/v1/webhook-endpoints/{created['id']}/deliveries/{log[0]['id']}").json()
    assert [a["status_code"] for a in one["attempt_log"]] == [500, 500, 204]
    assert one["payload"]["type"] == "message.status_changed"


async def test_a_delivery_that_keeps_failing_gives_up_and_the_endpoint_is_disabled(
    tenant: Tenant, setup: Setup, container: Container, receiver: Receiver
) -> None:
    created = _endpoint(tenant, receiver.url)
    receiver.fault = lambda _id, _seen: ERROR
    _send(tenant, setup, "+33612345678")
    deliverer = _deliverer(container, disable_after_seconds=0.1)
    await _run_until(
        deliverer,
        lambda: not tenant.get(f"/v1/webhook-endpoints/{created['id']}").json()["enabled"],
    )
    endpoint = tenant.get(f"/v1/webhook-endpoints/{created['id']}").json()
    assert endpoint["enabled"] is False
    assert "every attempt failed" in endpoint["disabled_reason"]
    assert endpoint["failing_since"] is not None
    # Re-enabled, what waited goes out once the receiver answers again.
    receiver.fault = None
    assert (
        tenant.patch(f"/v1/webhook-endpoints/{created['id']}", {"enabled": True}).status_code == 200
    )
    await _run_until(_deliverer(container), lambda: len(receiver.accepted) == 1)


async def test_gives_up_after_the_schedule(
    tenant: Tenant, setup: Setup, container: Container, receiver: Receiver
) -> None:
    created = _endpoint(tenant, receiver.url)
    receiver.fault = lambda _id, _seen: ERROR
    _send(tenant, setup, "+33612345678")
    await _run_until(
        _deliverer(container),
        lambda: [d.status for d in _deliveries(container)] == ["failed"],
    )
    [delivery] = _deliveries(container)
    assert delivery.attempts == len(FAST_RETRIES) + 1
    assert delivery.last_status_code == 500
    endpoint = tenant.get(f"/v1/webhook-endpoints/{created['id']}").json()
    assert endpoint["enabled"] is True  # failing for less than a day


async def test_redelivery_and_test_event(
    tenant: Tenant, setup: Setup, container: Container, receiver: Receiver
) -> None:
    created = _endpoint(tenant, receiver.url)
    receiver.secret = created["secret"]
    base = f"/v1/webhook-endpoints/{created['id']}"
    test = tenant.post(f"{base}/test")
    assert test.status_code == 202, test.text
    assert test.json()["event_type"] == "webhook.test"
    await _run_until(_deliverer(container), lambda: len(receiver.calls) == 1)
    [call] = receiver.calls
    assert call.verified and call.payload is not None
    assert call.payload["type"] == "webhook.test"
    again = tenant.post(f"{base}/deliveries/{test.json()['id']}/redeliver")
    assert again.status_code == 202, again.text
    assert again.json()["event_id"] == test.json()["event_id"]
    await _run_until(_deliverer(container), lambda: len(receiver.calls) == 2)
    assert receiver.calls[1].webhook_id == call.webhook_id
    assert tenant.post(f"{base}/deliveries/999999/redeliver").status_code == 404


async def test_addresses_are_checked_again_at_delivery(
    tenant: Tenant, setup: Setup, container: Container, receiver: Receiver
) -> None:
    """An endpoint allowed when it was created, whose address is refused when it is called
    (what DNS rebinding would do), is not called."""
    created = _endpoint(tenant, receiver.url)
    tenant.post(f"/v1/webhook-endpoints/{created['id']}/test")
    deliverer = _deliverer(container, allowed=AllowedHosts())
    await _run_until(
        deliverer,
        lambda: (
            _deliveries(container)[0].attempts >= 1
            and _deliveries(container)[0].status == "pending"
        ),
    )
    assert receiver.calls == []
    [delivery] = _deliveries(container)
    assert delivery.last_error is not None and delivery.last_error.startswith("refused")


def test_standard_webhooks_verifies_our_signatures() -> None:
    from outbound.domain.webhooks import signature_headers
    from outbound.services.webhook_endpoints import new_secret

    secret = new_secret()
    body = b'{"type":"webhook.test","data":{"x":"\xc3\xa9"}}'
    now = int(SystemClock().now().timestamp())
    headers = signature_headers(secret, "evt_1", now, body)
    assert Webhook(secret).verify(body, headers) == {"type": "webhook.test", "data": {"x": "é"}}


async def test_metrics_show_the_queue_and_failures_by_endpoint(
    tenant: Tenant, setup: Setup, container: Container, receiver: Receiver
) -> None:
    created = _endpoint(tenant, receiver.url)
    _send(tenant, setup, "+33612345678")
    metrics = Metrics(container.db, container.clock, tenant_labels=True)
    text = metrics.render().decode()
    assert f'outbound_webhook_pending{{endpoint_id="{created["id"]}"}} 1.0' in text
    assert "outbound_webhook_oldest_pending_age_seconds{" in text
    assert "outbound_webhook_endpoints_disabled 0.0" in text
    # Without tenant labels (the default): totals, naming no endpoint.
    plain = container.metrics.render().decode()
    assert "outbound_webhook_pending 1.0" in plain and created["id"] not in plain
    receiver.fault = lambda _id, seen: ERROR if seen == 0 else "ok"
    deliverer = _deliverer(container, metrics=metrics)
    await _run_until(deliverer, lambda: len(receiver.accepted) == 1)
    text = metrics.render().decode()
    assert f'outbound_webhook_failures_total{{endpoint_id="{created["id"]}"}} 1.0' in text
    assert 'outbound_webhook_attempts_total{outcome="succeeded"} 1.0' in text
    assert f'outbound_webhook_pending{{endpoint_id="{created["id"]}"}}' not in text
    container.metrics.webhook_failed(created["id"])
    plain = container.metrics.render().decode()
    assert "outbound_webhook_failures_total 1.0" in plain and created["id"] not in plain


def test_erasing_a_number_blanks_it_in_webhook_events(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    _endpoint(tenant, "http://127.0.0.1:9/hooks", ["*"])
    url = setup.channel["webhook_url"]
    _send(tenant, setup, "+33612345678", "+33612345679")
    tenant.client.post(url, json={"id": "in-1", "from": "+33612345678", "body": "My PIN is 1234"})
    tenant.client.post(url, json={"id": "in-2", "from": "+33612345678", "body": "STOP"})
    erased = tenant.post("/v1/erasures", {"phone_number": "+33612345678"})
    assert erased.status_code in (200, 201), erased.text
    assert erased.json()["erased"]["webhook_events"] >= 4
    with container.db.read() as session:
        payloads = [
            json.dumps(p) for p in session.execute(sa.select(WebhookEvent.payload)).scalars()
        ]
    assert not any("+33612345678" in p or "PIN" in p for p in payloads)
    # The other number's events are untouched.
    assert any("+33612345679" in p for p in payloads)
