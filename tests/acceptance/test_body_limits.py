"""Request bodies: a size limit (413), a limit per context value (422), JSON only (415)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from outbound.adapters.db.models import Message, SendRequest
from outbound.app import Container, build_container, create_app
from outbound.config import Settings
from outbound.testing import FakeClock
from tests.helpers import Setup, Tenant, contact, make_setup, make_tenant


def _stored(container: Container) -> tuple[int, int]:
    with container.db.read() as session:
        messages = session.execute(sa.select(sa.func.count(Message.id))).scalar_one()
        requests = session.execute(sa.select(sa.func.count(SendRequest.id))).scalar_one()
    return messages, requests


def _body(setup: Setup, **context: Any) -> dict[str, Any]:
    item = contact()
    item["contextitems"].update(context)
    return {"configuration_id": setup.config_id, "contacts": [item]}


def test_a_json_body_over_one_mebibyte_is_refused_before_anything_is_stored(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    big = _body(setup, Padding="x" * 1900)
    big["contacts"] = big["contacts"] * 600  # ~1.2 MB
    response = tenant.post("/v1/outbound/send", big)
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("payload_too_large", "body")
    assert "1048576 bytes" in error["message"]
    assert _stored(container) == (0, 0)
    assert tenant.get("/v1/messages").json()["data"] == []


@pytest.fixture
def small(settings: Settings, clock: FakeClock) -> Iterator[tuple[Container, Tenant]]:
    limited = settings.model_copy(update={"max_json_body_bytes": 4096})
    c = build_container(limited, clock=clock)
    c.migrate()
    with TestClient(create_app(c, run_worker=False)) as client:
        yield c, make_tenant(c, client)
    c.db.dispose()


def test_the_limit_is_a_setting_and_counts_chunked_bodies_too(
    small: tuple[Container, Tenant],
) -> None:
    container, tenant = small
    setup = make_setup(tenant)
    assert tenant.post("/v1/outbound/send", _body(setup)).status_code == 202
    text = json.dumps(_body(setup, Padding="x" * 5000)).encode()
    declared = tenant.post(
        "/v1/outbound/send", content=text, headers={"Content-Type": "application/json"}
    )
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(text), 1000):
            yield text[start : start + 1000]

    chunked = tenant.post(
        "/v1/outbound/send", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert chunked.status_code == 413, chunked.text
    assert chunked.json()["error"]["code"] == "payload_too_large"
    assert _stored(container) == (1, 1)


def test_a_context_value_over_the_limit_is_refused_naming_it(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    response = tenant.post("/v1/outbound/send", _body(setup, CustomerName="A" * 2001))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "contacts[0].contextitems.CustomerName"
    assert "at most 2000 characters" in error["message"]
    assert _stored(container) == (0, 0)
    assert (
        tenant.post("/v1/outbound/send", _body(setup, CustomerName="A" * 2000)).status_code == 202
    )


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "text/csv"]
)
def test_a_body_that_is_not_json_is_415(
    tenant: Tenant, setup: Setup, container: Container, content_type: str
) -> None:
    response = tenant.post(
        "/v1/outbound/send",
        content=json.dumps(_body(setup)).encode(),
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 415, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("unsupported_media_type", "Content-Type")
    assert content_type in error["message"]
    assert _stored(container) == (0, 0)
    consent = tenant.put("/v1/consent", content=b"number=1", headers={"Content-Type": content_type})
    assert consent.status_code == 415


def test_json_with_a_charset_or_a_json_suffix_is_read(tenant: Tenant, setup: Setup) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        response = tenant.post(
            "/v1/outbound/send",
            content=json.dumps(_body(setup)).encode(),
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 202, (content_type, response.text)
