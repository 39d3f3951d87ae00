"""Provider webhooks take a short path past the framework; its answers keep the API's shape."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from outbound.app import Container
from tests.helpers import Setup, Tenant, scrape_metrics


def _token(container: Container, channel_id: str) -> str:
    from outbound.adapters.db.models import Channel

    with container.db.read() as session:
        channel = session.get(Channel, channel_id)
        assert channel is not None
        return channel.webhook_token


def test_unknown_channels_and_bad_tokens_get_json_errors(tenant: Tenant, setup: Setup) -> None:
    missing = tenant.client.post("/webhooks/no-such-channel", content=b"{}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    channel_id = setup.channel["id"]
    for _ in range(2):  # first from the database, then from the cache
        refused = tenant.client.post(f"/webhooks/{channel_id}?token=wrong", content=b"{}")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "invalid_signature"
    # Other methods and deeper paths are the application's (405 / 404 in the usual shape).
    assert tenant.client.get(f"/webhooks/{channel_id}").status_code == 405
    assert tenant.client.post(f"/webhooks/{channel_id}/x", content=b"{}").status_code == 404


def test_webhooks_are_timed_under_their_route(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    channel_id = setup.channel["id"]
    token = _token(container, channel_id)
    for _ in range(3):
        ok = tenant.client.post(
            f"/webhooks/{channel_id}?token={token}",
            json={"provider_message_id": "SBX-unknown", "status": "delivered"},
        )
        assert ok.status_code < 300, ok.text
    samples = {
        (s.name, s.labels.get("route"), s.labels.get("status")): s.value
        for family in text_string_to_metric_families(scrape_metrics(tenant.client).text)
        for s in family.samples
        if s.name == "outbound_http_request_seconds_count"
    }
    assert samples[("outbound_http_request_seconds_count", "/webhooks/{channel_id}", "200")] == 3


def test_a_channel_id_holding_nul_is_no_such_webhook(tenant: Tenant) -> None:
    response = tenant.client.post("/webhooks/ch%00x", content=b"{}")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "not_found",
        "message": "no such webhook",
        "field": None,
    }
