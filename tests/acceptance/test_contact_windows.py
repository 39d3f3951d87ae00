"""Contact windows and frequency caps of outbound configurations, through the HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from outbound.adapters.db.models import Message, OutboundConfiguration
from outbound.app import Container
from outbound.schemas import SendIn
from outbound.testing import FakeClock
from tests.helpers import Setup, Tenant, contact

SEND = "/v1/outbound/send"
CONFIGS = "/v1/outbound-configurations"
PARIS_NUMBER = "+33612345678"  # Europe/Paris by its prefix
NEW_YORK_NUMBER = "+12125551234"  # America/New_York by its prefix
ALASKA_NUMBER = "+19075550123"  # two zones (Anchorage, Adak): no zone from the number
OFFICE_HOURS = {"start": "08:00", "end": "20:00"}


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def configure(tenant: Tenant, setup: Setup, **fields: Any) -> dict[str, Any]:
    response = tenant.patch(f"{CONFIGS}/{setup.config_id}", fields)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def send(tenant: Tenant, config_id: str, *contacts: dict[str, Any], **kw: Any) -> dict[str, Any]:
    response = tenant.post(SEND, {"configuration_id": config_id, "contacts": list(contacts)}, **kw)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def outcomes(body: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(r["status"], r["reason"]) for r in body["results"]]


def scheduled(result: dict[str, Any]) -> datetime | None:
    value = result["scheduled_at"]
    return None if value is None else datetime.fromisoformat(value)


def stored_schedule(container: Container, message_id: str) -> datetime:
    with container.db.read() as session:
        row = session.get(Message, message_id)
        assert row is not None
        return row.scheduled_at


def error_field(response: Any) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request", error
    return str(error["field"])


# --- contact windows --------------------------------------------------------------------------


async def test_send_outside_the_window_waits_for_it_to_open(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    configure(tenant, setup, contact_window=OFFICE_HOURS)
    clock.set(utc(2026, 1, 15, 20, 30))  # 21:30 in Paris
    body = send(tenant, setup.config_id, contact(PARIS_NUMBER))
    (result,) = body["results"]
    assert (body["queued"], body["skipped"], body["rejected"]) == (1, 0, 0)
    assert result["status"] == "queued"
    assert result["reason"] == "outside_contact_window: held until 2026-01-16 08:00 Europe/Paris"
    opening = utc(2026, 1, 16, 7, 0)
    assert scheduled(result) == opening
    assert stored_schedule(container, result["message_id"]) == opening
    message = tenant.get(f"/v1/messages/{result['message_id']}").json()
    assert (message["status"], message["reason"]) == ("queued", result["reason"])

    dispatcher = container.dispatcher("w1")
    assert await dispatcher.run_once() == 0
    clock.set(utc(2026, 1, 16, 6, 59, 59))
    assert await dispatcher.run_once() == 0
    clock.set(opening)
    assert await dispatcher.run_once() == 1
    await container.providers["sandbox"].drain()  # type: ignore[attr-defined]
    message = tenant.get(f"/v1/messages/{result['message_id']}").json()
    assert [e["status"] for e in message["history"]][:3] == ["queued", "sending", "sent"]

    # Inside the window nothing waits, and the outcome says nothing of it.
    body = send(tenant, setup.config_id, contact(PARIS_NUMBER))
    (result,) = body["results"]
    assert (result["status"], result["reason"], result["scheduled_at"]) == ("queued", None, None)
    assert stored_schedule(container, result["message_id"]) == opening
    assert await dispatcher.run_once() == 1
    await container.providers["sandbox"].drain()  # type: ignore[attr-defined]


async def test_a_message_delayed_past_the_window_waits_for_the_next_opening(
    tenant: Tenant, setup: Setup, container: Container, clock: FakeClock
) -> None:
    configure(tenant, setup, contact_window=OFFICE_HOURS)
    clock.set(utc(2026, 1, 15, 18, 59))  # 19:59 in Paris: inside the window
    (result,) = send(tenant, setup.config_id, contact(PARIS_NUMBER))["results"]
    assert result["scheduled_at"] is None
    # A backlog (or a retry) brings the worker to it after the window has closed.
    clock.set(utc(2026, 1, 15, 19, 30))
    dispatcher = container.dispatcher("w1")
    assert await dispatcher.run_once() == 1
    message = tenant.get(f"/v1/messages/{result['message_id']}").json()
    assert message["status"] == "queued"
    assert message["attempts"] == 0
    assert stored_schedule(container, result["message_id"]) == utc(2026, 1, 16, 7, 0)
    assert await dispatcher.run_once() == 0
    clock.set(utc(2026, 1, 16, 7, 0))
    assert await dispatcher.run_once() == 1
    await container.providers["sandbox"].drain()  # type: ignore[attr-defined]
    message = tenant.get(f"/v1/messages/{result['message_id']}").json()
    assert message["status"] in {"sent", "delivered"}


def test_window_days_and_midnight(tenant: Tenant, setup: Setup, clock: FakeClock) -> None:
    # Thursday 15 January 2026, 10:00 in Paris.
    configure(tenant, setup, contact_window={**OFFICE_HOURS, "days": [6, 7]})
    (result,) = send(tenant, setup.config_id, contact(PARIS_NUMBER))["results"]
    assert scheduled(result) == utc(2026, 1, 17, 7, 0)  # Saturday 08:00
    configure(tenant, setup, contact_window={"start": "22:00", "end": "06:00", "days": [3]})
    clock.set(utc(2026, 1, 15, 4, 0))  # Thursday 05:00: Wednesday's night window is open
    (result,) = send(tenant, setup.config_id, contact(PARIS_NUMBER))["results"]
    assert (result["scheduled_at"], result["reason"]) == (None, None)
    clock.set(utc(2026, 1, 15, 5, 0))  # Thursday 06:00: closed until next Wednesday 22:00
    (result,) = send(tenant, setup.config_id, contact(PARIS_NUMBER))["results"]
    assert scheduled(result) == utc(2026, 1, 21, 21, 0)


def test_contact_zone_comes_from_the_item_then_the_number_then_the_configuration(
    tenant: Tenant, setup: Setup, clock: FakeClock
) -> None:
    # 09:00 UTC: 10:00 in Paris, 18:00 in Tokyo, 04:00 in New York, 01:00 in Los Angeles.
    configure(
        tenant,
        setup,
        contact_window={**OFFICE_HOURS, "time_zone": "Asia/Tokyo"},
        allow_duplicate_numbers=True,  # the same number, read in two zones
    )
    body = send(
        tenant,
        setup.config_id,
        contact(PARIS_NUMBER),  # Paris, from the number: open
        contact("+33612345679", timezone="America/New_York"),  # the item's zone wins
        contact(NEW_YORK_NUMBER),  # New York, from the number
        contact(ALASKA_NUMBER),  # no zone from the number: the configuration's (Tokyo)
        contact("+19075550124", timezone=" "),  # blank counts as absent
        contact(PARIS_NUMBER, timezone="America/Los_Angeles"),
    )
    assert body["queued"] == 6
    new_york_opens = utc(2026, 1, 15, 13, 0)
    assert [scheduled(r) for r in body["results"]] == [
        None,
        new_york_opens,
        new_york_opens,
        None,
        None,
        utc(2026, 1, 15, 16, 0),
    ]
    reasons = [r["reason"] for r in body["results"]]
    assert reasons[1] == "outside_contact_window: held until 2026-01-15 08:00 America/New_York"
    assert reasons[5] == "outside_contact_window: held until 2026-01-15 08:00 America/Los_Angeles"

    # Without a configuration zone, a contact of unknown zone is read in UTC.
    configure(tenant, setup, contact_window=OFFICE_HOURS)
    clock.set(utc(2026, 1, 15, 6, 0))  # 07:00 in Paris, 06:00 UTC
    results = send(tenant, setup.config_id, contact(ALASKA_NUMBER), contact(PARIS_NUMBER))[
        "results"
    ]
    assert [scheduled(r) for r in results] == [utc(2026, 1, 15, 8, 0), utc(2026, 1, 15, 7, 0)]


def test_contact_timezone_is_validated(tenant: Tenant, setup: Setup) -> None:
    for bad in ("Mars/Olympus_Mons", "europe/paris", 5, "x" * 65):
        response = tenant.post(
            SEND,
            {
                "configuration_id": setup.config_id,
                "contacts": [contact(), contact(timezone=bad)],
            },
        )
        assert error_field(response) == "contacts[1].timezone", bad
    assert tenant.get("/v1/messages").json()["data"] == []
    # Without a window a valid zone is accepted, and changes nothing.
    (result,) = send(tenant, setup.config_id, contact(timezone="Asia/Tokyo"))["results"]
    assert (result["status"], result["scheduled_at"]) == ("queued", None)


def test_requests_without_timezone_keep_their_digest() -> None:
    # Idempotency keys compare digests of the parsed body: an absent timezone must not show.
    payload = {"configuration_id": "c", "contacts": [contact()]}
    dumped = SendIn.model_validate(payload).model_dump(mode="json")
    assert "timezone" not in dumped["contacts"][0]


def test_idempotent_replay_repeats_the_schedule(
    tenant: Tenant, setup: Setup, clock: FakeClock
) -> None:
    configure(tenant, setup, contact_window=OFFICE_HOURS)
    clock.set(utc(2026, 1, 15, 20, 30))
    first = send(tenant, setup.config_id, contact(), headers={"Idempotency-Key": "w-1"})
    clock.advance(60)
    again = send(tenant, setup.config_id, contact(), headers={"Idempotency-Key": "w-1"})
    assert again == first
    assert scheduled(first["results"][0]) == utc(2026, 1, 16, 7, 0)


# --- frequency caps ---------------------------------------------------------------------------


def test_cap_skips_the_message_over_it_until_the_period_has_passed(
    tenant: Tenant, setup: Setup, clock: FakeClock
) -> None:
    configure(tenant, setup, frequency_cap={"count": 2, "period": "1h"})
    capped = ("skipped", "frequency_cap: at most 2 messages per hour to this contact")
    assert outcomes(send(tenant, setup.config_id, contact())) == [("queued", None)]
    clock.advance(600)
    assert outcomes(send(tenant, setup.config_id, contact())) == [("queued", None)]
    clock.advance(600)
    body = send(tenant, setup.config_id, contact(), contact("+33612345679"))
    assert outcomes(body) == [capped, ("queued", None)]
    assert (body["queued"], body["skipped"]) == (1, 1)
    message = tenant.get(f"/v1/messages/{body['results'][0]['message_id']}").json()
    assert (message["status"], message["reason"]) == capped

    # An hour after the first message it no longer counts; the second still does.
    clock.advance(2400)
    assert outcomes(send(tenant, setup.config_id, contact())) == [("queued", None)]
    assert outcomes(send(tenant, setup.config_id, contact())) == [capped]
    clock.advance(600)
    assert outcomes(send(tenant, setup.config_id, contact())) == [("queued", None)]


def test_cap_counts_earlier_contacts_of_the_same_request(tenant: Tenant, setup: Setup) -> None:
    configure(
        tenant, setup, frequency_cap={"count": 2, "period": 86400}, allow_duplicate_numbers=True
    )
    body = send(
        tenant,
        setup.config_id,
        contact(PARIS_NUMBER),
        contact("06 12 34 56 78"),  # the same number, written nationally
        contact("+33612345679"),
        contact(PARIS_NUMBER),
    )
    assert outcomes(body) == [
        ("queued", None),
        ("queued", None),
        ("queued", None),
        ("skipped", "frequency_cap: at most 2 messages per 24 hours to this contact"),
    ]
    assert (body["queued"], body["skipped"], body["rejected"]) == (3, 1, 0)


def test_cap_ignores_messages_that_never_go_out(
    tenant: Tenant, setup: Setup, container: Container
) -> None:
    configure(tenant, setup, frequency_cap={"count": 1, "period": "24h"})
    body = send(
        tenant,
        setup.config_id,
        contact(optin=False),  # skipped
        contact(contextitems={"CustomerName": "Ana"}),  # rejected: no CaseName
    )
    assert [s for s, _ in outcomes(body)] == ["skipped", "rejected"]
    (first,) = send(tenant, setup.config_id, contact())["results"]
    assert first["status"] == "queued"
    assert send(tenant, setup.config_id, contact())["results"][0]["status"] == "skipped"
    with container.db.transaction() as session:
        session.execute(
            sa.update(Message).where(Message.id == first["message_id"]).values(status="canceled")
        )
    assert send(tenant, setup.config_id, contact())["results"][0]["status"] == "queued"


def test_cap_is_per_configuration(tenant: Tenant, setup: Setup) -> None:
    cap = {"count": 1, "period": "1d"}
    configure(tenant, setup, frequency_cap=cap)
    other = tenant.post(
        CONFIGS,
        {
            "name": "Other",
            "channel_type": "sms",
            "channel_id": setup.channel["id"],
            "template_id": setup.template["id"],
            "frequency_cap": cap,
        },
    ).json()
    assert send(tenant, setup.config_id, contact())["results"][0]["status"] == "queued"
    assert send(tenant, other["id"], contact())["results"][0]["status"] == "queued"
    assert send(tenant, setup.config_id, contact())["results"][0]["status"] == "skipped"
    assert send(tenant, other["id"], contact())["results"][0]["status"] == "skipped"


def test_a_message_held_by_the_window_counts_towards_the_cap(
    tenant: Tenant, setup: Setup, clock: FakeClock
) -> None:
    configure(
        tenant,
        setup,
        contact_window=OFFICE_HOURS,
        frequency_cap={"count": 1, "period": "24h"},
    )
    clock.set(utc(2026, 1, 15, 20, 30))
    (held,) = send(tenant, setup.config_id, contact())["results"]
    assert held["status"] == "queued" and scheduled(held) == utc(2026, 1, 16, 7, 0)
    (capped,) = send(tenant, setup.config_id, contact())["results"]
    assert capped["status"] == "skipped" and capped["scheduled_at"] is None
    assert capped["reason"].startswith("frequency_cap:")


# --- the configuration API --------------------------------------------------------------------


def test_configuration_round_trip(tenant: Tenant, setup: Setup, container: Container) -> None:
    assert (setup.configuration["contact_window"], setup.configuration["frequency_cap"]) == (
        None,
        None,
    )
    response = tenant.post(
        CONFIGS,
        {
            "name": "Windowed",
            "channel_type": "sms",
            "channel_id": setup.channel["id"],
            "template_id": setup.template["id"],
            "contact_window": {
                "start": " 08:30 ",
                "end": "20:00",
                "days": [5, 1, 3, 1],
                "time_zone": "Europe/Paris",
            },
            "frequency_cap": {"count": 3, "period": "24h"},
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    window = {"start": "08:30", "end": "20:00", "days": [1, 3, 5], "time_zone": "Europe/Paris"}
    assert created["contact_window"] == window
    assert created["frequency_cap"] == {"count": 3, "period": 86400}
    path = f"{CONFIGS}/{created['id']}"
    assert tenant.get(path).json() == created
    with container.db.read() as session:
        row = session.get(OutboundConfiguration, created["id"])
        assert row is not None
        assert (row.window_start, row.window_end, row.window_days, row.window_time_zone) == (
            "08:30",
            "20:00",
            [1, 3, 5],
            "Europe/Paris",
        )
        assert (row.cap_count, row.cap_period_seconds) == (3, 86400)

    # What the API answers is accepted back as it is.
    same = tenant.patch(
        path,
        {"contact_window": created["contact_window"], "frequency_cap": created["frequency_cap"]},
    )
    assert same.status_code == 200, same.text
    assert {k: v for k, v in same.json().items() if k != "updated_at"} == {
        k: v for k, v in created.items() if k != "updated_at"
    }

    # Other fields leave them alone; an object replaces the whole window; null clears.
    assert tenant.patch(path, {"name": "Renamed"}).json()["contact_window"] == window
    patched = tenant.patch(path, {"contact_window": {"start": "22:00", "end": "06:00"}}).json()
    assert patched["contact_window"] == {
        "start": "22:00",
        "end": "06:00",
        "days": None,
        "time_zone": None,
    }
    assert patched["frequency_cap"] == {"count": 3, "period": 86400}
    patched = tenant.patch(path, {"frequency_cap": {"count": 1, "period": 90}}).json()
    assert patched["frequency_cap"] == {"count": 1, "period": 90}
    cleared = tenant.patch(path, {"contact_window": None}).json()
    assert cleared["contact_window"] is None
    assert cleared["frequency_cap"] == {"count": 1, "period": 90}
    cleared = tenant.patch(path, {"frequency_cap": None}).json()
    assert (cleared["contact_window"], cleared["frequency_cap"]) == (None, None)
    with container.db.read() as session:
        row = session.get(OutboundConfiguration, created["id"])
        assert row is not None
        assert (row.window_start, row.window_end, row.window_days, row.window_time_zone) == (
            None,
            None,
            None,
            None,
        )
        assert (row.cap_count, row.cap_period_seconds) == (None, None)
    listed = tenant.get(CONFIGS).json()["data"]
    assert {c["id"]: c["frequency_cap"] for c in listed} == {
        setup.config_id: None,
        created["id"]: None,
    }


def test_configuration_validation_errors_name_the_field(tenant: Tenant, setup: Setup) -> None:
    window_cases: list[tuple[Any, str | None]] = [
        ({"start": "8am", "end": "20:00"}, "contact_window.start"),
        ({"start": "08:00", "end": "24:00"}, "contact_window.end"),
        ({"start": "08:00", "end": "8:00"}, "contact_window.end"),
        ({"start": "08:00", "end": "08:00"}, "contact_window.end"),
        ({"start": "08:00"}, "contact_window.end"),
        ({"start": 800, "end": "20:00"}, "contact_window.start"),
        ({**OFFICE_HOURS, "days": [1, 8]}, "contact_window.days[1]"),
        ({**OFFICE_HOURS, "days": [0]}, "contact_window.days[0]"),
        ({**OFFICE_HOURS, "days": [1, "2"]}, "contact_window.days[1]"),
        ({**OFFICE_HOURS, "days": []}, "contact_window.days"),
        ({**OFFICE_HOURS, "days": "weekdays"}, "contact_window.days"),
        ({**OFFICE_HOURS, "time_zone": "Mars/Olympus_Mons"}, "contact_window.time_zone"),
        ({**OFFICE_HOURS, "time_zone": "CET "}, None),  # stripped, and CET is a zone
        ({**OFFICE_HOURS, "tz": "Europe/Paris"}, "contact_window.tz"),
        ("08:00-20:00", "contact_window"),
    ]
    cap_cases: list[tuple[Any, str | None]] = [
        ({"count": 0, "period": 60}, "frequency_cap.count"),
        ({"count": "3", "period": 60}, "frequency_cap.count"),
        ({"count": 10_001, "period": 60}, "frequency_cap.count"),
        ({"count": 1}, "frequency_cap.period"),
        ({"count": 1, "period": "soon"}, "frequency_cap.period"),
        ({"count": 1, "period": 0}, "frequency_cap.period"),
        ({"count": 1, "period": "400d"}, "frequency_cap.period"),
        ({"count": 1, "period": 1.5}, "frequency_cap.period"),
        ({"count": 1, "period": True}, "frequency_cap.period"),
        ({"count": 1, "period": 60, "every": "day"}, "frequency_cap.every"),
        (3, "frequency_cap"),
    ]
    path = f"{CONFIGS}/{setup.config_id}"
    body = {
        "name": "Bad",
        "channel_type": "sms",
        "channel_id": setup.channel["id"],
        "template_id": setup.template["id"],
    }
    for key, cases in (("contact_window", window_cases), ("frequency_cap", cap_cases)):
        for value, field in cases:
            created = tenant.post(CONFIGS, {**body, key: value})
            patched = tenant.patch(path, {key: value})
            if field is None:
                assert created.status_code == 201, created.text
                assert patched.status_code == 200, patched.text
                continue
            assert error_field(created) == field, value
            assert error_field(patched) == field, value
    error = tenant.patch(path, {"contact_window": {"start": "8am", "end": "20:00"}}).json()
    assert "HH:MM" in error["error"]["message"]
    error = tenant.patch(path, {"frequency_cap": {"count": 1, "period": "soon"}}).json()
    assert "24h" in error["error"]["message"]
