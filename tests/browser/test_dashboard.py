"""The dashboard in a browser: the last days per channel, the chart, what needs attention."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from playwright.sync_api import Page, expect

from outbound.adapters.db.models import Channel, Message
from tests.browser.conftest import PASSWORD, ConsoleServer
from tests.browser.helpers import screenshots_dir, seed_messages, sign_in, snap


def test_the_dashboard_shows_the_last_days_per_channel(
    page: Page, console_server: ConsoleServer
) -> None:
    seed_messages(console_server.container, console_server.org_id)
    sign_in(page, console_server.url, console_server.admin.email, PASSWORD)
    page.goto(console_server.url + "/dashboard")
    table = page.get_by_role("table")
    sandbox = table.get_by_role("row").filter(has_text="Sandbox SMS")
    expect(sandbox.get_by_role("cell").nth(1)).to_have_text("6")
    expect(sandbox.get_by_role("cell").nth(2)).to_contain_text("6 (100.0%)")
    backup = table.get_by_role("row").filter(has_text="Backup SMS")
    expect(backup.get_by_role("cell").nth(3)).to_contain_text("high")
    expect(page.get_by_role("status")).to_contain_text(
        "100.0% of the messages of Backup SMS failed"
    )
    expect(page.locator(".chart canvas")).to_be_visible()
    expect(page.locator(".chart")).to_contain_text("Delivered")
    snap(page, "dashboard")
    chart = page.get_by_role("region", name="Messages per hour, last 24 hours")
    chart.screenshot(path=str(screenshots_dir() / "dashboard-chart.png"), animations="disabled")


def test_a_supervisor_sees_the_dashboard_without_admin_links(
    page: Page, console_server: ConsoleServer
) -> None:
    sign_in(page, console_server.url, console_server.supervisor.email, PASSWORD)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_text("No channels yet.")).to_be_visible()
    expect(page.get_by_role("link", name="Add a channel")).to_have_count(0)


def test_channels_that_wait_are_shown(page: Page, console_server: ConsoleServer) -> None:
    seeded = seed_messages(console_server.container, console_server.org_id)
    backup = seeded["channels"][1]
    c = console_server.container
    # As the dispatcher leaves a message whose provider keeps failing (the circuit is open).
    with c.db.transaction() as session:
        session.execute(
            sa.update(Message)
            .where(Message.id == seeded["message_ids"][-1])
            .values(
                status="queued",
                error_code="circuit_open",
                scheduled_at=c.clock.now() + timedelta(minutes=5),
            )
        )
        session.execute(
            sa.update(Channel)
            .where(Channel.id == backup.id)
            .values(healthy=False, health_detail="credentials refused")
        )
    sign_in(page, console_server.url, console_server.admin.email, PASSWORD)
    expect(page.get_by_role("alert")).to_contain_text("Channel Backup SMS is stopped.")
    paused = page.get_by_role("status").filter(has_text="is paused")
    expect(paused).to_contain_text("Sending through Backup SMS is paused")
    expect(paused).to_contain_text("1 message waits")
    paused.get_by_role("link", name="See the waiting messages").click()
    expect(page.get_by_role("table")).to_contain_text("queued")
