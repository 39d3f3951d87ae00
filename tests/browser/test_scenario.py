"""The admin's first steps, end to end in a browser against a real server: a Twilio channel
(the fake Twilio server), a template in English and French, a configuration, and a test that
shows up delivered. On SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from outbound.testing.fakes import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.browser.conftest import PASSWORD, ConsoleServer
from tests.browser.helpers import open_menu, sign_in, snap

ENGLISH = "Hi {CustomerName}, your case {CaseName} has been updated."
FRENCH = "Bonjour {CustomerName}, votre dossier {CaseName} a été mis à jour."


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_an_admin_sets_up_sending_and_a_test_is_delivered(
    page: Page, console_server: ConsoleServer, backend: str
) -> None:
    base = console_server.url
    sign_in(page, base, console_server.admin.email, PASSWORD)

    # A Twilio channel, on the fake Twilio server.
    open_menu(page, "Administration", "Channels")
    expect(page.get_by_text("No channels yet.")).to_be_visible()
    page.get_by_role("link", name="New channel").click()
    page.get_by_label("Name").fill("Twilio SMS")
    page.get_by_label("Provider", exact=True).select_option("twilio")
    expect(page.get_by_label("auth_token")).to_have_attribute("type", "password")
    page.get_by_label("account_sid").fill(DEFAULT_ACCOUNT_SID)
    page.get_by_label("auth_token").fill(DEFAULT_AUTH_TOKEN)
    page.get_by_label("API base URL").fill(console_server.twilio_url)
    page.get_by_label("Sender", exact=True).fill("+15005550006")
    page.get_by_role("button", name="Create channel").click()
    expect(page.get_by_role("status")).to_have_text("Channel saved.")
    expect(page.locator("#webhook-url")).to_have_text(re.compile(rf"^{base}/webhooks/"))
    expect(page.get_by_role("button", name="Copy").nth(1)).to_be_visible()
    snap(page, "channel")

    # A template in English and French.
    open_menu(page, "Sending", "Templates")
    page.get_by_role("link", name="New template").click()
    page.get_by_label("Name").fill("Case update")
    default_text = page.get_by_label("Default text", exact=True)
    default_text.fill(ENGLISH)
    segments = page.locator("#count-default_text").get_by_test_id("segments")
    expect(segments).to_have_text("1")
    default_text.press_sequentially(" Merci beaucoup, à bientôt ! Ωμέγα.")
    expect(page.locator("#count-default_text").get_by_test_id("encoding")).to_have_text("UCS-2")
    expect(segments).to_have_text("2")
    default_text.fill(ENGLISH)
    expect(segments).to_have_text("1")
    page.get_by_role("tab", name=re.compile("Add a language")).click()
    page.get_by_label("Language", exact=True).fill("fr-FR")
    page.get_by_label("Text in this language").fill(FRENCH)
    page.get_by_role("button", name="Save template").click()
    expect(page.get_by_role("status")).to_have_text("Template saved.")

    # A configuration tying them together.
    open_menu(page, "Sending", "Configurations")
    page.get_by_role("link", name="New configuration").click()
    page.get_by_label("Name").fill("Case updates by SMS")
    page.get_by_label("Channel", exact=True).select_option(label="Twilio SMS (twilio, sms)")
    page.get_by_label("Template").select_option(label="Case update")
    page.get_by_label("Default language").fill("en-US")
    page.get_by_label("At most (messages)").fill("3")
    page.get_by_label("Per period").fill("24h")
    page.get_by_role("button", name="Save configuration").click()
    expect(page.get_by_role("status")).to_have_text("Configuration saved.")
    config_id = page.locator("#configuration-id").inner_text()
    assert re.fullmatch(r"[0-9a-f-]{36}", config_id)
    expect(page.get_by_label("Per period")).to_have_value("24h")
    snap(page, "configuration")

    # A test through it, in French: delivered, as the fake Twilio reports it.
    page.get_by_label("To", exact=True).fill("06 12 34 56 78")
    page.get_by_label("Contact's language").fill("fr-FR")
    page.get_by_label("{CustomerName}").fill("Élodie")
    page.get_by_label("{CaseName}").fill("CAS-01002")
    page.get_by_role("button", name="Send the test").click()
    expect(page.get_by_role("heading", name="Message to +33612345678")).to_be_visible()
    expect(page.get_by_test_id("status")).to_have_text("delivered", timeout=30_000)
    expect(
        page.get_by_text("Bonjour Élodie, votre dossier CAS-01002 a été mis à jour.")
    ).to_be_visible()
    expect(page.get_by_role("table")).to_contain_text("provider")
    expect(page.locator("dd.mono").filter(has_text=re.compile(r"^SM"))).to_have_count(1)
    snap(page, "message")

    page.goto(base + "/messages")
    expect(page.get_by_role("row").filter(has_text="+33612345678")).to_contain_text("delivered")
    snap(page, "messages")
