"""The reports screen in a browser: the table by the chosen group, the chart, the funnel,
the CSV files, in English and French, for the roles that may read reports."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import PASSWORD, ConsoleServer
from tests.browser.helpers import open_menu, screenshots_dir, seed_messages, sign_in, snap


def test_a_report_by_configuration_with_its_chart_funnel_and_csv(
    page: Page, console_server: ConsoleServer
) -> None:
    seed_messages(console_server.container, console_server.org_id)
    sign_in(page, console_server.url, console_server.admin.email, PASSWORD)
    open_menu(page, "Tracking", "Reports")
    expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    page.get_by_label("Group by").select_option(label="Configuration")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"group_by=configuration"))
    table = page.get_by_role("region", name="Messages by group").get_by_role("table")
    sandbox = table.get_by_role("row").filter(has_text="Case updates (Sandbox SMS)")
    expect(sandbox.get_by_role("cell").nth(0)).to_have_text("6")  # requested
    expect(sandbox.get_by_role("cell").nth(4)).to_have_text("6")  # delivered
    expect(sandbox.get_by_role("cell").nth(6)).to_have_text("100.0%")
    backup = table.get_by_role("row").filter(has_text="Case updates (Backup SMS)")
    expect(backup.get_by_role("cell").nth(5)).to_have_text("3")  # failed
    expect(
        table.get_by_role("row").filter(has_text="Total").get_by_role("cell").first
    ).to_have_text("9")
    expect(page.locator(".chart canvas")).to_be_visible()
    funnel = page.get_by_role("region", name="Funnel")
    expect(funnel.get_by_role("row").filter(has_text="Backup SMS")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("region", name="Messages by group").get_by_role(
            "link", name="Download CSV"
        ).click()
    text = download.value.path().read_text()
    assert text.startswith("configuration_id,requested,")
    assert text.rstrip().splitlines()[-1].startswith("total,9,")
    page.get_by_role("heading", name="Over time").scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, 330)")
    snap(page, "reports-table")
    page.evaluate("window.scrollTo(0, 0)")
    snap(page, "reports")
    # Within each configuration, by day.
    page.get_by_label("Then by").select_option(label="Day")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"then_by=day"))
    table = page.get_by_role("region", name="Messages by group").get_by_role("table")
    expect(table.get_by_role("columnheader").nth(0)).to_have_text("Configuration")
    expect(table.get_by_role("columnheader").nth(1)).to_have_text("Day")
    days = table.get_by_role("row").filter(has_text="Case updates (Sandbox SMS)")
    expect(days.first.get_by_role("rowheader")).to_have_count(2)
    expect(
        table.get_by_role("row").filter(has_text="Total").get_by_role("cell").first
    ).to_have_text("9")
    with page.expect_download() as download:
        page.get_by_role("region", name="Messages by group").get_by_role(
            "link", name="Download CSV"
        ).click()
    assert download.value.path().read_text().startswith("configuration_id,day,requested,")
    page.get_by_role("heading", name="Messages by group").scroll_into_view_if_needed()
    snap(page, "reports-two-groups")


def test_a_supervisor_reads_reports_in_french_and_an_agent_may_not(
    browser: Browser, page: Page, console_server: ConsoleServer
) -> None:
    seed_messages(console_server.container, console_server.org_id)
    context = browser.new_context(
        locale="fr-FR", viewport={"width": 1280, "height": 800}, timezone_id="Europe/Paris"
    )
    try:
        french = context.new_page()
        french.goto(console_server.url + "/login")
        french.get_by_label("Adresse e-mail").fill(console_server.supervisor.email)
        french.get_by_label("Mot de passe").fill(PASSWORD)
        french.get_by_role("button", name="Se connecter").click()
        french.goto(console_server.url + "/reports?group_by=channel")
        expect(french.get_by_role("heading", name="Rapports", exact=True)).to_be_visible()
        table = french.get_by_role("region", name="Messages par groupe").get_by_role("table")
        expect(table.get_by_role("row").filter(has_text="Sandbox SMS")).to_be_visible()
        expect(french.get_by_role("columnheader", name="Taux de remise")).to_be_visible()
        snap(french, "reports-fr")
        chart = french.get_by_role("region", name="Dans le temps")
        expect(chart.locator("canvas")).to_be_visible()
        chart.screenshot(
            path=str(screenshots_dir() / "reports-chart-fr.png"), animations="disabled"
        )
    finally:
        context.close()
    sign_in(page, console_server.url, console_server.agent.email, PASSWORD)
    expect(page.get_by_role("link", name="Reports")).to_have_count(0)
    page.goto(console_server.url + "/reports")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
