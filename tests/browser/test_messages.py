"""The messages screen in a browser: an admin cancels a queued message; a supervisor may not."""

from __future__ import annotations

import sqlalchemy as sa
from playwright.sync_api import Dialog, Page, expect

from outbound.adapters.db.models import Channel
from outbound.schemas import (
    ChannelCreate,
    ConfigurationCreate,
    ContactItem,
    SendIn,
    TemplateCreate,
)
from tests.browser.conftest import PASSWORD, ConsoleServer
from tests.browser.helpers import sign_in, snap


def _queued(server: ConsoleServer) -> str:
    """A message that stays queued: its channel is stopped, so no worker claims it."""
    c, org_id = server.container, server.org_id
    channel = c.channels.create(
        org_id,
        ChannelCreate(name="Paused SMS", type="sms", provider="sandbox", sender="+15005550006"),
    )
    with c.db.transaction() as session:
        session.execute(
            sa.update(Channel)
            .where(Channel.id == channel.id)
            .values(healthy=False, health_detail="credentials refused")
        )
    template = c.templates.create(
        org_id,
        TemplateCreate(
            name="Reminder", channel_type="sms", default_locale="en-US", default_text="See you soon"
        ),
    )
    config = c.configurations.create(
        org_id,
        ConfigurationCreate(
            name="Reminders", channel_type="sms", channel_id=channel.id, template_id=template.id
        ),
    )
    result = c.sending.send(
        org_id,
        SendIn(
            configuration_id=config.id,
            contacts=[ContactItem.model_validate({"tocontactid": "+33612345678", "optin": True})],
        ),
    )
    message_id = result.results[0].message_id
    assert message_id
    return message_id


def test_an_admin_cancels_a_queued_message(page: Page, console_server: ConsoleServer) -> None:
    _queued(console_server)
    sign_in(page, console_server.url, console_server.admin.email, PASSWORD)
    page.goto(console_server.url + "/messages?status=queued")
    page.get_by_role("row").filter(has_text="+33612345678").get_by_role("link").click()
    status = page.get_by_test_id("status")
    expect(status).to_have_text("queued")
    button = page.get_by_role("button", name="Cancel message")
    expect(button).to_be_visible()
    snap(page, "message-queued")
    questions: list[str] = []

    def answer(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    button.click()
    expect(status).to_have_text("canceled")
    assert questions and "It will not be sent" in questions[0]
    expect(page.get_by_role("button", name="Cancel message")).to_have_count(0)
    history = page.get_by_role("region", name="Status history")
    expect(history.get_by_role("row").last).to_contain_text("canceled")


def test_a_supervisor_sees_no_cancel_button(page: Page, console_server: ConsoleServer) -> None:
    message_id = _queued(console_server)
    sign_in(page, console_server.url, console_server.supervisor.email, PASSWORD)
    page.goto(f"{console_server.url}/messages/{message_id}")
    expect(page.get_by_test_id("status")).to_have_text("queued")
    expect(page.get_by_role("button", name="Cancel message")).to_have_count(0)
