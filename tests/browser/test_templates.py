"""Templates in a browser: tabs per language, the live count, placeholder errors, usage."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from outbound.schemas import ChannelCreate, ConfigurationCreate
from tests.browser.conftest import PASSWORD, ConsoleServer
from tests.browser.helpers import open_menu, sign_in, snap

GSM_TEXT = (
    "Hi {CustomerName}, your case {CaseName} has been updated. Reply STOP to opt out of texts."
)


def test_writing_a_template_in_english_and_french(
    page: Page, console_server: ConsoleServer
) -> None:
    base = console_server.url
    sign_in(page, base, console_server.admin.email, PASSWORD)
    open_menu(page, "Sending", "Templates")
    expect(page.get_by_text("No templates yet.")).to_be_visible()
    page.get_by_role("link", name="Write the first template").click()

    page.get_by_label("Name").fill("Case update")
    page.get_by_label("Default language").fill("en-US")
    text = page.get_by_label("Default text", exact=True)
    text.fill(GSM_TEXT)
    count = page.locator("#count-default_text")
    expect(count.get_by_test_id("encoding")).to_have_text("GSM-7")
    expect(count.get_by_test_id("segments")).to_have_text("1")
    # One character outside GSM-7 and the whole text becomes UCS-2: 2 segments.
    text.press_sequentially(" 🙂")
    expect(count.get_by_test_id("encoding")).to_have_text("UCS-2")
    expect(count.get_by_test_id("segments")).to_have_text("2")
    text.press("Backspace")
    text.press("Backspace")
    expect(count.get_by_test_id("segments")).to_have_text("1")
    # A placeholder error is shown at its position.
    text.fill("Hi {Customer Name}")
    expect(count.get_by_role("paragraph").first).to_have_text(
        "Placeholder error at character 13: whitespace in placeholder name"
    )
    expect(count.locator("mark")).to_have_text(" ")
    text.fill(GSM_TEXT)

    page.get_by_role("tab", name=re.compile("Add a language")).click()
    page.get_by_label("Language", exact=True).fill("fr-FR")
    french = page.get_by_label("Text in this language")
    french.fill("Bonjour {CustomerName}, votre dossier {CaseName} a été mis à jour.")
    expect(page.locator("#count-loc-0-text").get_by_test_id("segments")).to_have_text("1")
    page.get_by_role("button", name="Save template").click()

    expect(page.get_by_role("status")).to_have_text("Template saved.")
    expect(page.get_by_role("tab", name="French (France) (fr-FR)")).to_be_visible()
    expect(page.get_by_text("No outbound configuration uses this template.")).to_be_visible()
    page.get_by_role("tab", name="French (France) (fr-FR)").click()
    expect(page.get_by_label("Text in this language").first).to_have_value(
        "Bonjour {CustomerName}, votre dossier {CaseName} a été mis à jour."
    )
    page.get_by_role("tab", name=re.compile("Default")).click()
    snap(page, "template")


def test_a_template_in_use_is_not_deleted(page: Page, console_server: ConsoleServer) -> None:
    c, org = console_server.container, console_server.org_id
    channel = c.channels.create(
        org, ChannelCreate(name="SMS", type="sms", provider="sandbox", sender="+15005550006")
    )
    from outbound.schemas import TemplateCreate

    template = c.templates.create(
        org,
        TemplateCreate(name="Reminder", channel_type="sms", default_locale="en", default_text="Hi"),
    )
    c.configurations.create(
        org,
        ConfigurationCreate(
            name="Reminders", channel_type="sms", channel_id=channel.id, template_id=template.id
        ),
    )
    sign_in(page, console_server.url, console_server.admin.email, PASSWORD)
    page.goto(f"{console_server.url}/templates")
    expect(page.get_by_role("row").filter(has_text="Reminder")).to_contain_text("1 configuration")
    page.get_by_role("link", name="Reminder").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete template").click()
    expect(page.get_by_role("alert")).to_contain_text("This template cannot be deleted")
    expect(page.get_by_role("link", name="Reminders")).to_be_visible()
