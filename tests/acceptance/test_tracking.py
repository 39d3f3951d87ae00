"""Tracking: one message with its history, filtered and paginated lists, a record's timeline."""

from __future__ import annotations

import base64
from typing import Any

from outbound.testing import FakeClock
from tests.helpers import Setup, Tenant, assert_error, contact

SEND = "/v1/outbound/send"
RELATION = "incident_msdyn_ocoutboundmessages"


def send(tenant: Tenant, config_id: str, contacts: list[dict[str, Any]]) -> dict[str, Any]:
    response = tenant.post(SEND, {"configuration_id": config_id, "contacts": contacts})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(tenant: Tenant, path: str = "/v1/messages", **params: Any) -> list[str]:
    response = tenant.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return [m["id"] for m in response.json()["data"]]


def linked(regarding: str | None, relation: str | None = RELATION) -> dict[str, Any]:
    items: dict[str, Any] = {"CustomerName": "Ana", "CaseName": "CAS-1"}
    if regarding is not None:
        items["regardingobjectid"] = regarding
    if relation is not None:
        items["entityrelationshipname"] = relation
    return contact(contextitems=items)


def test_get_message_with_history(tenant: Tenant, setup: Setup) -> None:
    sent = send(tenant, setup.config_id, [linked("CASE-1", RELATION), contact("bad")])
    queued_id, rejected_id = (r["message_id"] for r in sent["results"])

    response = tenant.get(f"/v1/messages/{queued_id}")
    assert response.status_code == 200, response.text
    message = response.json()
    assert "from_" not in message
    expected = {
        "id": queued_id,
        "request_id": sent["request_id"],
        "configuration_id": setup.config_id,
        "channel_id": setup.channel["id"],
        "template_id": setup.template["id"],
        "channel_type": "sms",
        "provider": "sandbox",
        "to": "+33612345678",
        "to_raw": "+33612345678",
        "from": "+15005550006",
        "locale": "en-US",
        "body": "Hi Ana, case CAS-1 was updated.",
        "encoding": "GSM-7",
        "segments": 1,
        "status": "queued",
        "reason": None,
        "provider_message_id": None,
        "error_code": None,
        "attempts": 0,
        "regarding_object_id": "CASE-1",
        "entity_relationship_name": RELATION,
        "created_at": "2026-01-15T09:00:00Z",
    }
    assert {k: message[k] for k in expected} == expected
    [event] = message["history"]
    assert event["status"] == "queued"
    assert event["source"] == "api"
    assert event["occurred_at"] == "2026-01-15T09:00:00Z"

    rejected = tenant.get(f"/v1/messages/{rejected_id}").json()
    assert rejected["status"] == "rejected"
    assert rejected["to"] is None and rejected["to_raw"] == "bad"
    assert rejected["body"] is None
    assert [e["status"] for e in rejected["history"]] == ["rejected"]
    assert rejected["history"][0]["error_message"].startswith("invalid_number")

    # Lists carry no history.
    listed = tenant.get("/v1/messages").json()["data"]
    assert {m["id"] for m in listed} == {queued_id, rejected_id}
    assert all(m["history"] is None and "from" in m for m in listed)

    assert_error(tenant.get("/v1/messages/00000000-0000-0000-0000-000000000000"), 404, "not_found")


def test_list_filters(tenant: Tenant, setup: Setup, clock: FakeClock) -> None:
    second = tenant.post(
        "/v1/outbound-configurations",
        {
            "name": "Second",
            "channel_type": "sms",
            "channel_id": setup.channel["id"],
            "template_id": setup.template["id"],
        },
    ).json()["id"]
    first = send(tenant, setup.config_id, [contact("+33612345678"), contact("oops")])  # 09:00
    clock.advance(3600)
    later = send(tenant, second, [contact("+33612345679", optin=False)])  # 10:00
    clock.advance(3600)
    last = send(tenant, setup.config_id, [contact("+33612345678")])  # 11:00
    a, bad = (r["message_id"] for r in first["results"])
    [b] = (r["message_id"] for r in later["results"])
    [c] = (r["message_id"] for r in last["results"])

    assert ids(tenant) == [c, b, *sorted([a, bad], reverse=True)]
    assert set(ids(tenant, configuration_id=setup.config_id)) == {a, bad, c}
    assert ids(tenant, configuration_id=second) == [b]
    assert ids(tenant, configuration_id="nope") == []
    assert ids(tenant, status="queued") == [c, a]
    assert ids(tenant, status="skipped") == [b]
    assert ids(tenant, status="rejected") == [bad]
    assert ids(tenant, status="delivered") == []
    for number in ("+33612345678", "06 12 34 56 78", "0612345678", "+33 6 12 34 56 78"):
        assert ids(tenant, to=number) == [c, a], number
    assert ids(tenant, to="whatsapp:+33612345679") == [b]
    assert ids(tenant, request_id=first["request_id"]) == sorted([a, bad], reverse=True)
    assert ids(tenant, request_id=later["request_id"]) == [b]
    # Time ranges: after is inclusive, before exclusive; any time zone.
    assert set(ids(tenant, created_after="2026-01-15T10:00:00Z")) == {b, c}
    assert set(ids(tenant, created_after="2026-01-15T11:00:00+01:00")) == {b, c}
    assert set(ids(tenant, created_after="2026-01-15T10:00:01+00:00")) == {c}
    assert set(ids(tenant, created_before="2026-01-15T10:00:00Z")) == {a, bad}
    assert set(ids(tenant, created_before="2026-01-15T05:00:01-05:00")) == {a, bad, b}
    assert ids(
        tenant,
        created_after="2026-01-15T09:30:00Z",
        created_before="2026-01-15T10:30:00Z",
    ) == [b]
    # Filters combine.
    assert ids(tenant, to="0612345678", created_before="2026-01-15T10:00:00Z") == [a]
    assert ids(tenant, status="queued", configuration_id=second) == []

    send(tenant, setup.config_id, [contact()])
    error = assert_error(
        tenant.get("/v1/messages", params={"status": "sent-ish"}), 422, "invalid_request", "status"
    )
    assert "queued" in error["message"]  # lists the valid statuses
    assert_error(
        tenant.get("/v1/messages", params={"to": "not a number"}), 422, "invalid_request", "to"
    )
    for name in ("created_after", "created_before"):
        error = assert_error(
            tenant.get("/v1/messages", params={name: "2026-01-15T10:00:00"}),
            422,
            "invalid_request",
            name,
        )
        assert "time zone" in error["message"]
        assert_error(
            tenant.get("/v1/messages", params={name: "tomorrow"}), 422, "invalid_request", name
        )


