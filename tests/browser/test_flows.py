"""Flows in a browser: the editor's faults at their lines, enabling, a run's progress bar
moving to completion, past runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from outbound.schemas import (
    ChannelCreate,
    ConfigurationCreate,
    ContactCreate,
    TemplateCreate,
)
from tests.browser.conftest import PASSWORD, ConsoleServer
from tests.browser.helpers import open_menu, sign_in, snap

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

FLOW = """\
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


def _catalog(server: ConsoleServer, contacts: int) -> None:
    c, org = server.container, server.org_id
    channel = c.channels.create(
        org, ChannelCreate(name="SMS", type="sms", provider="sandbox", sender="+15005550006")
    )
    template = c.templates.create(
        org,
        TemplateCreate(
            name="Delay",
            channel_type="sms",
            default_locale="en-US",
            default_text="Your order {CaseName} is late.",
        ),
    )
    c.configurations.create(
        org,
        ConfigurationCreate(
            name="Case updates",
            channel_type="sms",
            channel_id=channel.id,
            template_id=template.id,
        ),
    )
    for n in range(contacts):
        c.records.create_contact(
            org,
            ContactCreate(
                name=f"Client {n}",
                mobile_phone=f"+3361234{n:04d}",
                consent={"sms": True},
                custom={"city": "Lyon" if n % 2 == 0 else "Paris", "order": f"A{n}"},
            ),
        )


@pytest.mark.parametrize("backend", BACKENDS)
def test_writing_and_running_a_flow(
    page: Page, console_server: ConsoleServer, backend: str
) -> None:
    _catalog(console_server, 12)
    base = console_server.url
    sign_in(page, base, console_server.admin.email, PASSWORD)
    open_menu(page, "Sending", "Flows")
    expect(page.get_by_text("No flows yet.")).to_be_visible()
    page.get_by_role("link", name="Write the first flow").click()

    editor = page.get_by_label("Flow document (YAML or JSON)")
    editor.fill(FLOW.replace("op: eq", "op: equals").replace("type: instant", "type: sometimes"))
    page.get_by_role("button", name="Check").click()
    faults = page.get_by_role("alert")
    expect(faults).to_contain_text("The document has 2 faults")
    expect(faults.get_by_role("link", name="Line 5")).to_be_visible()
    expect(faults.get_by_role("link", name="Line 10")).to_be_visible()
    expect(page.locator(".source-lines li.fault")).to_have_count(2)
    expect(page.locator("#line-10")).to_contain_text("op: equals")
    snap(page, "flow-errors")

    editor.fill(FLOW)
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_role("status")).to_have_text("The document is valid.")
    page.get_by_role("button", name="Save flow").click()
    expect(page.get_by_role("status")).to_have_text("Flow saved.")
    expect(page.get_by_role("heading", name="weather-delay")).to_be_visible()

    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("status")).to_have_text("Flow disabled.")
    expect(page.get_by_role("button", name="Run now")).to_have_count(0)
    page.get_by_role("button", name="Enable").click()
    expect(page.get_by_role("status")).to_have_text("Flow enabled.")

    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("heading", name="Run of weather-delay")).to_be_visible()
    progress = page.locator("#run-progress")
    # The bar is refreshed every second until the run completes, without reloading.
    expect(progress).to_contain_text("completed", timeout=30_000)
    expect(page.locator("#run-bar")).to_have_attribute("value", "1.0")
    expect(page.get_by_test_id("run-counts")).to_have_text("12 of 12 records read")
    expect(progress.locator("dd").first).to_have_text("6")
    expect(page.get_by_role("button", name="Cancel the run")).to_have_count(0)
    snap(page, "flow-run")

    page.get_by_role("link", name="Back to the flow").click()
    runs = page.get_by_role("table")
    expect(runs.get_by_role("row").nth(1)).to_contain_text("completed")
    expect(runs.get_by_role("row").nth(1).get_by_role("cell").nth(3)).to_have_text("6")


def test_running_a_flow_over_an_uploaded_list(
    page: Page, console_server: ConsoleServer, tmp_path: Path
) -> None:
    _catalog(console_server, 0)
    console_server.container.flows.apply(
        console_server.org_id,
        FLOW.replace("records: contacts", "records: csv")
        .replace("conditions:\n  - field: contact.custom.city\n    op: eq\n    value: Lyon\n", "")
        .replace("{contact.custom.order}", "{record.order}"),
    )
    listing = tmp_path / "late.csv"
    listing.write_text(
        "name,mobile_phone,consent_sms,order\n"
        "Ana,+33612340001,yes,B1\n"
        "Bo,+33612340002,no,B2\n"
        "Cy,+33612340003,yes,B3\n",
        encoding="utf-8",
    )
    base = console_server.url
    sign_in(page, base, console_server.admin.email, PASSWORD)
    page.goto(f"{base}/flows")
    page.get_by_role("link", name="weather-delay").click()
    page.get_by_label("List of recipients (CSV)").set_input_files(str(listing))
    page.get_by_role("button", name="Run now").click()
    progress = page.locator("#run-progress")
    expect(progress).to_contain_text("completed", timeout=30_000)
    expect(page.get_by_test_id("run-counts")).to_have_text("3 of 3 records read")
    # Queued: the two who consented; skipped: the one who did not.
    expect(progress.locator("dd").nth(1)).to_have_text("2")
    expect(progress.locator("dd").nth(2)).to_have_text("1")
