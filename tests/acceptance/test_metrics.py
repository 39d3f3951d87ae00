"""/metrics in Prometheus format, and who may read it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from outbound.adapters.metrics import Metrics
from outbound.app import Container
from tests.helpers import Setup, Tenant, contact, scrape_metrics


def _samples(tenant: Tenant) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = scrape_metrics(tenant.client)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def test_metrics_follow_messages_from_accept_to_delivery(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    tenant.post(
        "/v1/outbound/send",
        {
            "configuration_id": setup.config_id,
            "contacts": [contact(), contact("+33612345679"), contact(optin=False)],
        },
    )
    before = _samples(tenant)
    assert before[("outbound_contacts_total", (("outcome", "queued"),))] == 2
    assert before[("outbound_contacts_total", (("outcome", "skipped"),))] == 1
    assert before[("outbound_outbox_due_messages", ())] == 2
    assert before[("outbound_outbox_oldest_due_age_seconds", ())] == 0
    queued = (("provider", "sandbox"), ("status", "queued"))
    assert before[("outbound_messages", queued)] == 2
    assert setup.channel["id"] not in scrape_metrics(tenant.client).text
    labelled = Metrics(container.db, container.clock, tenant_labels=True).render().decode()
    channel = setup.channel["id"]
    assert (
        f'outbound_messages{{channel_id="{channel}",provider="sandbox",status="queued"}} 2.0'
        in labelled
    )
    route = (("method", "POST"), ("route", "/v1/outbound/send"), ("status", "202"))
    assert before[("outbound_http_request_seconds_count", route)] == 1

    await container.dispatcher().run_once()
    await container.providers["sandbox"].drain()  # type: ignore[attr-defined]
    after = _samples(tenant)
    assert after[("outbound_outbox_due_messages", ())] == 0
    sent = (("provider", "sandbox"), ("status", "sent"))
    delivered = (("provider", "sandbox"), ("status", "delivered"))
    assert after[("outbound_message_transitions_total", sent)] == 2
    assert after[("outbound_message_transitions_total", delivered)] == 2
    assert after[("outbound_provider_request_seconds_count", (("provider", "sandbox"),))] == 2


def test_metrics_show_pending_events_and_active_flow_runs(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    tenant.post(
        "/v1/flows",
        {"name": "all", "configuration": setup.config_id, "trigger": {"type": "instant"}},
    )
    tenant.post("/v1/events", {"type": "order.delayed", "record": {"order": "SO-1"}})
    tenant.post("/v1/flows/all/runs", {})
    text = scrape_metrics(tenant.client).text
    assert "outbound_events_pending 1.0" in text
    assert 'outbound_flow_runs{status="pending"} 1.0' in text
    container.flow_engine("w").run_until_idle()
    text = scrape_metrics(tenant.client).text
    assert "outbound_events_pending 0.0" in text
    assert 'outbound_flow_runs{status="pending"} 0.0' in text


def _client(tenant: Tenant, address: str) -> TestClient:
    return TestClient(tenant.client.app, client=(address, 50000))


def test_without_a_token_only_this_machine_reads_metrics(tenant: Tenant) -> None:
    assert _client(tenant, "127.0.0.1").get("/metrics").status_code == 200
    assert _client(tenant, "::1").get("/metrics").status_code == 200
    assert _client(tenant, "::ffff:127.0.0.1").get("/metrics").status_code == 200
    assert _client(tenant, "::ffff:203.0.113.9").get("/metrics").status_code == 403
    remote = _client(tenant, "203.0.113.9").get("/metrics")
    assert remote.status_code == 403
    assert "OUTBOUND_METRICS_TOKEN" in remote.json()["error"]["message"]
    # A proxy on this machine forwards others' requests: they are not local.
    proxied = _client(tenant, "127.0.0.1").get(
        "/metrics", headers={"X-Forwarded-For": "203.0.113.9"}
    )
    assert proxied.status_code == 403
    assert tenant.client.get("/metrics").status_code == 403


def test_with_a_token_metrics_need_it_from_everywhere(
    tenant: Tenant, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "metrics-" + "x" * 32
    monkeypatch.setattr(
        container, "settings", container.settings.model_copy(update={"metrics_token": token})
    )
    local, remote = _client(tenant, "127.0.0.1"), _client(tenant, "203.0.113.9")
    for client in (local, remote):
        refused = client.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer ")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        assert "outbound_outbox_due_messages" in ok.text


def test_metrics_show_queues_waiting_and_users_by_presence(
    tenant: Tenant, client: TestClient, container: Container
) -> None:
    from datetime import timedelta

    from outbound.adapters.db.models import Conversation, Queue, User

    now = container.clock.now()
    with container.db.transaction() as session:
        queue = Queue(org_id=tenant.org_id, name="Support", created_at=now, updated_at=now)
        session.add(queue)
        session.flush()
        for minutes in (5, 1):
            session.add(
                Conversation(
                    org_id=tenant.org_id,
                    channel_id="c",
                    customer_number=f"+3361234567{minutes}",
                    status="open",
                    queue_id=queue.id,
                    waiting_since=now - timedelta(minutes=minutes),
                    created_at=now,
                    updated_at=now,
                    last_message_at=now,
                )
            )
        for name, presence, seen in (("a", "available", now), ("b", "available", None)):
            session.add(
                User(
                    org_id=tenant.org_id,
                    email=f"{name}@example.com",
                    name=name,
                    role="agent",
                    presence=presence,
                    last_seen_at=seen,
                    created_at=now,
                    updated_at=now,
                )
            )
        queue_id = queue.id
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scrape_metrics(client).text)
        for sample in family.samples
    }
    # Without tenant labels: totals, naming no queue.
    assert samples[("outbound_conversations_waiting", ())] == 2
    assert samples[("outbound_conversations_oldest_wait_seconds", ())] == 300
    assert queue_id not in scrape_metrics(client).text
    labelled = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(
            Metrics(container.db, container.clock, tenant_labels=True).render().decode()
        )
        for sample in family.samples
    }
    labels = (("queue", "Support"), ("queue_id", queue_id))
    assert labelled[("outbound_conversations_waiting", labels)] == 2
    assert labelled[("outbound_conversations_oldest_wait_seconds", labels)] == 300
    assert samples[("outbound_users_by_presence", (("presence", "available"),))] == 1
    assert samples[("outbound_users_by_presence", (("presence", "offline"),))] == 1