def test_cursor_pagination_walks_every_message_once(
    tenant: Tenant, setup: Setup, clock: FakeClock
) -> None:
    expected: list[str] = []
    for batch in (4, 1, 2):  # some messages share a timestamp, some do not
        sent = send(tenant, setup.config_id, [contact() for _ in range(batch)])
        expected += [r["message_id"] for r in sent["results"]]
        clock.advance(1)

    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        response = tenant.get("/v1/messages", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert 1 <= len(page["data"]) <= 2
        seen += [m["id"] for m in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 4
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == set(expected)
    # Newest first.
    created = [tenant.get(f"/v1/messages/{i}").json()["created_at"] for i in seen]
    assert created == sorted(created, reverse=True)
    assert seen == ids(tenant, limit=50)

    # A cursor keeps working with the same filters.
    first = tenant.get(
        "/v1/messages", params={"limit": 3, "configuration_id": setup.config_id}
    ).json()
    rest = tenant.get(
        "/v1/messages",
        params={"limit": 10, "configuration_id": setup.config_id, "cursor": first["next_cursor"]},
    ).json()
    assert [m["id"] for m in first["data"] + rest["data"]] == seen
    assert rest["next_cursor"] is None


def test_bad_cursor_is_422(tenant: Tenant, setup: Setup) -> None:
    send(tenant, setup.config_id, [contact(), contact()])
    valid = tenant.get("/v1/messages", params={"limit": 1}).json()["next_cursor"]
    assert valid is not None

    def b64(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    for cursor in (
        "garbage",
        "!!!",
        "a",
        valid[:-3] + "###",
        b64("yesterday|abc"),
        b64("2026-01-15T09:00:00|abc"),  # no time zone
        b64("2026-01-15T09:00:00+00:00"),  # no id
        b64("2026-01-15T09:00:00+00:00|"),
    ):
        for path in ("/v1/messages", "/v1/channels", "/v1/timeline/CASE-1"):
            assert_error(
                tenant.get(path, params={"cursor": cursor}), 422, "invalid_request", "cursor"
            )


def test_timeline(tenant: Tenant, setup: Setup, clock: FakeClock) -> None:
    hidden_config = tenant.post(
        "/v1/outbound-configurations",
        {
            "name": "Not on timelines",
            "channel_type": "sms",
            "channel_id": setup.channel["id"],
            "template_id": setup.template["id"],
        },
    ).json()
    assert hidden_config["show_in_timeline"] is False
    assert setup.configuration["show_in_timeline"] is True

    shown = send(
        tenant,
        setup.config_id,
        [
            linked("CASE-1"),  # shown
            linked("CASE-1", relation=None),  # no entityrelationshipname
            linked(None),  # no regardingobjectid
            linked("CASE-2"),  # another record
            linked("CASE-1", relation="  "),  # blank counts as missing
            contact(),
        ],
    )
    clock.advance(60)
    later = send(tenant, setup.config_id, [linked("CASE-1", relation="custom_relation")])
    hidden = send(tenant, hidden_config["id"], [linked("CASE-1")])

    first = shown["results"][0]["message_id"]
    second = later["results"][0]["message_id"]
    assert ids(tenant, "/v1/timeline/CASE-1") == [second, first]
    assert ids(tenant, "/v1/timeline/CASE-2") == [shown["results"][3]["message_id"]]
    assert ids(tenant, "/v1/timeline/CASE-3") == []

    entry = tenant.get("/v1/timeline/CASE-1").json()["data"][1]
    assert entry["regarding_object_id"] == "CASE-1"
    assert entry["entity_relationship_name"] == RELATION
    assert entry["body"] == "Hi Ana, case CAS-1 was updated."

    # The hidden configuration's message still records its link.
    hidden_message = tenant.get(f"/v1/messages/{hidden['results'][0]['message_id']}").json()
    assert hidden_message["regarding_object_id"] == "CASE-1"
    missing_relation = tenant.get(f"/v1/messages/{shown['results'][1]['message_id']}").json()
    assert missing_relation["regarding_object_id"] == "CASE-1"
    assert missing_relation["entity_relationship_name"] is None

    page = tenant.get("/v1/timeline/CASE-1", params={"limit": 1}).json()
    assert [m["id"] for m in page["data"]] == [second]
    rest = tenant.get("/v1/timeline/CASE-1", params={"limit": 1, "cursor": page["next_cursor"]})
    assert [m["id"] for m in rest.json()["data"]] == [first]
    assert rest.json()["next_cursor"] is None
