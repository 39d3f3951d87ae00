"""Failed authentications are throttled per client address."""

from __future__ import annotations

from fastapi.testclient import TestClient

from outbound.app import Container, create_app
from outbound.web.throttle import AUTH_FAILURE_LIMIT, FailureThrottle
from tests.helpers import Tenant

BAD = {"Authorization": "Bearer ob_not-a-key"}


def _client(tenant: Tenant, address: str) -> TestClient:
    return TestClient(tenant.client.app, client=(address, 50000))


def test_an_address_that_fails_too_often_is_refused_for_a_while(tenant: Tenant) -> None:
    now = [1000.0]
    tenant.client.app.state.auth_throttle = FailureThrottle(clock=lambda: now[0])  # type: ignore[attr-defined]
    guesser, neighbour = _client(tenant, "203.0.113.9"), _client(tenant, "203.0.113.10")
    for _ in range(AUTH_FAILURE_LIMIT):
        assert guesser.get("/v1/organization", headers=BAD).status_code == 401
        now[0] += 1
    throttled = guesser.get("/v1/organization", headers=BAD)
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "rate_limited"
    assert throttled.headers["retry-after"] == "40"  # when the first failure is a minute old
    assert throttled.headers["x-content-type-options"] == "nosniff"
    # A good key waits too (else the answer would tell which guess was right) ...
    good = guesser.get("/v1/organization", headers=tenant.headers())
    assert good.status_code == 429
    # ... but only from that address.
    assert neighbour.get("/v1/organization", headers=tenant.headers()).status_code == 200
    assert neighbour.get("/v1/organization", headers=BAD).status_code == 401

    now[0] += 40
    assert guesser.get("/v1/organization", headers=tenant.headers()).status_code == 200


def test_behind_a_trusted_proxy_the_forwarded_address_is_throttled(
    tenant: Tenant, container: Container
) -> None:
    container.settings = container.settings.model_copy(update={"trust_forwarded_headers": True})
    proxy = _client(tenant, "127.0.0.1")
    guesser = {**BAD, "X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
    for _ in range(AUTH_FAILURE_LIMIT):
        assert proxy.get("/v1/organization", headers=guesser).status_code == 401
    assert proxy.get("/v1/organization", headers=guesser).status_code == 429
    other = {**tenant.headers(), "X-Forwarded-For": "203.0.113.10"}
    assert proxy.get("/v1/organization", headers=other).status_code == 200


def test_the_limit_is_a_setting(container: Container) -> None:
    container.settings = container.settings.model_copy(update={"auth_failure_limit": 2})
    with TestClient(create_app(container, run_worker=False)) as client:
        answers = [client.get("/v1/organization", headers=BAD).status_code for _ in range(3)]
    assert answers == [401, 401, 429]
