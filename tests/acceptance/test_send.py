"""POST /v1/outbound/send: the contract Dynamics 365 flows call."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from outbound.adapters.db.models import SendRequest
from outbound.app import Container
from outbound.schemas import SendIn
from outbound.services.auth import set_limits
from outbound.services.idempotency import IdempotencyKeys, body_hash
from outbound.testing import FakeClock
from tests.helpers import Setup, Tenant, assert_error, contact, make_setup

SEND = "/v1/outbound/send"


def send(tenant: Tenant, config_id: str, contacts: list[dict[str, Any]], **kw: Any) -> Any:
    return tenant.post(SEND, {"configuration_id": config_id, "contacts": contacts}, **kw)


def accepted(response: Any) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def messages_of(tenant: Tenant, request_id: str) -> list[dict[str, Any]]:
    response = tenant.get("/v1/messages", params={"request_id": request_id, "limit": 500})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def _configuration(tenant: Tenant, setup: Setup, **fields: Any) -> str:
    body = {
        "name": "Another",
        "channel_type": "sms",
        "channel_id": setup.channel["id"],
        "template_id": setup.template["id"],
        **fields,
    }
    response = tenant.post("/v1/outbound-configurations", body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def allow_duplicates(tenant: Tenant, setup: Setup) -> None:
    response = tenant.patch(
        f"/v1/outbound-configurations/{setup.config_id}", {"allow_duplicate_numbers": True}
    )
    assert response.status_code == 200, response.text


# --- the happy path -------------------------------------------------------------------------


def test_send_accepts_and_stores_before_answering(tenant: Tenant, setup: Setup) -> None:
    body = accepted(send(tenant, setup.config_id, [contact()]))
    assert set(body) == {
        "request_id",
        "configuration_id",
        "queued",
        "skipped",
        "rejected",
        "results",
        "warnings",
    }
    assert body["warnings"] == []
    assert body["configuration_id"] == setup.config_id
    assert (body["queued"], body["skipped"], body["rejected"]) == (1, 0, 0)
    [result] = body["results"]
    assert result["index"] == 0
    assert result["status"] == "queued"
    assert result["to"] == "+33612345678"
    assert result["locale"] == "en-US"
    assert result["reason"] is None

    # Durably stored before the 202: readable right away, with its first history entry.
    response = tenant.get(f"/v1/messages/{result['message_id']}")
    assert response.status_code == 200, response.text
    message = response.json()
    assert message["status"] == "queued"
    assert message["request_id"] == body["request_id"]
    assert message["configuration_id"] == setup.config_id
    assert message["channel_id"] == setup.channel["id"]
    assert message["template_id"] == setup.template["id"]
    assert message["to"] == "+33612345678"
    assert message["from"] == "+15005550006"
    assert message["body"] == "Hi Ana, case CAS-1 was updated."
    assert message["encoding"] == "GSM-7"
    assert message["segments"] == 1
    assert [(e["status"], e["source"]) for e in message["history"]] == [("queued", "api")]


def test_one_outcome_per_contact_in_input_order(tenant: Tenant, setup: Setup) -> None:
    contacts = [
        contact("+33612345678"),
        contact("not a number"),
        contact("06 12 34 56 79", optin=False),
        contact("+33612345670", contextitems={"CustomerName": "Bo"}),
        contact("+44 7911 123456"),
    ]
    body = accepted(send(tenant, setup.config_id, contacts))
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["status"] for r in results] == ["queued", "rejected", "skipped", "rejected", "queued"]
    assert [r["to"] for r in results] == [
        "+33612345678",
        None,
        "+33612345679",
        "+33612345670",
        "+447911123456",
    ]
    assert results[1]["reason"].startswith("invalid_number")
    assert results[2]["reason"] == "opted_out"
    assert results[3]["reason"] == "missing_placeholder: CaseName"
    assert (body["queued"], body["skipped"], body["rejected"]) == (2, 1, 2)
    assert len({r["message_id"] for r in results}) == 5

    # Every contact is recorded, with its outcome.
    stored = {m["id"]: m for m in messages_of(tenant, body["request_id"])}
    assert set(stored) == {r["message_id"] for r in results}
    for result in results:
        message = stored[result["message_id"]]
        assert message["status"] == result["status"]
        assert message["reason"] == result["reason"]
        assert message["to"] == result["to"]
    assert stored[results[1]["message_id"]]["to_raw"] == "not a number"
    assert stored[results[3]["message_id"]]["body"] is None

    body = accepted(send(tenant, setup.config_id, [contact(optin=False), contact("+33612345679")]))
    skipped, queued = body["results"]
    assert (skipped["status"], skipped["reason"]) == ("skipped", "opted_out")
    assert queued["status"] == "queued"
    message = tenant.get(f"/v1/messages/{skipped['message_id']}").json()
    assert message["status"] == "skipped"
    assert [e["status"] for e in message["history"]] == ["skipped"]
    queued_ids = {
        m["id"] for m in tenant.get("/v1/messages", params={"status": "queued"}).json()["data"]
    }
    assert queued["message_id"] in queued_ids and skipped["message_id"] not in queued_ids


def test_numbers_are_normalised_or_rejected(tenant: Tenant, setup: Setup) -> None:
    allow_duplicates(tenant, setup)  # the same number, one message per contact
    numbers = {
        "06 12 34 56 78": "+33612345678",  # national, read in the default region FR
        "0612345678": "+33612345678",
        "+33 6 12 34 56 78": "+33612345678",
        "+33 (0)6 12-34-56-78": "+33612345678",
        "0033612345678": "+33612345678",
        "whatsapp:+33612345678": "+33612345678",
        "tel:+1 415 555 2671": "+14155552671",
        "  +447911123456  ": "+447911123456",
    }
    body = accepted(send(tenant, setup.config_id, [contact(n) for n in numbers]))
    assert [r["status"] for r in body["results"]] == ["queued"] * len(numbers)
    assert [r["to"] for r in body["results"]] == list(numbers.values())

    bad = ["12", "hello", "+999 123", "+33 1", "06 12", "+336123456789012"]
    body = accepted(send(tenant, setup.config_id, [*map(contact, bad), contact()]))
    for result in body["results"][:-1]:
        assert result["status"] == "rejected", result
        assert result["reason"].startswith("invalid_number"), result
        assert result["to"] is None
    assert body["results"][-1]["status"] == "queued"
    assert (body["queued"], body["rejected"]) == (1, len(bad))


# --- language -------------------------------------------------------------------------------


def test_language_choice(tenant: Tenant, setup: Setup) -> None:
    allow_duplicates(tenant, setup)  # the same number, one message per contact
    french = "Bonjour Ana, dossier CAS-1 mis à jour."
    english = "Hi Ana, case CAS-1 was updated."
    cases: list[tuple[Any, str, str]] = [
        ("fr-FR", "fr-FR", french),  # exact
        ("fr_fr", "fr-FR", french),
        ("FR-fr", "fr-FR", french),
        ("fr-CA", "fr-FR", french),  # same language, other region
        ("fr", "fr-FR", french),
        (1036, "fr-FR", french),  # Windows LCID as an int
        ("1036", "fr-FR", french),  # and as a string
        (3084, "fr-FR", french),  # fr-CA
        ("en-US", "en-US", english),
        ("en-GB", "en-US", english),
        ("es-ES", "en-US", english),  # configuration default (en-US)
        (None, "en-US", english),
        ("", "en-US", english),
    ]
    contacts = [contact(locale=locale) for locale, _, _ in cases]
    body = accepted(send(tenant, setup.config_id, contacts))
    stored = {m["id"]: m for m in messages_of(tenant, body["request_id"])}
    for (locale, expected, text), result in zip(cases, body["results"], strict=True):
        assert result["status"] == "queued", (locale, result)
        assert result["locale"] == expected, (locale, result)
        message = stored[result["message_id"]]
        assert (message["locale"], message["body"]) == (expected, text), locale

    french_default = _configuration(tenant, setup, name="French default", default_locale="fr-FR")
    no_default = _configuration(tenant, setup, name="No default")
    spanish = [contact(locale="es-ES"), contact(locale="1034"), contact()]

    body = accepted(send(tenant, french_default, spanish))
    assert [r["locale"] for r in body["results"]] == ["fr-FR"] * 3

    body = accepted(send(tenant, no_default, spanish))
    assert [r["locale"] for r in body["results"]] == ["en-US"] * 3
    stored = messages_of(tenant, body["request_id"])
    assert {m["body"] for m in stored} == {"Hi Ana, case CAS-1 was updated."}

    body = accepted(send(tenant, setup.config_id, [contact(locale="xx-YY"), contact(locale=9)]))
    assert [(r["status"], r["reason"]) for r in body["results"]] == [
        ("rejected", "invalid_locale"),
        ("rejected", "invalid_locale"),
    ]
    for locale in (True, 10.36, ["fr-FR"], {"tag": "fr"}):
        assert_error(
            send(tenant, setup.config_id, [contact(locale=locale)]),
            422,
            "invalid_request",
            "contacts[0].locale",
        )


# --- placeholders and context ---------------------------------------------------------------


def test_placeholders(tenant: Tenant, setup: Setup) -> None:
    allow_duplicates(tenant, setup)  # the same number, one message per contact
    contacts = [
        contact(contextitems={"CustomerName": "Ana"}),
        contact(contextitems={"CustomerName": "Ana", "CaseName": None}),
        contact(contextitems={"CustomerName": "{CaseName}", "CaseName": "{{x}}"}),
        contact(contextitems={"customername": "lower", "CASENAME": 7}),
        contact(contextitems={"CustomerName": 42, "CaseName": 1.5, "Unused": "x"}),
        contact(contextitems={}),
    ]
    body = accepted(send(tenant, setup.config_id, contacts))
    results = body["results"]
    assert [(r["status"], r["reason"]) for r in results] == [
        ("rejected", "missing_placeholder: CaseName"),
        ("rejected", "missing_placeholder: CaseName"),
        ("queued", None),
        ("queued", None),
        ("queued", None),
        ("rejected", "missing_placeholder: CustomerName"),
    ]
    bodies = {m["id"]: m["body"] for m in messages_of(tenant, body["request_id"])}
    # Values are inserted literally, never parsed again.
    assert bodies[results[2]["message_id"]] == "Hi {CaseName}, case {{x}} was updated."
    assert bodies[results[3]["message_id"]] == "Hi lower, case 7 was updated."
    assert bodies[results[4]["message_id"]] == "Hi 42, case 1.5 was updated."


def test_context_is_checked_per_contact(tenant: Tenant, setup: Setup) -> None:
    allow_duplicates(tenant, setup)  # the same number, one message per contact
    other = _configuration(tenant, setup)
    values = {"CustomerName": "Ana", "CaseName": "C"}
    contacts = [
        contact(contextitems={**values, "msdyn_ocoutboundconfigurationid": setup.config_id}),
        contact(
            contextitems={**values, "msdyn_ocoutboundconfigurationid": setup.config_id.upper()}
        ),
        contact(contextitems={**values, "msdyn_ocoutboundconfigurationid": other}),
        contact(channelid="sms"),
        contact(channelid="SMS"),
        contact(channelid=setup.channel["id"]),
        contact(channelid="whatsapp"),
        contact(channelid="email"),
    ]
    body = accepted(send(tenant, setup.config_id, contacts))
    statuses = [r["status"] for r in body["results"]]
    assert (
        statuses
        == ["queued", "queued", "rejected", "queued", "queued", "queued"] + ["rejected"] * 2
    )
    assert body["results"][2]["reason"].startswith("configuration_mismatch")
    assert body["results"][6]["reason"].startswith("channel_mismatch")
    assert body["results"][7]["reason"].startswith("channel_mismatch")
    # The configuration id given as context is not a placeholder value and is not sent.
    stored = {m["id"]: m for m in messages_of(tenant, body["request_id"])}
    assert stored[body["results"][0]["message_id"]]["body"] == "Hi Ana, case C was updated."

    relation = "incident_msdyn_ocoutboundmessages"
    contacts = [
        contact(
            contextitems={
                "CustomerName": "A",
                "CaseName": "C",
                "regardingobjectid": "r" * 200,
                "entityrelationshipname": relation,
            }
        ),
        contact(
            contextitems={
                "CustomerName": "A",
                "CaseName": "C",
                "regardingobjectid": "r" * 201,
                "entityrelationshipname": relation,
            }
        ),
        contact(
            contextitems={
                "CustomerName": "A",
                "CaseName": "C",
                "regardingobjectid": "R-1",
                "entityrelationshipname": "e" * 201,
            }
        ),
        contact(contextitems={"CustomerName": "x" * 2000, "CaseName": "C"}),
        contact(),
    ]
    body = accepted(send(tenant, setup.config_id, contacts))
    results = body["results"]
    assert [r["status"] for r in results] == [
        "queued",
        "rejected",
        "rejected",
        "rejected",
        "queued",
    ]
    assert results[1]["reason"].startswith("invalid_context: regardingobjectid")
    assert results[2]["reason"].startswith("invalid_context: entityrelationshipname")
    assert results[3]["reason"].startswith("body_too_long")
    stored = tenant.get(f"/v1/messages/{results[0]['message_id']}").json()
    assert stored["regarding_object_id"] == "r" * 200
    assert [m["id"] for m in tenant.get(f"/v1/timeline/{'r' * 200}").json()["data"]] == [
        results[0]["message_id"]
    ]


# --- request validation ---------------------------------------------------------------------


def test_contact_limits(tenant: Tenant, setup: Setup, container: Container) -> None:
    error = assert_error(
        send(tenant, setup.config_id, [contact() for _ in range(101)]),
        422,
        "too_many_contacts",
        "contacts",
    )
    assert "101" in error["message"] and "100" in error["message"]
    assert_error(send(tenant, setup.config_id, []), 422, "invalid_request", "contacts")
    assert tenant.get("/v1/messages").json()["data"] == []

    full = accepted(send(tenant, setup.config_id, [contact(f"+336123{i:05d}") for i in range(100)]))
    assert full["queued"] == 100

    set_limits(container.db, tenant.org_id, max_contacts_per_request=2)
    assert tenant.get("/v1/organization").json()["max_contacts_per_request"] == 2
    error = assert_error(
        send(tenant, setup.config_id, [contact()] * 3), 422, "too_many_contacts", "contacts"
    )
    assert "2" in error["message"]
    two = [contact(), contact("+33612345679")]
    assert accepted(send(tenant, setup.config_id, two))["queued"] == 2


def test_contact_fields_are_validated(tenant: Tenant, setup: Setup) -> None:
    good = contact()
    without_number = {k: v for k, v in good.items() if k != "tocontactid"}
    without_optin = {k: v for k, v in good.items() if k != "optin"}
    cases: list[tuple[Any, str]] = [
        ([without_number], "contacts[0].tocontactid"),
        ([good, without_optin], "contacts[1].optin"),
        ([contact(optin="yes")], "contacts[0].optin"),
        ([contact(optin=1)], "contacts[0].optin"),
        ([contact(optin="true")], "contacts[0].optin"),
        ([contact(33612345678)], "contacts[0].tocontactid"),
        ([contact("")], "contacts[0].tocontactid"),
        ([contact(contextitems=["a"])], "contacts[0].contextitems"),
        ([contact(contextitems={"CaseName": {"x": 1}})], "contacts[0].contextitems.CaseName"),
        ([contact(channelid=5)], "contacts[0].channelid"),
        ([contact(sendastemplate="no")], "contacts[0].sendastemplate"),
        (["+33612345678"], "contacts[0]"),
        ("+33612345678", "contacts"),
    ]
    for contacts, field in cases:
        assert_error(send(tenant, setup.config_id, contacts), 422, "invalid_request", field)
    assert_error(
        tenant.post(SEND, {"contacts": [good]}), 422, "invalid_request", "configuration_id"
    )
    assert_error(
        tenant.post(SEND, {"configuration_id": setup.config_id, "contacts": [good], "x": 1}),
        422,
        "invalid_request",
        "x",
    )
    assert_error(send(tenant, "", [good]), 422, "invalid_request", "configuration_id")
    assert_error(
        send(tenant, "00000000-0000-0000-0000-000000000000", [good]),
        404,
        "not_found",
        "configuration_id",
    )
    assert tenant.get("/v1/messages").json()["data"] == []


# --- quota ----------------------------------------------------------------------------------


def test_hourly_quota(
    tenant: Tenant, other_tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    set_limits(container.db, tenant.org_id, hourly_request_quota=2)
    accepted(send(tenant, setup.config_id, [contact()]))
    clock.advance(600)
    accepted(send(tenant, setup.config_id, [contact()]))
    clock.advance(60)

    refused = send(tenant, setup.config_id, [contact()])
    error = assert_error(refused, 429, "rate_limited")
    retry_after = refused.headers["Retry-After"]
    assert retry_after.isdigit() and int(retry_after) > 0
    # The first request leaves the sliding hour 3600 - 660 seconds from now.
    assert int(retry_after) == 3600 - 660
    assert error["retry_after"] == int(retry_after)
    assert "2" in error["message"]
    # Refused requests leave nothing behind and do not count.
    assert len(tenant.get("/v1/messages").json()["data"]) == 2
    idempotent = send(tenant, setup.config_id, [contact()], headers={"Idempotency-Key": "q-1"})
    assert_error(idempotent, 429, "rate_limited")
    # Other organisations have their own quota.
    other = make_setup(other_tenant)
    for _ in range(3):
        accepted(send(other_tenant, other.config_id, [contact()]))

    clock.advance(int(retry_after))
    accepted(send(tenant, setup.config_id, [contact()]))
    assert_error(send(tenant, setup.config_id, [contact()]), 429, "rate_limited")

    clock.advance(3601)
    accepted(send(tenant, setup.config_id, [contact()]))
    # The idempotency key of the refused request was not used up.
    accepted(send(tenant, setup.config_id, [contact()], headers={"Idempotency-Key": "q-1"}))


def test_a_request_that_passes_the_early_quota_check_is_still_counted_when_it_writes(
    tenant: Tenant, setup: Setup, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The early check is a read: two requests may both pass it. The count in the accepting
    transaction is what holds, and a request refused there leaves nothing behind."""
    from outbound.services import sending

    set_limits(container.db, tenant.org_id, hourly_request_quota=1)
    accepted(send(tenant, setup.config_id, [contact()]))
    # As if a concurrent request had read the counter before the first one counted itself.
    monkeypatch.setattr(sending, "check_request_quota", lambda *args: None)
    refused = send(
        tenant, setup.config_id, [contact(), contact()], headers={"Idempotency-Key": "r"}
    )
    assert_error(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) == 3600
    assert len(tenant.get("/v1/messages").json()["data"]) == 1
    monkeypatch.undo()
    assert_error(send(tenant, setup.config_id, [contact()]), 429, "rate_limited")


