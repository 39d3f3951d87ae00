"""What every answer tells a browser: no sniffing, no caching of the API, a content policy on
pages, and how to authenticate after a 401."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from outbound.app import Container, create_app
from outbound.schemas import Role
from outbound.web.security import DEFAULT_CSP, SecurityHeaders
from tests.helpers import Setup, Tenant


def test_every_answer_forbids_sniffing(tenant: Tenant) -> None:
    answers = [
        tenant.client.get("/healthz"),
        tenant.get("/v1/organization"),
        tenant.client.get("/v1/organization"),  # 401
        tenant.client.get("/no-such-page"),  # 404 from the router
        tenant.client.post("/webhooks/no-such-channel", content=b"{}"),  # the fast path
        tenant.client.get("/openapi.json"),
    ]
    for response in answers:
        assert response.headers["x-content-type-options"] == "nosniff", response.request.url


def test_an_unexpected_error_forbids_sniffing_and_caching(
    container: Container, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(container.channels, "list", broken)
    with TestClient(create_app(container, run_worker=False), raise_server_exceptions=False) as c:
        response = c.get("/v1/channels", headers=tenant.headers())
    assert response.status_code == 500
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_api_answers_are_not_stored(tenant: Tenant, setup: Setup) -> None:
    key = tenant.post("/v1/api-keys", {"role": "sender", "name": "ci"})
    assert key.status_code == 201
    channel = tenant.get(f"/v1/channels/{setup.channel['id']}")
    assert "?token=" in channel.json()["webhook_url"]
    for response in (key, channel, tenant.get("/v1/channels", Role.SENDER)):
        assert response.headers["cache-control"] == "no-store", response.request.url
    assert tenant.client.get("/v1/organization").headers["cache-control"] == "no-store"
    assert "cache-control" not in tenant.client.get("/healthz").headers


def test_a_401_names_the_scheme(tenant: Tenant) -> None:
    for headers in ({}, {"Authorization": "Basic eDp5"}, {"Authorization": "Bearer ob_wrong"}):
        response = tenant.client.get("/v1/organization", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer ")
    assert "www-authenticate" not in tenant.get("/v1/organization", Role.AGENT).headers


def _inline_script_hashes(html: str) -> set[str]:
    return {
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    }


def test_redoc_sends_browsers_to_swagger_ui(client: TestClient) -> None:
    response = client.get("/redoc", follow_redirects=False)
    assert response.status_code == 308
    assert response.headers["location"] == "/docs"


def test_openapi_declares_the_bearer_scheme(client: TestClient) -> None:
    description = client.get("/openapi.json").json()
    scheme = description["components"]["securitySchemes"]["apiKey"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert description["paths"]["/v1/outbound/send"]["post"]["security"] == [{"apiKey": []}]
    assert "security" not in description["paths"]["/healthz"]["get"]


def test_the_documentation_page_carries_a_content_policy(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = {
        name: sources
        for name, _, sources in (
            directive.partition(" ")
            for directive in response.headers["content-security-policy"].split("; ")
        )
    }
    assert policy["default-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert "https:" not in response.headers["content-security-policy"]  # nothing from elsewhere
    assert "/static/vendor/" in response.text
    for script_hash in _inline_script_hashes(response.text):
        assert script_hash in policy["script-src"].split()
    assert "/openapi.json" in response.text


def test_other_pages_get_the_default_policy() -> None:
    async def page(_request: object) -> HTMLResponse:
        return HTMLResponse("<p>hello</p>")

    app = SecurityHeaders(Starlette(routes=[Route("/page", page)]))
    response = TestClient(app).get("/page")  # type: ignore[arg-type]
    assert response.headers["content-security-policy"] == DEFAULT_CSP
    assert response.headers["x-content-type-options"] == "nosniff"
