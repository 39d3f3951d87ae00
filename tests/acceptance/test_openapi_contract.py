"""The OpenAPI description says what the server answers, and the server answers what it says.

``tests/fuzz`` checks this over thousands of generated requests; these are the cases it found,
each kept as a test of its own.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from tests.helpers import Tenant, assert_error

_METHODS = {"get", "put", "post", "delete", "patch"}


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in _METHODS
    ]


def test_every_operation_declares_the_errors_it_can_answer(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    error = {"$ref": "#/components/schemas/Error"}
    assert "Error" in schema["components"]["schemas"]
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        assert responses["422"]["content"]["application/json"]["schema"] == error, path
        if any(p["name"] == "authorization" for p in operation.get("parameters", [])):
            assert {"401", "403", "404", "429"} <= set(responses), (method, path)
        if method != "get":
            assert "409" in responses, (method, path)
        if "requestBody" in operation:
            assert {"413", "415"} <= set(responses), (method, path)
    # Inline schemas keep no definitions of their own that a reference could not reach.
    assert "$defs" not in json.dumps(schema["paths"])


def test_405_names_every_method_of_the_path(tenant: Tenant) -> None:
    response = tenant.request("PUT", "/v1/templates")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, POST"
    response = tenant.request("OPTIONS", "/v1/templates/some-id")
    assert response.headers["Allow"] == "DELETE, GET, PATCH"


def test_a_body_that_is_not_utf8_is_422_naming_the_body(tenant: Tenant) -> None:
    response = tenant.post(
        "/v1/events", content=b'{"type": "\xff\xfe"}', headers={"Content-Type": "application/json"}
    )
    assert_error(response, 422, "invalid_request", "body")


def test_integers_beyond_64_bits_are_refused(tenant: Tenant) -> None:
    for digits in (20, 4300, 4301):
        response = tenant.post(
            "/v1/events",
            content=b'{"type": "order.paid", "record": {"n": ' + b"9" * digits + b"}}",
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422, (digits, response.text)
        assert response.json()["error"]["field"] in {"record", "body"}


def test_fields_that_refuse_null_say_so_in_the_schema(tenant: Tenant, client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assignment = schemas["QueueUpdate"]["properties"]["assignment_method"]
    assert "anyOf" not in assignment and "null" not in json.dumps(assignment)
    queue = tenant.post("/v1/queues", {"name": "Support"}).json()
    response = tenant.patch(f"/v1/queues/{queue['id']}", {"assignment_method": None})
    assert_error(response, 422, "invalid_request", "assignment_method")
    # Left out, it keeps its value.
    assert tenant.patch(f"/v1/queues/{queue['id']}", {"priority": 5}).status_code == 200


def test_flags_take_true_or_false_only(tenant: Tenant) -> None:
    queue = tenant.post("/v1/queues", {"name": "Support"}).json()
    for value in (0, 1, "yes"):
        response = tenant.post(
            "/v1/routing-rules", {"name": "r", "queue_id": queue["id"], "enabled": value}
        )
        assert_error(response, 422, "invalid_request", "enabled")


def test_a_refused_flow_document_quoting_half_a_surrogate_pair_is_422(tenant: Tenant) -> None:
    for document in (b'{"a\\ud9e4": 1}', b'{"name": "\\udaba"}', b'{"a\\u0000": 1}'):
        response = tenant.post(
            "/v1/flows?dry_run=true",
            content=document,
            headers={"Content-Type": "application/json"},
        )
        assert_error(response, 422, "invalid_flow", "document")


def test_times_are_iso_8601_never_numbers(tenant: Tenant) -> None:
    for path in ("/v1/messages", "/v1/messages/export"):
        for value in ("0.5", "1733390000", "-1"):
            response = tenant.get(path, params={"created_before": value})
            assert_error(response, 422, "invalid_request", "created_before")
        assert tenant.get(path, params={"created_before": "2030-01-01T00:00:00Z"}).is_success
