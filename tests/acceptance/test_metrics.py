"""/metrics in Prometheus format."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from outbound.app import Container
from tests.conftest import Setup, Tenant, contact


def _samples(tenant: Tenant) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = tenant.client.get("/metrics")
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
    channel = setup.channel["id"]
    queued = (("channel_id", channel), ("provider", "sandbox"), ("status", "queued"))
    assert before[("outbound_messages", queued)] == 2
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
    text = tenant.client.get("/metrics").text
    assert "outbound_events_pending 1.0" in text
    assert 'outbound_flow_runs{status="pending"} 1.0' in text
    container.flow_engine("w").run_until_idle()
    text = tenant.client.get("/metrics").text
    assert "outbound_events_pending 0.0" in text
    assert 'outbound_flow_runs{status="pending"} 0.0' in text
