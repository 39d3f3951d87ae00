"""Requests as Dynamics 365 flows write them: extra members, misspellings, repeated numbers."""

from __future__ import annotations

from typing import Any

from tests.helpers import Setup, Tenant, contact

SEND = "/v1/outbound/send"


def _send(tenant: Tenant, setup: Setup, contacts: list[dict[str, Any]], **kw: Any) -> Any:
    return tenant.post(SEND, {"configuration_id": setup.config_id, "contacts": contacts}, **kw)


def test_unknown_members_of_a_contact_are_warned_about_not_refused(
    tenant: Tenant, setup: Setup
) -> None:
    items = [
        contact(f"+3361234567{i}", contactid=f"c-{i}", **({"Extra column": "x"} if i else {}))
        for i in range(3)
    ]
    response = _send(tenant, setup, items)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["queued"] == 3
    assert body["warnings"] == [
        {"index": 0, "field": "contacts[0].contactid", "message": "unknown field, ignored"},
        {"index": 1, "field": "contacts[1].contactid", "message": "unknown field, ignored"},
        {"index": 1, "field": "contacts[1].Extra column", "message": "unknown field, ignored"},
        {"index": 2, "field": "contacts[2].contactid", "message": "unknown field, ignored"},
        {"index": 2, "field": "contacts[2].Extra column", "message": "unknown field, ignored"},
    ]
    stored = tenant.get(f"/v1/messages/{body['results'][1]['message_id']}").json()
    assert stored["body"] == "Hi Ana, case CAS-1 was updated."


def test_a_full_batch_with_unknown_members_is_processed(tenant: Tenant, setup: Setup) -> None:
    items = [contact(f"+336123{i:05d}", contactid=str(i)) for i in range(100)]
    body = _send(tenant, setup, items).json()
    assert body["queued"] == 100
    assert len(body["warnings"]) == 100


def test_option_is_read_as_optin_with_a_warning(tenant: Tenant, setup: Setup) -> None:
    yes = {k: v for k, v in contact().items() if k != "optin"} | {"option": True}
    no = {k: v for k, v in contact("+33612345679").items() if k != "optin"} | {"option": False}
    both = contact("+33612345670", option=False)  # optin wins; option is then unknown
    body = _send(tenant, setup, [yes, no, both]).json()
    assert [r["status"] for r in body["results"]] == ["queued", "skipped", "queued"]
    assert body["results"][1]["reason"] == "opted_out"
    assert body["warnings"] == [
        {"index": 0, "field": "contacts[0].option", "message": "read as optin"},
        {"index": 1, "field": "contacts[1].option", "message": "read as optin"},
        {"index": 2, "field": "contacts[2].option", "message": "unknown field, ignored"},
    ]
    # option is still a boolean, as optin is.
    wrong = {k: v for k, v in contact().items() if k != "optin"} | {"option": "yes"}
    response = _send(tenant, setup, [wrong])
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "contacts[0].optin"


def test_unknown_top_level_members_are_still_refused(tenant: Tenant, setup: Setup) -> None:
    response = tenant.post(
        SEND, {"configuration_id": setup.config_id, "contacts": [contact()], "extra": 1}
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "extra"
    assert tenant.get("/v1/messages").json()["data"] == []


def test_warnings_are_replayed_and_keep_the_digest(tenant: Tenant, setup: Setup) -> None:
    headers = {"Idempotency-Key": "k-1"}
    first = _send(tenant, setup, [contact(contactid="1")], headers=headers)
    again = _send(tenant, setup, [contact(contactid="1")], headers=headers)
    assert again.status_code == 202
    assert again.json() == first.json()
    assert again.json()["warnings"][0]["field"] == "contacts[0].contactid"


def test_a_member_name_that_cannot_be_stored_is_shown_escaped(tenant: Tenant, setup: Setup) -> None:
    body = _send(tenant, setup, [contact(**{"bad\x00key": 1, "k" * 300: 2})]).json()
    assert body["queued"] == 1
    fields = [w["field"] for w in body["warnings"]]
    assert fields[0] == "contacts[0].bad\\x00key"
    assert len(fields[1]) < 120


def test_the_same_number_twice_gets_one_message(tenant: Tenant, setup: Setup) -> None:
    items = [
        contact("+33612345678", optin=False),  # not queued: the next one is the first
        contact("06 12 34 56 78"),
        contact("+33612345679"),
        contact("+33 6 12 34 56 78"),
        contact("not a number"),
        contact("not a number"),
    ]
    body = _send(tenant, setup, items).json()
    assert [(r["status"], r["reason"]) for r in body["results"]] == [
        ("skipped", "opted_out"),
        ("queued", None),
        ("queued", None),
        ("skipped", "duplicate_in_request"),
        ("rejected", "invalid_number: not a phone number"),
        ("rejected", "invalid_number: not a phone number"),
    ]
    assert (body["queued"], body["skipped"], body["rejected"]) == (2, 2, 2)
    skipped = tenant.get(f"/v1/messages/{body['results'][3]['message_id']}").json()
    assert (skipped["status"], skipped["reason"]) == ("skipped", "duplicate_in_request")


def test_a_configuration_may_allow_the_same_number_twice(tenant: Tenant, setup: Setup) -> None:
    assert setup.configuration["allow_duplicate_numbers"] is False
    changed = tenant.patch(
        f"/v1/outbound-configurations/{setup.config_id}", {"allow_duplicate_numbers": True}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["allow_duplicate_numbers"] is True
    body = _send(tenant, setup, [contact(), contact()]).json()
    assert [r["status"] for r in body["results"]] == ["queued", "queued"]
