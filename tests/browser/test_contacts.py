"""Contacts and cases in a browser: search, edit, a CSV import with its refused rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from outbound.schemas import CaseCreate, ContactCreate
from tests.browser.conftest import PASSWORD, ConsoleServer
from tests.browser.helpers import open_menu, sign_in, snap

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_finding_editing_and_importing_contacts(
    page: Page, console_server: ConsoleServer, backend: str, tmp_path: Path
) -> None:
    c, org = console_server.container, console_server.org_id
    ana = c.records.create_contact(
        org,
        ContactCreate(
            name="Ana Lima",
            mobile_phone="+33612345678",
            external_id="CRM-1",
            consent={"sms": True},
            custom={"city": "Lyon"},
        ),
    )
    c.records.create_contact(org, ContactCreate(name="Bo Berg", mobile_phone="+33612345679"))
    c.records.create_case(org, CaseCreate(number="CAS-7", title="Late parcel", contact_id=ana.id))
    base = console_server.url
    sign_in(page, base, console_server.admin.email, PASSWORD)
    open_menu(page, "Customers", "Contacts")
    table = page.get_by_role("table")
    expect(table.get_by_role("row")).to_have_count(3)

    # A number in another format finds the contact; so does their external ID.
    page.get_by_label("Find a contact").fill("06 12 34 56 78")
    page.get_by_role("button", name="Search").click()
    expect(table.get_by_role("row")).to_have_count(2)
    expect(table).to_contain_text("Ana Lima")
    page.get_by_label("Find a contact").fill("CRM-1")
    page.get_by_role("button", name="Search").click()
    expect(table.get_by_role("row")).to_have_count(2)
    page.get_by_role("link", name="Ana Lima").click()

    expect(page.get_by_role("table")).to_contain_text("CAS-7")
    expect(page.get_by_text("Lyon")).to_be_visible()
    page.get_by_label("Mobile number").fill("not a number")
    page.get_by_role("button", name="Save contact").click()
    expect(page.locator("#e-mobile_phone")).to_be_visible()
    page.get_by_label("Mobile number").fill("+33 6 12 34 00 00")
    page.get_by_role("checkbox", name="WhatsApp").check()
    page.get_by_role("button", name="Save contact").click()
    expect(page.get_by_role("status")).to_have_text("Contact saved.")
    expect(page.get_by_label("Mobile number")).to_have_value("+33612340000")
    expect(page.get_by_role("checkbox", name="WhatsApp")).to_be_checked()

    listing = tmp_path / "contacts.csv"
    listing.write_text(
        "external_id,name,mobile_phone,consent_sms\n"
        "CRM-1,Ana Lima-Costa,+33612340000,yes\n"
        "CRM-2,Cy Dorn,+33612340002,yes\n"
        "CRM-3,Di Eng,twelve,yes\n",
        encoding="utf-8",
    )
    page.get_by_role("link", name="All contacts").click()
    page.get_by_label("CSV file").set_input_files(str(listing))
    page.get_by_role("button", name="Import").click()
    result = page.get_by_role("region", name="Import result")
    expect(result.get_by_role("heading", level=2)).to_have_text("Import done")
    counts = result.get_by_test_id("import-counts")
    expect(counts.locator("dd")).to_have_text(["3", "1", "1", "0", "1"])
    refused = result.get_by_role("row").nth(1)
    expect(refused.get_by_role("cell").first).to_have_text("4")
    expect(refused.get_by_role("cell").nth(1)).to_have_text("mobile_phone")
    expect(page.get_by_role("table").last).to_contain_text("Ana Lima-Costa")
    snap(page, "contacts")

    page.get_by_role("link", name="Cases", exact=True).first.click()
    expect(page.get_by_role("table")).to_contain_text("Late parcel")


def test_a_supervisor_reads_contacts_without_editing(
    page: Page, console_server: ConsoleServer
) -> None:
    c, org = console_server.container, console_server.org_id
    ana = c.records.create_contact(org, ContactCreate(name="Ana", mobile_phone="+33612345678"))
    sign_in(page, console_server.url, console_server.supervisor.email, PASSWORD)
    page.goto(f"{console_server.url}/contacts")
    expect(page.get_by_role("heading", name="Import contacts")).to_have_count(0)
    page.goto(f"{console_server.url}/contacts/{ana.id}")
    expect(page.get_by_label("Name")).to_be_disabled()
    expect(page.get_by_role("button", name="Save contact")).to_have_count(0)
