"""Flows through the HTTP API, as an administrator and an integration use them."""

from __future__ import annotations

from typing import Any

import pytest

from outbound.app import Container
from outbound.cli.samples import SAMPLE_NAMES, apply_sample, load_sample
from outbound.schemas import Role
from tests.helpers import Setup, Tenant, assert_error

YAML = {"Content-Type": "application/yaml"}

INSTANT = """\
name: weather-delay
description: Deliveries late because of the weather
configuration: Case updates
trigger:
  type: instant
source:
  records: contacts
conditions:
  - field: contact.custom.city
    op: eq
    value: Lyon
recipient:
  contextitems:
    CaseName: "{contact.custom.order}"
"""


def apply(tenant: Tenant, text: str, role: Role = Role.ADMIN, **params: Any) -> Any:
    return tenant.post("/v1/flows", content=text.encode(), headers=YAML, role=role, params=params)


def run_engine(container: Container) -> None:
    container.flow_engine("test").run_until_idle()


def add_contact(tenant: Tenant, phone: str, **fields: Any) -> dict[str, Any]:
    body = {"name": "Ana", "mobile_phone": phone, "consent": {"sms": True}, **fields}
    response = tenant.post("/v1/contacts", body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def test_apply_creates_then_updates_by_name(tenant: Tenant, setup: Setup) -> None:
    created = apply(tenant, INSTANT)
    assert created.status_code == 201, created.text
    flow = created.json()
    assert flow["trigger_type"] == "instant"
    assert flow["configuration_id"] == setup.config_id
    assert flow["version"] == 1
    assert flow["source"] == INSTANT
    updated = apply(tenant, INSTANT.replace("Lyon", "Paris"))
    assert updated.status_code == 200
    assert updated.json()["id"] == flow["id"]
    assert updated.json()["version"] == 2
    listed = tenant.get("/v1/flows").json()["data"]
    assert [f["name"] for f in listed] == ["weather-delay"]
    assert tenant.get("/v1/flows/weather-delay").json()["id"] == flow["id"]
    assert tenant.get(f"/v1/flows/{flow['id']}").json()["name"] == "weather-delay"


def test_json_documents_are_accepted(tenant: Tenant, setup: Setup) -> None:
    body = {
        "name": "json-flow",
        "configuration": setup.config_id,
        "trigger": {"type": "automatic", "event": "order.delayed"},
    }
    response = tenant.post("/v1/flows", body)
    assert response.status_code == 201, response.text
    assert response.json()["event_type"] == "order.delayed"


def test_invalid_documents_name_the_field_and_line(tenant: Tenant, setup: Setup) -> None:
    text = INSTANT.replace("op: eq", "op: equals").replace("type: instant", "type: sometimes")
    response = apply(tenant, text)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_flow"
    found = {(e["field"], e["line"]) for e in error["errors"]}
    assert ("trigger.type", 5) in found
    assert ("conditions[0].op", 10) in found
    unknown = apply(tenant, INSTANT.replace("Case updates", "No such configuration"))
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "configuration"
    broken = apply(tenant, "name: x\ntrigger: [unclosed\n")
    assert broken.status_code == 422
    assert broken.json()["error"]["field"] == "document"
    assert tenant.get("/v1/flows").json()["data"] == []


def test_dry_run_validates_without_saving(tenant: Tenant, setup: Setup) -> None:
    response = apply(tenant, INSTANT, dry_run="true")
    assert response.status_code == 200, response.text
    assert response.json()["valid"] is True
    assert tenant.get("/v1/flows").json()["data"] == []


def test_unsupported_content_type(tenant: Tenant, setup: Setup) -> None:
    response = tenant.post(
        "/v1/flows", content=b"<flow/>", headers={"Content-Type": "application/xml"}
    )
    assert response.status_code == 415
    assert response.json()["error"]["field"] == "Content-Type"


def test_only_admins_apply_and_senders_run(tenant: Tenant, setup: Setup) -> None:
    assert apply(tenant, INSTANT, role=Role.SENDER).status_code == 403
    assert apply(tenant, INSTANT).status_code == 201
    assert tenant.post("/v1/flows/weather-delay/runs", {}, role=Role.AGENT).status_code == 403
    assert tenant.post("/v1/flows/weather-delay/runs", {}, role=Role.SENDER).status_code == 202


def test_flows_belong_to_one_organisation(
    tenant: Tenant, other_tenant: Tenant, setup: Setup
) -> None:
    flow = apply(tenant, INSTANT).json()
    assert other_tenant.get(f"/v1/flows/{flow['id']}").status_code == 404
    assert other_tenant.post(f"/v1/flows/{flow['id']}/runs", {}).status_code == 404
    run = tenant.post(f"/v1/flows/{flow['id']}/runs", {}).json()
    assert other_tenant.get(f"/v1/flow-runs/{run['id']}").status_code == 404
    assert other_tenant.post(f"/v1/flow-runs/{run['id']}/cancel").status_code == 404


def test_instant_run_with_extra_conditions(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    add_contact(tenant, "+33612345001", custom={"city": "Lyon", "order": "A-1", "tier": "gold"})
    add_contact(tenant, "+33612345002", custom={"city": "Lyon", "order": "A-2", "tier": "std"})
    add_contact(tenant, "+33612345003", custom={"city": "Nice", "order": "A-3", "tier": "gold"})
    apply(tenant, INSTANT)
    started = tenant.post(
        "/v1/flows/weather-delay/runs",
        {"conditions": [{"field": "contact.custom.tier", "value": "gold"}]},
    )
    assert started.status_code == 202, started.text
    run = started.json()
    assert run["status"] == "pending"
    run_engine(container)
    done = tenant.get(f"/v1/flow-runs/{run['id']}").json()
    assert done["status"] == "completed"
    assert (done["total"], done["matched"], done["queued"]) == (3, 1, 1)
    assert done["progress"] == 1.0
    messages = tenant.get("/v1/messages").json()["data"]
    assert [m["body"] for m in messages] == ["Hi Ana, case A-1 was updated."]
    runs = tenant.get("/v1/flows/weather-delay/runs").json()["data"]
    assert [r["id"] for r in runs] == [run["id"]]


def test_run_conditions_are_validated(tenant: Tenant, setup: Setup) -> None:
    apply(tenant, INSTANT)
    response = tenant.post(
        "/v1/flows/weather-delay/runs", {"conditions": [{"field": "x", "op": "like"}]}
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "conditions[0].op"


def test_nul_in_a_run_is_refused_naming_the_field(tenant: Tenant, setup: Setup) -> None:
    """Like every other input: PostgreSQL can neither store nor compare text with NUL."""
    apply(tenant, INSTANT)
    for body, field in (
        ({"conditions": [{"field": "contact.name", "value": "A\u0000"}]}, "conditions[0].value"),
        ({"conditions": [{"field": "contact.\u0000"}]}, "conditions[0].field"),
        ({"params": {"order": ["A-1", "A\u0000"]}}, "params"),
    ):
        response = tenant.post("/v1/flows/weather-delay/runs", body)
        error = assert_error(response, 422, "invalid_request", field)
        assert "NUL" in error["message"], error
    assert tenant.get("/v1/flows/weather-delay/runs").json()["data"] == []


def test_csv_list_run(tenant: Tenant, setup: Setup, container: Container) -> None:
    flow = INSTANT.replace("records: contacts", "records: csv").replace(
        "conditions:\n  - field: contact.custom.city\n    op: eq\n    value: Lyon\n", ""
    )
    flow = flow.replace("{contact.custom.order}", "{record.order}")
    assert apply(tenant, flow).status_code == 201
    needs_list = tenant.post("/v1/flows/weather-delay/runs", {})
    assert needs_list.status_code == 422
    assert needs_list.json()["error"]["code"] == "csv_required"
    body = (
        "name,mobile_phone,consent_sms,order\r\n"
        "Ana,+33612345678,yes,O-1\r\n"
        "Bo,+33612345679,no,O-2\r\n"
    )
    started = tenant.post(
        "/v1/flows/weather-delay/runs",
        content=body.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert started.status_code == 202, started.text
    assert started.json()["total"] == 2
    run_engine(container)
    done = tenant.get(f"/v1/flow-runs/{started.json()['id']}").json()
    assert (done["status"], done["queued"], done["skipped"]) == ("completed", 1, 1)


def test_automatic_flows_cannot_be_run_by_hand(tenant: Tenant, setup: Setup) -> None:
    tenant.post(
        "/v1/flows",
        {
            "name": "auto",
            "configuration": setup.config_id,
            "trigger": {"type": "automatic", "event": "case.created"},
        },
    )
    response = tenant.post("/v1/flows/auto/runs", {})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "flow_not_runnable"


def test_disabled_flows_do_not_react(tenant: Tenant, setup: Setup, container: Container) -> None:
    contact = add_contact(tenant, "+33612345678")
    tenant.post(
        "/v1/flows",
        {
            "name": "auto",
            "configuration": setup.config_id,
            "trigger": {"type": "automatic", "event": "case.created"},
        },
    )
    assert tenant.post("/v1/flows/auto/disable").json()["enabled"] is False
    tenant.post("/v1/cases", {"title": "Broken", "contact_id": contact["id"]})
    run_engine(container)
    assert tenant.get("/v1/messages").json()["data"] == []
    assert tenant.post("/v1/flows/auto/enable").json()["enabled"] is True
    tenant.post("/v1/cases", {"title": "Broken again", "contact_id": contact["id"]})
    run_engine(container)
    assert len(tenant.get("/v1/messages").json()["data"]) == 1


def test_cancel_and_delete(tenant: Tenant, setup: Setup) -> None:
    apply(tenant, INSTANT)
    run = tenant.post("/v1/flows/weather-delay/runs", {}).json()
    assert tenant.delete("/v1/flows/weather-delay").status_code == 409
    canceled = tenant.post(f"/v1/flow-runs/{run['id']}/cancel")
    assert canceled.json()["status"] == "canceled"
    assert tenant.post(f"/v1/flow-runs/{run['id']}/cancel").status_code == 409
    assert tenant.delete("/v1/flows/weather-delay").status_code == 204
    assert tenant.get("/v1/flows/weather-delay").status_code == 404


def test_external_events_drive_flows(tenant: Tenant, setup: Setup, container: Container) -> None:
    tenant.post(
        "/v1/flows",
        {
            "name": "late-delivery",
            "configuration": setup.config_id,
            "trigger": {"type": "automatic", "event": "order.*"},
            "conditions": [{"field": "record.late_days", "op": "gte", "value": 2}],
            "recipient": {
                "tocontactid": "{record.phone}",
                "optin": True,
                "locale": "{record.language}",
                "contextitems": {"CustomerName": "{record.customer}", "CaseName": "{record.order}"},
            },
        },
    )
    for late, phone in ((3, "+33612345678"), (1, "+33612345679")):
        response = tenant.post(
            "/v1/events",
            {
                "type": "order.delayed",
                "record": {
                    "order": "SO-9",
                    "customer": "Élodie",
                    "phone": phone,
                    "language": "fr-FR",
                    "late_days": late,
                },
            },
        )
        assert response.status_code == 202, response.text
    run_engine(container)
    messages = tenant.get("/v1/messages").json()["data"]
    assert [m["body"] for m in messages] == ["Bonjour Élodie, dossier SO-9 mis à jour."]


@pytest.fixture
def sms_channel(tenant: Tenant) -> str:
    channel = tenant.post(
        "/v1/channels",
        {"name": "SMS", "type": "sms", "provider": "sandbox", "sender": "+15005550006"},
    )
    assert channel.status_code == 201
    return str(channel.json()["id"])


def _call(tenant: Tenant) -> Any:
    def call(method: str, path: str, **kwargs: Any) -> Any:
        response = tenant.request(method, path, **kwargs)
        assert response.status_code < 400, response.text
        return response.json()

    return call


def test_samples_case_created_and_case_resolved(
    tenant: Tenant, sms_channel: str, container: Container
) -> None:
    for name in SAMPLE_NAMES:
        apply_sample(_call(tenant), load_sample(name), sms_channel)
    ana = add_contact(tenant, "+33612345678", name="Élodie", preferred_language="fr-FR")
    bo = add_contact(tenant, "+14155552671", name="Bo", preferred_language="en-US")
    no_consent = add_contact(tenant, "+14155552672", name="Cy", consent={"sms": False})
    cases = [
        tenant.post("/v1/cases", {"title": title, "contact_id": who["id"]}).json()
        for title, who in (("Broken screen", ana), ("Late parcel", bo), ("Refund", no_consent))
    ]
    run_engine(container)
    created = tenant.get("/v1/messages").json()["data"]
    by_case = {m["regarding_object_id"]: m for m in created}
    assert len(created) == 3
    assert by_case[cases[0]["id"]]["body"].startswith(
        f"Bonjour Élodie, nous avons ouvert le dossier {cases[0]['number']}"
    )
    assert by_case[cases[2]["id"]]["status"] == "skipped"

    for case in cases[:2]:
        assert tenant.post(f"/v1/cases/{case['id']}/resolve").status_code == 200
    run = tenant.post("/v1/flows/case-resolved/runs", {}).json()
    run_engine(container)
    done = tenant.get(f"/v1/flow-runs/{run['id']}").json()
    assert (done["status"], done["matched"], done["queued"]) == ("completed", 2, 2)
    timeline = tenant.get(f"/v1/timeline/{cases[1]['id']}").json()["data"]
    bodies = sorted(m["body"] for m in timeline)
    assert bodies[1].startswith(f"Hi Bo, your case {cases[1]['number']} (Late parcel) is resolved")


def test_a_configuration_used_by_a_flow_cannot_be_deleted(tenant: Tenant, setup: Setup) -> None:
    apply(tenant, INSTANT)
    response = tenant.delete(f"/v1/outbound-configurations/{setup.config_id}")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "configuration_in_use"
    assert "weather-delay" in error["message"]
    assert tenant.delete("/v1/flows/weather-delay").status_code == 204
    assert tenant.delete(f"/v1/outbound-configurations/{setup.config_id}").status_code == 204
