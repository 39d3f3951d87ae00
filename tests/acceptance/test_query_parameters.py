"""Every reading route refuses a query parameter it does not declare, naming it and the allowed."""

from __future__ import annotations

import re

from outbound.domain.roles import Role
from tests.helpers import Setup, Tenant


def test_unknown_parameters_of_the_message_list_are_named(tenant: Tenant, setup: Setup) -> None:
    for name in ("recipient", "statuss"):
        response = tenant.get("/v1/messages", params={name: "x"})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("unknown_query_parameter", name)
        assert "to" in error["allowed"] and "status" in error["allowed"]
        assert f"{name!r}" in error["message"] and "configuration_id" in error["message"]
    known = tenant.get("/v1/messages", params={"status": "queued", "limit": 5})
    assert known.status_code == 200, known.text


def test_every_authenticated_reading_route_refuses_an_unknown_parameter(tenant: Tenant) -> None:
    paths = tenant.client.get("/openapi.json").json()["paths"]
    checked = 0
    for template, operations in paths.items():
        if "get" not in operations or not template.startswith("/v1/"):
            continue
        path = re.sub(r"\{[^}]+\}", "x", template)
        for role in Role:
            response = tenant.get(path, role=role, params={"bogus": "1"})
            if response.status_code != 403:
                break
        assert response.status_code == 422, (template, response.text)
        assert response.json()["error"]["field"] == "bogus", template
        parameters = operations["get"].get("parameters", [])
        declared = {p["name"] for p in parameters if p["in"] == "query"}
        assert set(response.json()["error"]["allowed"]) == declared, template
        checked += 1
    assert checked > 20
