"""Configuration ids as Dynamics 365 flows write them: any case, with or without braces, in the
request and in msdyn_ocoutboundconfigurationid."""

from __future__ import annotations

import pytest

from tests.helpers import Setup, Tenant, assert_error, contact


@pytest.mark.parametrize("form", ["upper", "braces", "upper braces"])
def test_a_configuration_id_written_the_dynamics_way_is_the_same_configuration(
    tenant: Tenant, setup: Setup, form: str
) -> None:
    written = setup.config_id.upper() if "upper" in form else setup.config_id
    if "braces" in form:
        written = "{" + written + "}"
    item = contact()
    item["contextitems"]["msdyn_ocoutboundconfigurationid"] = "{" + setup.config_id.upper() + "}"
    response = tenant.post("/v1/outbound/send", {"configuration_id": written, "contacts": [item]})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["configuration_id"] == setup.config_id
    assert body["results"][0]["status"] == "queued", body


def test_another_configuration_named_in_the_context_is_still_refused(
    tenant: Tenant, setup: Setup
) -> None:
    item = contact()
    item["contextitems"]["msdyn_ocoutboundconfigurationid"] = (
        "{00000000-0000-0000-0000-000000000000}"
    )
    response = tenant.post(
        "/v1/outbound/send", {"configuration_id": setup.config_id, "contacts": [item]}
    )
    assert response.status_code == 202, response.text
    assert response.json()["results"][0]["reason"].startswith("configuration_mismatch")


def test_a_configuration_id_in_braces_with_an_idempotency_key(tenant: Tenant, setup: Setup) -> None:
    braced = "{" + setup.config_id.upper() + "}"
    body = {"configuration_id": braced, "contacts": [{"tocontactid": "c1", "optin": True}]}
    first = tenant.post("/v1/outbound/send", body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 202, first.text
    again = tenant.post("/v1/outbound/send", body, headers={"Idempotency-Key": "k-1"})
    assert again.json() == first.json()
    unknown = {**body, "configuration_id": "{" + "0" * 36 + "}"}
    response = tenant.post("/v1/outbound/send", unknown, headers={"Idempotency-Key": "k-2"})
    assert_error(response, 404, "not_found", "configuration_id")
    longer = {**body, "configuration_id": "0" * 39}
    response = tenant.post("/v1/outbound/send", longer, headers={"Idempotency-Key": "k-3"})
    assert_error(response, 422, "invalid_request", "configuration_id")