# --- idempotency ----------------------------------------------------------------------------


def test_idempotent_retry_returns_the_same_response(tenant: Tenant, setup: Setup) -> None:
    contacts = [contact(), contact("bad"), contact(optin=False)]
    key = {"Idempotency-Key": "flow-run-42"}
    first = send(tenant, setup.config_id, contacts, headers=key)
    body = accepted(first)
    assert len(messages_of(tenant, body["request_id"])) == 3

    # Same body, written differently: key order and spacing do not matter.
    rewritten = {"contacts": contacts, "configuration_id": setup.config_id}
    again = tenant.client.post(
        SEND,
        content=json.dumps(rewritten, indent=4).encode(),
        headers=tenant.headers(**key, **{"Content-Type": "application/json"}),
    )
    assert again.status_code == 202, again.text
    assert again.json() == body
    assert again.content == first.content
    assert len(messages_of(tenant, body["request_id"])) == 3
    assert len(tenant.get("/v1/messages").json()["data"]) == 3

    # Without the key, the same body is a new request.
    fresh = accepted(send(tenant, setup.config_id, contacts))
    assert fresh["request_id"] != body["request_id"]
    assert len(tenant.get("/v1/messages").json()["data"]) == 6

    # The same key with another body is a mistake, named as such.
    for other in ([contact("+33612345679")], [contact(), contact()], [contact(optin=False)]):
        error = assert_error(
            send(tenant, setup.config_id, other, headers=key),
            422,
            "idempotency_key_reused",
            "Idempotency-Key",
        )
        assert "different" in error["message"]
    assert len(tenant.get("/v1/messages").json()["data"]) == 6
    assert accepted(send(tenant, setup.config_id, contacts, headers=key)) == body

    for bad_key in ("", "k" * 256):
        assert_error(
            send(tenant, setup.config_id, [contact()], headers={"Idempotency-Key": bad_key}),
            422,
            "invalid_request",
            "Idempotency-Key",
        )


