"""Users and API keys, organisation settings and routing, in a browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from outbound.schemas import ChannelCreate
from tests.browser.conftest import PASSWORD, ConsoleServer
from tests.browser.helpers import open_menu, sign_in, snap

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_users_and_api_keys(page: Page, console_server: ConsoleServer, backend: str) -> None:
    base = console_server.url
    sign_in(page, base, console_server.admin.email, PASSWORD)
    open_menu(page, "Administration", "Users and API keys")
    expect(page.get_by_role("heading", name="Users and API keys")).to_be_visible()

    page.get_by_label("Name", exact=True).first.fill("Noor Agent")
    page.get_by_label("E-mail address").fill("noor@example.com")
    page.get_by_label("Role").first.select_option("agent")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create user").click()
    expect(page.locator("#e-password")).to_be_visible()
    page.get_by_label("Password").fill("noor-password-1")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_have_text("User created.")
    row = page.get_by_role("row").filter(has_text="noor@example.com")
    expect(row).to_contain_text("Agent")

    page.get_by_label("Key name").fill("CRM")
    page.get_by_label("Role").nth(1).select_option("sender")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key")
    expect(secret).to_have_text(re.compile(r"^\S{20,}$"))
    key = secret.inner_text()
    expect(page.get_by_role("row").filter(has_text="CRM")).to_contain_text(key[:10])
    snap(page, "users")

    # The secret is shown once: reloading the list does not show it.
    page.goto(f"{base}/users")
    expect(page.locator("#new-key")).to_have_count(0)
    expect(page.get_by_text(key)).to_have_count(0)

    page.get_by_role("button", name="Revoke CRM").click()
    expect(page.get_by_role("status")).to_contain_text("Key revoked")
    expect(page.get_by_role("row").filter(has_text="CRM")).to_contain_text("revoked")

    page.get_by_role("button", name="Deactivate Noor Agent").click()
    expect(page.get_by_role("status")).to_contain_text("User deactivated")
    expect(page.get_by_role("row").filter(has_text="noor@example.com")).to_contain_text(
        "deactivated"
    )
    # The admin cannot deactivate themselves: no button on their own row.
    expect(page.get_by_role("button", name="Deactivate Ada Admin")).to_have_count(0)


def test_routing_rules_settings_and_the_simulator(
    page: Page, console_server: ConsoleServer
) -> None:
    c, org = console_server.container, console_server.org_id
    c.channels.create(
        org, ChannelCreate(name="SMS FR", type="sms", provider="sandbox", sender="+15005550006")
    )
    base = console_server.url
    sign_in(page, base, console_server.admin.email, PASSWORD)
    page.goto(f"{base}/routing")
    for name in ("General", "Billing"):
        page.get_by_label("New queue's name").fill(name)
        page.get_by_role("button", name="Create queue").click()
        expect(page.get_by_role("status")).to_have_text("Queue created.")
    # The first queue became the fallback.
    expect(page.get_by_role("row").filter(has_text="General")).to_contain_text("fallback")

    page.get_by_role("link", name="New rule").click()
    page.get_by_label("Name").fill("Invoices")
    page.get_by_label("Queue").select_option(label="Billing")
    page.get_by_label("Conditions").fill("text shouts invoice")
    page.get_by_role("button", name="Save rule").click()
    expect(page.locator(".field.has-error")).to_contain_text("op")
    page.get_by_label("Conditions").fill("text contains invoice")
    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_role("status")).to_have_text("Rule saved.")
    expect(page.get_by_role("row").filter(has_text="Invoices")).to_contain_text(
        "text contains invoice"
    )

    page.get_by_label("Message").fill("Where is my invoice?")
    page.get_by_role("button", name="Simulate").click()
    expect(page.get_by_test_id("sim-queue")).to_contain_text("Billing")
    expect(page.get_by_test_id("sim-queue")).to_contain_text("rule Invoices")
    snap(page, "routing")
    page.get_by_label("Message").fill("Hello")
    page.get_by_role("button", name="Simulate").click()
    expect(page.get_by_test_id("sim-queue")).to_contain_text("General")

    open_menu(page, "Administration", "Settings")
    queues = {q.name: q.id for q in c.queues.list_queues(org)}
    expect(page.get_by_label("Fallback queue")).to_have_value(queues["General"])
    page.get_by_label("Fallback queue").select_option(label="Billing")
    page.get_by_label(re.compile("reopens it")).check()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_have_text("Settings saved.")
    expect(page.get_by_label(re.compile("reopens it"))).to_be_checked()
    snap(page, "settings")
    assert [q.name for q in c.queues.list_queues(org) if q.fallback] == ["Billing"]


def test_a_supervisor_sees_routing_but_not_users(page: Page, console_server: ConsoleServer) -> None:
    base = console_server.url
    sign_in(page, base, console_server.supervisor.email, PASSWORD)
    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_text("Agents", exact=True).click()
    expect(menu.get_by_role("link", name="Routing")).to_be_visible()
    expect(menu.get_by_text("Administration")).to_have_count(0)
    expect(menu.locator('a[href="/users"]')).to_have_count(0)
    response = page.goto(f"{base}/users")
    assert response is not None and response.status == 403
    response = page.goto(f"{base}/settings")
    assert response is not None and response.status == 403
