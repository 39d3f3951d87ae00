"""Contacts, cases and events: CRUD, validation, tenancy, and the events each change raises."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from outbound.adapters.db.models import Case, Contact, Event
from outbound.app import Container
from outbound.domain.contacts import case_record, contact_record
from outbound.errors import ConflictError
from outbound.schemas import CaseCreate, ContactCreate, ContactUpdate, Role
from outbound.services import events as events_module
from tests.helpers import Tenant, assert_error

MISSING_ID = "00000000-0000-0000-0000-000000000000"


def events(tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    """The organisation's events, oldest first."""
    response = tenant.get("/v1/events", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["data"]))


def new_contact(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    body = {"name": "Ana", "mobile_phone": "+33612345678", **fields}
    response = tenant.post("/v1/contacts", body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def new_case(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    response = tenant.post("/v1/cases", {"title": "Parcel late", **fields})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# --- contacts -------------------------------------------------------------------------------


def test_contact_crud_raises_events(tenant: Tenant) -> None:
    created = new_contact(
        tenant,
        external_id="crm-1",
        mobile_phone="06 12 34 56 78",
        whatsapp_number="whatsapp:+33 6 98 76 54 32",
        preferred_language=1036,
        consent={"sms": True},
        time_zone="europe/paris",
        custom={"tier": "gold", "visits": 3},
    )
    assert created["mobile_phone"] == "+33612345678"  # national number read in FR
    assert created["whatsapp_number"] == "+33698765432"
    assert created["preferred_language"] == "fr-FR"
    assert created["consent"] == {"sms": True, "whatsapp": False}
    assert created["time_zone"] == "Europe/Paris"
    assert created["custom"] == {"tier": "gold", "visits": 3}
    contact_id = created["id"]
    assert tenant.get(f"/v1/contacts/{contact_id}").json() == created
    assert [c["id"] for c in tenant.get("/v1/contacts").json()["data"]] == [contact_id]

    [event] = events(tenant)
    assert (event["type"], event["record_type"], event["record_id"]) == (
        "contact.created",
        "contact",
        contact_id,
    )
    assert event["source"] == "api" and event["processed_at"] is None
    record = event["data"]["contact"]
    assert record["mobile_phone"] == "+33612345678"
    assert record["consent"] == {"sms": True, "whatsapp": False}

    response = tenant.patch(
        f"/v1/contacts/{contact_id}",
        {"name": "Ana Lima", "consent": {"whatsapp": True}, "custom": {"visits": None, "a": "b"}},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["name"] == "Ana Lima"
    assert updated["consent"] == {"sms": True, "whatsapp": True}
    assert updated["custom"] == {"tier": "gold", "a": "b"}
    event = events(tenant)[-1]
    assert event["type"] == "contact.updated"
    assert event["data"]["contact"]["name"] == "Ana Lima"
    assert event["data"]["changes"] == {
        "name": {"old": "Ana", "new": "Ana Lima"},
        "consent": {
            "old": {"sms": True, "whatsapp": False},
            "new": {"sms": True, "whatsapp": True},
        },
        "custom": {
            "old": {"tier": "gold", "visits": 3},
            "new": {"tier": "gold", "a": "b"},
        },
    }

    # A change that changes nothing raises no event; null clears a field.
    assert tenant.patch(f"/v1/contacts/{contact_id}", {"name": "Ana Lima"}).status_code == 200
    assert len(events(tenant)) == 2
    cleared = tenant.patch(f"/v1/contacts/{contact_id}", {"time_zone": None}).json()
    assert cleared["time_zone"] is None
    assert events(tenant)[-1]["data"]["changes"] == {
        "time_zone": {"old": "Europe/Paris", "new": None}
    }

    assert tenant.delete(f"/v1/contacts/{contact_id}").status_code == 204
    assert_error(tenant.get(f"/v1/contacts/{contact_id}"), 404, "not_found")
    event = events(tenant)[-1]
    assert (event["type"], event["record_id"]) == ("contact.deleted", contact_id)
    assert event["data"]["contact"]["name"] == "Ana Lima"
    assert_error(tenant.delete(f"/v1/contacts/{contact_id}"), 404, "not_found")
    assert [e["type"] for e in events(tenant)] == [
        "contact.created",
        "contact.updated",
        "contact.updated",
        "contact.deleted",
    ]


def test_invalid_contact_is_422_naming_the_field(tenant: Tenant) -> None:
    cases = [
        ({"mobile_phone": "12"}, "mobile_phone"),
        ({"mobile_phone": "hello"}, "mobile_phone"),
        ({"mobile_phone": ""}, "mobile_phone"),
        ({"whatsapp_number": "+1 555"}, "whatsapp_number"),
        ({"preferred_language": "xx-YY"}, "preferred_language"),
        ({"preferred_language": 99999}, "preferred_language"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "../../etc/passwd"}, "time_zone"),
        ({"consent": {"sms": "yes"}}, "consent.sms"),
        ({"consent": {"email": True}}, "consent.email"),
        ({"name": "x" * 201}, "name"),
        ({"custom": {"note": "x" * 2001}}, "custom.note"),
        ({"custom": {"nested": {"a": 1}}}, "custom.nested"),
        ({"id": "mine"}, "id"),
    ]
    for body, field in cases:
        assert_error(tenant.post("/v1/contacts", body), 422, "invalid_request", field)
    # The number itself stays out of the message (messages end up in logs).
    error = assert_error(
        tenant.post("/v1/contacts", {"mobile_phone": "+33 6 99"}),
        422,
        "invalid_request",
        "mobile_phone",
    )
    assert "99" not in error["message"]
    assert tenant.get("/v1/contacts").json()["data"] == []
    assert events(tenant) == []

    new_contact(tenant, external_id="crm-1")
    error = assert_error(
        tenant.post("/v1/contacts", {"external_id": "crm-1"}), 409, "conflict", "external_id"
    )
    assert "crm-1" in error["message"]
    other = new_contact(tenant, external_id="crm-2")
    response = tenant.patch(f"/v1/contacts/{other['id']}", {"external_id": "crm-1"})
    assert_error(response, 409, "conflict", "external_id")
    response = tenant.patch(f"/v1/contacts/{other['id']}", {"mobile_phone": "0000"})
    assert_error(response, 422, "invalid_request", "mobile_phone")
    assert [e["type"] for e in events(tenant)] == ["contact.created", "contact.created"]


def test_contact_list_filters_and_pages(tenant: Tenant) -> None:
    ana = new_contact(tenant, external_id="a", mobile_phone="+33612345678")
    new_contact(tenant, external_id="b", mobile_phone="+33612345679")
    new_contact(tenant, external_id="c", mobile_phone="+33612345679")

    by_phone = tenant.get("/v1/contacts", params={"mobile_phone": "06 12 34 56 78"}).json()
    assert [c["id"] for c in by_phone["data"]] == [ana["id"]]
    by_phone = tenant.get("/v1/contacts", params={"mobile_phone": "+33612345679"}).json()
    assert sorted(c["external_id"] for c in by_phone["data"]) == ["b", "c"]
    by_external = tenant.get("/v1/contacts", params={"external_id": "c"}).json()
    assert [c["external_id"] for c in by_external["data"]] == ["c"]
    response = tenant.get("/v1/contacts", params={"mobile_phone": "nope"})
    assert_error(response, 422, "invalid_request", "mobile_phone")

    first = tenant.get("/v1/contacts", params={"limit": 2}).json()
    assert len(first["data"]) == 2 and first["next_cursor"]
    second = tenant.get("/v1/contacts", params={"limit": 2, "cursor": first["next_cursor"]})
    assert len(second.json()["data"]) == 1 and second.json()["next_cursor"] is None
    seen = {c["id"] for c in first["data"] + second.json()["data"]}
    assert len(seen) == 3
    assert_error(
        tenant.get("/v1/contacts", params={"cursor": "??"}), 422, "invalid_request", "cursor"
    )


def test_contact_with_cases_cannot_be_deleted(tenant: Tenant) -> None:
    contact = new_contact(tenant)
    case = new_case(tenant, contact_id=contact["id"])
    error = assert_error(tenant.delete(f"/v1/contacts/{contact['id']}"), 409, "contact_has_cases")
    assert "1 case" in error["message"]
    assert tenant.get(f"/v1/contacts/{contact['id']}").status_code == 200
    assert "contact.deleted" not in [e["type"] for e in events(tenant)]

    tenant.patch(f"/v1/cases/{case['id']}", {"contact_id": None})
    assert tenant.delete(f"/v1/contacts/{contact['id']}").status_code == 204


# --- cases ----------------------------------------------------------------------------------


def test_case_lifecycle_raises_one_event_per_change(tenant: Tenant) -> None:
    contact = new_contact(tenant)
    case = new_case(tenant, contact_id=contact["id"], custom={"order": "A-1"})
    assert case["number"] == "CAS-000001"
    assert (case["status"], case["resolved_at"]) == ("active", None)
    assert new_case(tenant)["number"] == "CAS-000002"
    assert new_case(tenant, number="SUP-7")["number"] == "SUP-7"
    case_id = case["id"]
    assert tenant.get(f"/v1/cases/{case_id}").json() == case

    created = events(tenant, type="case.created")
    assert len(created) == 3
    assert created[0]["record_id"] == case_id
    assert created[0]["data"]["case"]["number"] == "CAS-000001"
    assert created[0]["data"]["contact"]["id"] == contact["id"]
    assert created[1]["data"]["contact"] is None

    updated = tenant.patch(f"/v1/cases/{case_id}", {"title": "Parcel lost"}).json()
    assert updated["title"] == "Parcel lost"
    event = events(tenant)[-1]
    assert event["type"] == "case.updated"
    assert event["data"]["changes"] == {"title": {"old": "Parcel late", "new": "Parcel lost"}}
    assert event["data"]["case"]["title"] == "Parcel lost"
    assert event["data"]["contact"]["id"] == contact["id"]

    resolved = tenant.post(f"/v1/cases/{case_id}/resolve").json()
    assert resolved["status"] == "resolved" and resolved["resolved_at"]
    event = events(tenant)[-1]
    assert event["type"] == "case.resolved"
    assert event["data"]["case"]["status"] == "resolved"
    assert event["data"]["case"]["resolved_at"] is not None
    assert event["data"]["changes"]["status"] == {"old": "active", "new": "resolved"}

    count = len(events(tenant))
    assert_error(
        tenant.post(f"/v1/cases/{case_id}/resolve"), 409, "invalid_status_change", "status"
    )
    assert_error(tenant.post(f"/v1/cases/{case_id}/cancel"), 409, "invalid_status_change", "status")
    response = tenant.patch(f"/v1/cases/{case_id}", {"status": "canceled"})
    assert_error(response, 409, "invalid_status_change", "status")
    assert len(events(tenant)) == count

    reactivated = tenant.post(f"/v1/cases/{case_id}/reactivate").json()
    assert (reactivated["status"], reactivated["resolved_at"]) == ("active", None)
    assert events(tenant)[-1]["type"] == "case.reactivated"
    assert_error(
        tenant.post(f"/v1/cases/{case_id}/reactivate"), 409, "invalid_status_change", "status"
    )

    canceled = tenant.post(f"/v1/cases/{case_id}/cancel").json()
    assert canceled["status"] == "canceled"
    assert events(tenant)[-1]["type"] == "case.canceled"
    tenant.post(f"/v1/cases/{case_id}/reactivate")

    # Resolving through PATCH is a resolution too, even with other changes.
    patched = tenant.patch(f"/v1/cases/{case_id}", {"status": "resolved", "title": "Found"})
    assert patched.json()["status"] == "resolved" and patched.json()["resolved_at"]
    event = events(tenant)[-1]
    assert event["type"] == "case.resolved"
    assert set(event["data"]["changes"]) == {"status", "title", "resolved_at"}

    assert tenant.delete(f"/v1/cases/{case_id}").status_code == 204
    assert_error(tenant.get(f"/v1/cases/{case_id}"), 404, "not_found")
    event = events(tenant)[-1]
    assert (event["type"], event["record_id"]) == ("case.deleted", case_id)
    assert event["data"]["case"]["title"] == "Found"
    assert event["data"]["contact"]["id"] == contact["id"]
    assert [e["type"] for e in events(tenant, record_id=case_id)] == [
        "case.created",
        "case.updated",
        "case.resolved",
        "case.reactivated",
        "case.canceled",
        "case.reactivated",
        "case.resolved",
        "case.deleted",
    ]


def test_invalid_case_is_refused_naming_the_field(tenant: Tenant, other_tenant: Tenant) -> None:
    foreign = new_contact(other_tenant)
    cases = [
        ({"title": ""}, "title"),
        ({}, "title"),
        ({"title": "x", "status": "closed"}, "status"),
        ({"title": "x", "contact_id": MISSING_ID}, "contact_id"),
        ({"title": "x", "contact_id": foreign["id"]}, "contact_id"),
        ({"title": "x", "custom": {"n": float("inf")}}, "custom.n"),
    ]
    for body, field in cases:
        response = tenant.client.post(
            "/v1/cases",
            content=json.dumps(body),
            headers={**tenant.headers(), "Content-Type": "application/json"},
        )
        assert_error(response, 422, "invalid_request", field)
    taken = new_case(tenant, number="SUP-1")
    assert_error(
        tenant.post("/v1/cases", {"title": "x", "number": "SUP-1"}), 409, "conflict", "number"
    )
    other = new_case(tenant)
    response = tenant.patch(f"/v1/cases/{other['id']}", {"number": "SUP-1"})
    assert_error(response, 409, "conflict", "number")
    for body, field in [
        ({"status": "closed"}, "status"),
        ({"status": None}, "status"),
        ({"title": None}, "title"),
        ({"contact_id": MISSING_ID}, "contact_id"),
    ]:
        response = tenant.patch(f"/v1/cases/{taken['id']}", body)
        assert_error(response, 422, "invalid_request", field)
    assert [e["type"] for e in events(tenant)] == ["case.created", "case.created"]


def test_case_list_filters(tenant: Tenant) -> None:
    contact = new_contact(tenant)
    mine = new_case(tenant, contact_id=contact["id"])
    done = new_case(tenant, status="resolved")
    assert done["resolved_at"] is not None
    new_case(tenant, number="SUP-9")
    listed = tenant.get("/v1/cases").json()["data"]
    assert len(listed) == 3
    assert [c["id"] for c in tenant.get("/v1/cases?status=resolved").json()["data"]] == [done["id"]]
    by_contact = tenant.get("/v1/cases", params={"contact_id": contact["id"]}).json()["data"]
    assert [c["id"] for c in by_contact] == [mine["id"]]
    assert [c["number"] for c in tenant.get("/v1/cases?number=SUP-9").json()["data"]] == ["SUP-9"]
    assert_error(tenant.get("/v1/cases?status=closed"), 422, "invalid_request", "status")


def test_generated_numbers_step_over_numbers_given_by_hand(tenant: Tenant) -> None:
    new_case(tenant, number="CAS-000001")
    # Sorts above every generated number without being one: the next number is unknown,
    # so the first guess collides and the insert is retried with the next one.
    new_case(tenant, number="CAS-00009Z")
    assert new_case(tenant)["number"] == "CAS-000002"
    assert new_case(tenant)["number"] == "CAS-000003"
    assert len(events(tenant, type="case.created")) == 4


def test_case_numbers_stay_unique_under_concurrency(container: Container, tenant: Tenant) -> None:
    workers, per_worker = 6, 5
    failures: list[BaseException] = []
    barrier = threading.Barrier(workers)

    def work() -> None:
        barrier.wait()
        try:
            for _ in range(per_worker):
                container.records.create_case(tenant.org_id, CaseCreate(title="rush"))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with container.db.read() as session:
        numbers = session.execute(
            sa.select(Case.number).where(Case.org_id == tenant.org_id)
        ).scalars()
        numbers = sorted(numbers)
        created = session.execute(
            sa.select(sa.func.count()).select_from(Event).where(Event.type == "case.created")
        ).scalar_one()
    total = workers * per_worker
    assert numbers == [f"CAS-{n:06d}" for n in range(1, total + 1)]
    assert created == total


# --- the same transaction -------------------------------------------------------------------


def test_no_change_without_its_event_and_no_event_without_its_change(
    container: Container, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = container.records
    contact = records.create_contact(tenant.org_id, ContactCreate(name="Ana"))

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("event store unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(events_module, "record_event", broken)
        with pytest.raises(RuntimeError):
            records.create_contact(tenant.org_id, ContactCreate(name="Bob"))
        with pytest.raises(RuntimeError):
            records.update_contact(tenant.org_id, contact.id, ContactUpdate(name="Ana L"))
        with pytest.raises(RuntimeError):
            records.create_case(tenant.org_id, CaseCreate(title="x", contact_id=contact.id))
        with pytest.raises(RuntimeError):
            records.delete_contact(tenant.org_id, contact.id)
    with container.db.read() as session:
        names = session.execute(sa.select(Contact.name)).scalars().all()
        case_count = session.execute(sa.select(sa.func.count()).select_from(Case)).scalar_one()
    assert names == ["Ana"]
    assert case_count == 0

    # A refused change leaves no event behind either.
    records.create_case(tenant.org_id, CaseCreate(title="x", number="N-1"))
    with pytest.raises(ConflictError):
        records.create_case(tenant.org_id, CaseCreate(title="y", number="N-1"))
    with container.db.read() as session:
        types = session.execute(sa.select(Event.type).order_by(Event.id)).scalars().all()
    assert types == ["contact.created", "case.created"]


# --- tenancy and roles ----------------------------------------------------------------------


def test_other_organisations_see_nothing(tenant: Tenant, other_tenant: Tenant) -> None:
    contact = new_contact(tenant, external_id="crm-1")
    case = new_case(tenant, contact_id=contact["id"])
    tenant.post("/v1/events", {"type": "order.delayed", "record": {"id": 1}})
    for method, path, body in [
        ("GET", f"/v1/contacts/{contact['id']}", None),
        ("PATCH", f"/v1/contacts/{contact['id']}", {"name": "x"}),
        ("DELETE", f"/v1/contacts/{contact['id']}", None),
        ("GET", f"/v1/cases/{case['id']}", None),
        ("PATCH", f"/v1/cases/{case['id']}", {"title": "x"}),
        ("POST", f"/v1/cases/{case['id']}/resolve", None),
        ("POST", f"/v1/cases/{case['id']}/cancel", None),
        ("DELETE", f"/v1/cases/{case['id']}", None),
    ]:
        assert_error(other_tenant.request(method, path, json=body), 404, "not_found")
    assert other_tenant.get("/v1/contacts").json()["data"] == []
    assert other_tenant.get("/v1/contacts?external_id=crm-1").json()["data"] == []
    assert other_tenant.get("/v1/cases").json()["data"] == []
    assert events(other_tenant) == []
    # Each organisation has its own external ids and case numbers.
    assert new_contact(other_tenant, external_id="crm-1")["external_id"] == "crm-1"
    assert new_case(other_tenant)["number"] == "CAS-000001"
    assert tenant.get(f"/v1/contacts/{contact['id']}").json()["name"] == "Ana"


def test_roles(tenant: Tenant) -> None:
    contact = new_contact(tenant)
    case = new_case(tenant, contact_id=contact["id"])
    for path in (f"/v1/contacts/{contact['id']}", "/v1/contacts", f"/v1/cases/{case['id']}"):
        assert tenant.get(path, Role.AGENT).status_code == 200
    forbidden = [
        ("POST", "/v1/contacts", {"name": "x"}),
        ("PATCH", f"/v1/contacts/{contact['id']}", {"name": "x"}),
        ("DELETE", f"/v1/contacts/{contact['id']}", None),
        ("POST", "/v1/cases", {"title": "x"}),
        ("POST", f"/v1/cases/{case['id']}/resolve", None),
        ("POST", "/v1/events", {"type": "a.b", "record": {}}),
        ("GET", "/v1/events", None),
    ]
    for method, path, body in forbidden:
        assert_error(tenant.request(method, path, Role.AGENT, json=body), 403, "forbidden")
    assert tenant.post("/v1/contacts", {"name": "S"}, Role.SENDER).status_code == 201
    assert tenant.post(f"/v1/cases/{case['id']}/resolve", role=Role.SENDER).status_code == 200
    assert tenant.post("/v1/events", {"type": "a.b", "record": {}}, Role.SENDER).status_code == 202
    assert tenant.client.get("/v1/contacts").status_code == 401


# --- external events ------------------------------------------------------------------------


def test_external_events_are_stored_and_listed(tenant: Tenant) -> None:
    record = {"order": "A-17", "contact_id": "c-1", "eta": "2026-01-16", "items": [1, 2]}
    response = tenant.post(
        "/v1/events", {"type": "order.delayed", "record": record, "record_id": "A-17"}
    )
    assert response.status_code == 202, response.text
    event = response.json()
    assert event["type"] == "order.delayed"
    assert (event["record_type"], event["record_id"], event["source"]) == (
        "external",
        "A-17",
        "external",
    )
    assert event["data"] == {"record": record}
    assert event["processed_at"] is None and event["occurred_at"]
    for n in range(3):
        tenant.post("/v1/events", {"type": "weather.alert", "record": {"n": n}})

    listed = events(tenant)
    assert [e["type"] for e in listed] == ["order.delayed"] + ["weather.alert"] * 3
    assert listed[0] == event
    assert [e["id"] for e in events(tenant, type="order.delayed")] == [event["id"]]
    assert [e["id"] for e in events(tenant, record_id="A-17")] == [event["id"]]

    first = tenant.get("/v1/events", params={"limit": 3}).json()
    assert [e["data"]["record"].get("n") for e in first["data"]] == [2, 1, 0]
    rest = tenant.get("/v1/events", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert [e["id"] for e in rest["data"]] == [event["id"]] and rest["next_cursor"] is None
    for cursor in ("nope", "ZXZlbnQ6", "Y2FzZToz"):
        response = tenant.get("/v1/events", params={"cursor": cursor})
        assert_error(response, 422, "invalid_request", "cursor")


def test_event_ids_tell_nothing_of_other_organisations(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    """Events are numbered across organisations; the ids shown are not those numbers."""

    def post(who: Tenant) -> str:
        response = who.post("/v1/events", {"type": "order.delayed", "record": {}})
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    before = post(tenant)
    for _ in range(5):
        post(other_tenant)
    after = post(tenant)
    for public in (before, after):
        assert public.startswith("evt_") and not public[4:].isdigit()
    assert before[4:8] != after[4:8]
    # Paging works with the organisation's own ids, and refuses another's.
    first = tenant.get("/v1/events", params={"limit": 1}).json()
    assert [e["id"] for e in first["data"]] == [after]
    rest = tenant.get("/v1/events", params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert [e["id"] for e in rest["data"]] == [before]
    theirs = other_tenant.get("/v1/events", params={"cursor": first["next_cursor"]})
    assert_error(theirs, 422, "invalid_request", "cursor")


def test_invalid_external_event_is_422(tenant: Tenant) -> None:
    for body, field in [
        ({"record": {}}, "type"),
        ({"type": "", "record": {}}, "type"),
        ({"type": "order delayed", "record": {}}, "type"),
        ({"type": "case.created", "record": {}}, "type"),
        ({"type": "Contact.Updated", "record": {}}, "type"),
        ({"type": "order.delayed"}, "record"),
        ({"type": "order.delayed", "record": [1]}, "record"),
        ({"type": "order.delayed", "record": {"x": "y" * 70_000}}, "record"),
        ({"type": "order.delayed", "record": {}, "record_id": ""}, "record_id"),
        ({"type": "order.delayed", "record": {}, "extra": 1}, "extra"),
    ]:
        assert_error(tenant.post("/v1/events", body), 422, "invalid_request", field)
    assert events(tenant) == []


# --- the records flows see ------------------------------------------------------------------


def test_records_are_json_safe_dicts(container: Container, tenant: Tenant) -> None:
    contact = new_contact(tenant, custom={"tier": "gold"}, consent={"whatsapp": True})
    case = new_case(tenant, contact_id=contact["id"])
    tenant.post(f"/v1/cases/{case['id']}/resolve")
    with container.db.read() as session:
        contact_row = session.get(Contact, contact["id"])
        case_row = session.get(Case, case["id"])
        assert contact_row is not None and case_row is not None
        c_record = contact_record(contact_row)
        k_record = case_record(case_row)
    assert list(c_record) == [
        "id",
        "external_id",
        "name",
        "mobile_phone",
        "whatsapp_number",
        "preferred_language",
        "consent",
        "time_zone",
        "custom",
        "created_at",
        "updated_at",
    ]
    assert c_record["consent"] == {"sms": False, "whatsapp": True}
    assert c_record["created_at"].endswith("+00:00")
    assert list(k_record) == [
        "id",
        "number",
        "title",
        "status",
        "contact_id",
        "custom",
        "created_at",
        "updated_at",
        "resolved_at",
    ]
    assert k_record["status"] == "resolved" and k_record["resolved_at"].endswith("+00:00")
    assert json.loads(json.dumps([c_record, k_record])) == [c_record, k_record]
    event = events(tenant, type="case.resolved")[0]
    assert event["data"]["case"] == k_record
    assert event["data"]["contact"] == c_record