def test_idempotency_key_still_processing_is_409(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    payload = {"configuration_id": setup.config_id, "contacts": [contact()]}
    digest = body_hash(SendIn.model_validate(payload).model_dump(mode="json"))
    # Another process has claimed the key and is still working on it.
    keys = IdempotencyKeys(
        container.db, container.clock, stale_seconds=container.settings.idempotency_stale_seconds
    )
    reserved = keys.reserve(tenant.org_id, "busy-key", digest, setup.config_id)
    assert isinstance(reserved, str)

    response = tenant.post(SEND, payload, headers={"Idempotency-Key": "busy-key"})
    error = assert_error(response, 409, "idempotency_key_in_use", "Idempotency-Key")
    assert "still being processed" in error["message"]
    assert tenant.get("/v1/messages").json()["data"] == []
    # A different body under that key is still a misuse of the key.
    other = send(
        tenant, setup.config_id, [contact("+33612345679")], headers={"Idempotency-Key": "busy-key"}
    )
    assert_error(other, 422, "idempotency_key_reused", "Idempotency-Key")

    # A claim whose process died long ago is taken over.
    clock.advance(container.settings.idempotency_stale_seconds + 1)
    body = accepted(tenant.post(SEND, payload, headers={"Idempotency-Key": "busy-key"}))
    assert body["request_id"] == reserved
    assert len(messages_of(tenant, reserved)) == 1
    with container.db.read() as session:
        states = session.execute(
            sa.select(SendRequest.state).where(SendRequest.idempotency_key == "busy-key")
        ).all()
    assert [s.state for s in states] == ["completed"]


def test_processing_row_inserted_by_another_process_is_409(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    payload = {"configuration_id": setup.config_id, "contacts": [contact()]}
    with container.db.transaction() as session:
        session.add(
            SendRequest(
                org_id=tenant.org_id,
                configuration_id=setup.config_id,
                idempotency_key="row-key",
                body_hash=body_hash(SendIn.model_validate(payload).model_dump(mode="json")),
                state="processing",
                created_at=container.clock.now(),
            )
        )
    response = tenant.post(SEND, payload, headers={"Idempotency-Key": "row-key"})
    assert_error(response, 409, "idempotency_key_in_use", "Idempotency-Key")
    assert tenant.get("/v1/messages").json()["data"] == []
