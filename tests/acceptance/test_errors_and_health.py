"""One error shape everywhere, health probes and the OpenAPI document."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from outbound.adapters.db.migrate import head_revision
from outbound.adapters.db.models import Event
from outbound.app import Container
from tests.helpers import Setup, Tenant, assert_error

# --- health ---------------------------------------------------------------------------------


def test_health_probes_and_openapi(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}

    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    head = head_revision()
    assert head is not None
    assert response.json() == {"status": "ready", "schema": head}

    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    paths = spec["paths"]
    assert "post" in paths["/v1/outbound/send"]
    send = paths["/v1/outbound/send"]["post"]
    assert {"202", "409", "422", "429"} <= set(send["responses"])
    for path in (
        "/v1/channels",
        "/v1/templates",
        "/v1/outbound-configurations",
        "/v1/messages",
        "/v1/messages/{message_id}",
        "/v1/timeline/{regarding_object_id}",
        "/v1/api-keys",
    ):
        assert path in paths, path


# --- error shape ----------------------------------------------------------------------------


def test_unknown_route_and_method_in_the_error_shape(tenant: Tenant, client: TestClient) -> None:
    for path in ("/nope", "/v1/nope", "/v1/outbound/sendd"):
        assert_error(tenant.get(path), 404, "not_found")
    assert_error(client.get("/v1/does-not-exist"), 404, "not_found")

    assert_error(tenant.request("PUT", "/v1/outbound/send"), 405, "method_not_allowed")
    assert_error(tenant.delete("/healthz"), 405, "method_not_allowed")


def test_unreadable_or_missing_body_is_422_naming_the_body(tenant: Tenant) -> None:
    headers = tenant.headers(**{"Content-Type": "application/json"})
    for raw in (b'{"configuration_id": ', b"{not json}", b'{"contacts": [}', b"\xff\xfe"):
        response = tenant.client.post("/v1/outbound/send", content=raw, headers=headers)
        error = assert_error(response, 422, "invalid_request", "body")
        assert error["errors"][0]["field"] == "body"

    for path in ("/v1/channels", "/v1/templates", "/v1/outbound/send"):
        response = tenant.client.post(path, headers=tenant.headers())
        assert_error(response, 422, "invalid_request", "body")
    for body in ([], "text", 42, None):
        assert_error(tenant.post("/v1/channels", body), 422, "invalid_request", "body")


def test_validation_errors_name_the_field(tenant: Tenant, setup: Setup) -> None:
    response = tenant.post("/v1/channels", {"type": "fax", "provider": "sandbox"})
    error = assert_error(response, 422, "invalid_request", "name")
    fields = {p["field"] for p in error["errors"]}
    assert {"name", "type", "sender"} <= fields
    assert error["message"].startswith("name: ")

    assert_error(tenant.get("/v1/messages", params={"limit": 0}), 422, "invalid_request", "limit")
    assert_error(tenant.get("/v1/channels", params={"limit": 501}), 422, "invalid_request", "limit")
    assert_error(
        tenant.get("/v1/messages", params={"created_after": "yesterday"}),
        422,
        "invalid_request",
        "created_after",
    )

    for path in (
        "/v1/channels/00000000-0000-0000-0000-000000000000",
        "/v1/templates/00000000-0000-0000-0000-000000000000",
        "/v1/outbound-configurations/00000000-0000-0000-0000-000000000000",
        "/v1/messages/00000000-0000-0000-0000-000000000000",
    ):
        assert_error(tenant.get(path), 404, "not_found")


def test_nul_characters_are_refused_naming_the_field(tenant: Tenant, setup: Setup) -> None:
    """PostgreSQL cannot store nor compare text with NUL; it must be a 422, never a 500."""
    channel = {"name": "a\u0000b", "type": "sms", "provider": "sandbox", "sender": "+15005550006"}
    assert_error(tenant.post("/v1/channels", channel), 422, "invalid_request", "name")
    template = {
        "name": "T",
        "channel_type": "sms",
        "default_locale": "en-US",
        "default_text": "Hi",
        "localizations": {"fr-FR": "Salut\u0000"},
    }
    assert_error(tenant.post("/v1/templates", template), 422, "invalid_request", "localizations")
    contact = {
        "tocontactid": "+33612345678",
        "optin": True,
        "contextitems": {"CustomerName": "A\u0000", "CaseName": "C"},
    }
    body = {"configuration_id": setup.config_id, "contacts": [contact]}
    assert_error(
        tenant.post("/v1/outbound/send", body),
        422,
        "invalid_request",
        "contacts[0].contextitems.CustomerName",
    )
    for path, field in (
        ("/v1/channels/a%00b", "channel_id"),
        ("/v1/timeline/a%00b", "regarding_object_id"),
        ("/v1/messages?request_id=a%00b", "request_id"),
        ("/v1/messages?configuration_id=%00", "configuration_id"),
    ):
        assert_error(tenant.get(path), 422, "invalid_request", field)
    assert tenant.get("/v1/messages").json()["data"] == []
    assert [c["name"] for c in tenant.get("/v1/channels").json()["data"]] == ["SMS"]


def test_lone_surrogates_are_refused_naming_the_field(tenant: Tenant, setup: Setup) -> None:
    """JSON may escape half of a surrogate pair, which no database or JSON encoder takes: in
    free-form values (channel options, event records) it must be a 422 too, never a 500."""
    headers = tenant.headers(**{"Content-Type": "application/json"})
    for path, raw, field in (
        (
            "/v1/channels",
            b'{"name": "n", "type": "sms", "provider": "sandbox", "sender": "+15005550006",'
            b' "options": {"note": "a\\ud800"}}',
            "options",
        ),
        ("/v1/events", b'{"type": "order.late", "record": {"id": ["\\udc00"]}}', "record"),
        ("/v1/channels", b'{"name": "a\\ud800", "type": "sms"}', "name"),
    ):
        response = tenant.client.post(path, content=raw, headers=headers)
        assert_error(response, 422, "invalid_request", field)
    assert [c["name"] for c in tenant.get("/v1/channels").json()["data"]] == ["SMS"]
    assert tenant.get("/v1/events").json()["data"] == []


def test_answers_cannot_fail_on_a_value_stored_earlier(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    """A value stored before such input was refused (half a surrogate pair, NaN) must not turn
    every listing of the organisation into a 500: it is shown replaced, the rest as it is."""
    try:
        with container.db.transaction() as session:
            session.add(
                Event(
                    org_id=tenant.org_id,
                    type="order.late",
                    record_type="external",
                    record_id=None,
                    data={"record": {"id": "a\ud800", "eta": float("nan"), "ok": "é"}},
                    source="external",
                    occurred_at=container.clock.now(),
                    processed_at=None,
                )
            )
    except sa.exc.DataError:
        # PostgreSQL's JSON cannot hold either: nothing of the kind can be there.
        assert container.db.dialect == "postgresql"
        return
    response = tenant.get("/v1/events")
    assert response.status_code == 200, response.text
    (event,) = response.json()["data"]
    assert event["data"] == {"record": {"id": "a\ufffd", "eta": None, "ok": "é"}}


def test_numbers_that_are_not_finite_are_refused_naming_the_field(
    tenant: Tenant, setup: Setup
) -> None:
    """Python's JSON parser reads NaN, Infinity and 1e309 (which JSON does not have): a
    placeholder would render them as "nan" or "inf", and PostgreSQL's JSON refuses them."""
    headers = tenant.headers(**{"Content-Type": "application/json"})
    for value in (b"NaN", b"Infinity", b"-Infinity", b"1e309"):
        raw = (
            b'{"configuration_id": "' + setup.config_id.encode() + b'", "contacts": '
            b'[{"tocontactid": "+33612345678", "optin": true, '
            b'"contextitems": {"CustomerName": ' + value + b', "CaseName": "C"}}]}'
        )
        response = tenant.client.post("/v1/outbound/send", content=raw, headers=headers)
        error = assert_error(
            response, 422, "invalid_request", "contacts[0].contextitems.CustomerName"
        )
        assert "finite" in error["message"]
        event = b'{"type": "order.late", "record": {"total": ' + value + b"}}"
        response = tenant.client.post("/v1/events", content=event, headers=headers)
        assert_error(response, 422, "invalid_request", "record")
    assert tenant.get("/v1/messages").json()["data"] == []
