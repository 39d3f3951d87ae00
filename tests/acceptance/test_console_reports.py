"""The console's reports screen over HTTP, on both databases: the figures of the reports
API, its CSV, and the roles that may read them."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from outbound.app import Container
from outbound.console.routes import auth
from outbound.schemas import UserCreate
from tests.helpers import Setup, Tenant, contact, make_setup

PASSWORD = "console-password-1"


@pytest.fixture(autouse=True)
def _no_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "FAILED_SIGN_IN_DELAY_SECONDS", 0.0)


def _sign_in(container: Container, tenant: Tenant, client: TestClient, role: str) -> None:
    email = f"{role}@example.com"
    container.users.create(
        tenant.org_id,
        UserCreate(email=email, name=role.title(), role=role, password=PASSWORD),
    )
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert match
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": match.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303


def _sent(tenant: Tenant) -> Setup:
    setup = make_setup(tenant)
    response = tenant.post(
        "/v1/outbound/send",
        {
            "configuration_id": setup.config_id,
            "contacts": [
                contact("+33612345678"),
                contact("+33612345679"),
                contact("+33612345670", optin=False),
            ],
        },
    )
    assert response.status_code == 202, response.text
    return setup


@pytest.mark.parametrize("role", ["admin", "supervisor"])
def test_the_report_shows_the_services_figures_by_the_chosen_group(
    container: Container, tenant: Tenant, client: TestClient, role: str
) -> None:
    setup = _sent(tenant)
    _sign_in(container, tenant, client, role)
    page = client.get("/reports", params={"group_by": "configuration"})
    assert page.status_code == 200, page.text
    row = re.search(r"<tr>\s*<th scope=\"row\">([^<]+)</th>(.*?)</tr>", page.text, re.S)
    assert row, page.text
    assert row.group(1) == setup.configuration["name"]
    cells = re.findall(r'<td class="num">([^<]*)', row.group(2))
    assert cells[:3] == ["3", "1", "0"]  # requested, skipped, rejected
    assert 'href="/reports/messages.csv?' in page.text
    assert 'id="report-data"' in page.text  # the chart's data


def test_the_csv_is_the_apis(container: Container, tenant: Tenant, client: TestClient) -> None:
    _sent(tenant)
    _sign_in(container, tenant, client, "supervisor")
    # The fake clock is 2026-01-15 09:00 UTC; the screen's days are the user's (UTC here).
    days = {"since": "2026-01-09", "group_by": "configuration"}
    mine = client.get("/reports/messages.csv", params={**days, "until": "2026-01-15"})
    assert mine.status_code == 200
    assert mine.headers["content-type"].startswith("text/csv")
    api = tenant.get(
        "/v1/reports/messages",
        params={**days, "until": "2026-01-16", "format": "csv"},
    )
    assert mine.text == api.text
    assert mine.text.count("\n") == 3  # header, the configuration, the total
    funnel = client.get("/reports/funnel.csv", params={"since": "2026-01-09"})
    assert funnel.text.startswith("configuration_id,sent,delivered")
    agents = client.get("/reports/agents.csv")
    assert agents.status_code == 200


def test_the_report_groups_within_a_group_and_its_csv_is_the_apis(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    setup = _sent(tenant)
    french = tenant.post(
        "/v1/outbound/send",
        {
            "configuration_id": setup.config_id,
            "contacts": [contact("+33612345671", locale="fr-FR")],
        },
    )
    assert french.status_code == 202, french.text
    _sign_in(container, tenant, client, "supervisor")
    days = {"since": "2026-01-09", "until": "2026-01-15"}
    page = client.get("/reports", params={**days, "group_by": "configuration", "then_by": "locale"})
    assert page.status_code == 200, page.text
    body = page.text.split('id="by-group"')[1].split("</table>")[0]
    assert re.findall(r'<th scope="col">([^<]+)</th>', body) == ["Configuration", "Language"]
    rows = re.findall(
        r"<tr[^>]*>\s*<th scope=\"row\"([^>]*)>([^<]+)</th>\s*<th scope=\"row\">([^<]+)", body
    )
    name = setup.configuration["name"]
    assert [(r[1], r[2]) for r in rows] == [
        (name, "English (United States) (en-US)"),
        (name, "French (France) (fr-FR)"),
    ]
    assert 'class="repeat"' in rows[1][0] and "repeat" not in rows[0][0]  # written once
    assert 'colspan="2">Total' in body
    assert 'name="then_by"' in page.text and 'value="locale" selected' in page.text
    mine = client.get(
        "/reports/messages.csv", params={**days, "group_by": "configuration", "then_by": "locale"}
    )
    api = tenant.get(
        "/v1/reports/messages",
        params={**days, "until": "2026-01-16", "group_by": "configuration,locale", "format": "csv"},
    )
    assert mine.status_code == 200 and mine.text == api.text
    assert mine.text.splitlines()[0].startswith("configuration_id,locale,")
    # The same grouping twice, or day within hour, is one grouping.
    again = client.get("/reports", params={**days, "group_by": "day", "then_by": "hour"})
    assert re.findall(r'<th scope="col">(Day|Hour)</th>', again.text) == ["Day"]


def test_agents_may_not_read_reports(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    _sent(tenant)
    _sign_in(container, tenant, client, "agent")
    assert client.get("/reports").status_code == 403
    assert client.get("/reports/messages.csv").status_code == 403
    assert 'href="/reports"' not in client.get("/messages").text


def test_a_bad_range_is_shown_next_to_its_field(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    _sign_in(container, tenant, client, "admin")
    page = client.get("/reports", params={"since": "2026-01-10", "until": "2025-01-01"})
    assert page.status_code == 200
    assert 'id="e-until"' in page.text
    french = client.get("/reports", headers={"Accept-Language": "fr"})
    assert "Rapports" in french.text
