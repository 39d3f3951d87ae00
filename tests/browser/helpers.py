"""What the browser tests share: signing in, screenshots, a catalog with messages."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from outbound.app import Container
from outbound.domain.statuses import TERMINAL_STATUSES
from outbound.schemas import (
    ChannelCreate,
    ConfigurationCreate,
    ContactItem,
    SendIn,
    TemplateCreate,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
# Read once at import: the tests' fixtures clear every OUTBOUND_* variable.
UPDATE_SCREENSHOTS = os.environ.get("OUTBOUND_UPDATE_SCREENSHOTS") == "1"


def screenshots_dir() -> Path:
    """``docs/screenshots`` with ``OUTBOUND_UPDATE_SCREENSHOTS=1`` (``make screenshots``);
    else ``test-results/screenshots``, so that a test run leaves the committed pictures alone
    (each run differs in its times and ids)."""
    if UPDATE_SCREENSHOTS:
        return DOCS_SCREENSHOTS
    return ROOT / "test-results" / "screenshots"


def snap(page: Page, name: str) -> Path:
    """A 1280 by 800 screenshot of the page as it is, as ``<name>.png`` in
    :func:`screenshots_dir`."""
    directory = screenshots_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled", caret="hide")
    return path


def sign_in(page: Page, base_url: str, email: str, password: str) -> None:
    """Sign in through the form, and wait for the page that follows."""
    page.goto(f"{base_url}/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def open_menu(page: Page, group: str, entry: str) -> None:
    """Open a screen through the main menu: its group, then its entry (a group of which the
    user may open one screen only is that screen's link)."""
    menu = page.get_by_role("navigation", name="Main menu")
    link = menu.get_by_role("link", name=entry, exact=True)
    if not link.is_visible():
        menu.locator("summary", has_text=group).click()
    link.click()


def wait_until_final(container: Container, org_id: str, message_ids: list[str]) -> None:
    """Wait (at most 20 s) until the worker has brought every message to a final status."""
    final = {status.value for status in TERMINAL_STATUSES}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if all(container.tracking.get(org_id, m).status in final for m in message_ids):
            return
        time.sleep(0.1)
    raise AssertionError("messages did not reach a final status in time")


def seed_messages(container: Container, org_id: str) -> dict[str, Any]:
    """Two sandbox channels (one failing every message), a template, a configuration for
    each, and a few messages sent through each, brought to their final status."""
    channels = [
        container.channels.create(
            org_id,
            ChannelCreate(
                name=name, type="sms", provider="sandbox", sender=sender, options=options
            ),
        )
        for name, sender, options in (
            ("Sandbox SMS", "+15005550006", {}),
            ("Backup SMS", "+15005550007", {"failure_rate": 1.0}),
        )
    ]
    template = container.templates.create(
        org_id,
        TemplateCreate(
            name="Case update",
            channel_type="sms",
            default_locale="en-US",
            default_text="Hi {CustomerName}, your case {CaseName} has been updated.",
            localizations={"fr-FR": "Bonjour {CustomerName}, votre dossier {CaseName} a changé."},
        ),
    )
    message_ids: list[str] = []
    configurations = []
    for channel, count in zip(channels, (6, 3), strict=True):
        config = container.configurations.create(
            org_id,
            ConfigurationCreate(
                name=f"Case updates ({channel.name})",
                channel_type="sms",
                channel_id=channel.id,
                template_id=template.id,
                default_locale="en-US",
            ),
        )
        configurations.append(config)
        contacts = [
            ContactItem.model_validate(
                {
                    "tocontactid": f"+336123456{index:02d}",
                    "optin": True,
                    "locale": "fr-FR" if index % 2 else "en-US",
                    "contextitems": {"CustomerName": "Ana", "CaseName": f"CAS-{index:04d}"},
                }
            )
            for index in range(count)
        ]
        result = container.sending.send(
            org_id, SendIn(configuration_id=config.id, contacts=contacts)
        )
        message_ids += [r.message_id for r in result.results if r.message_id]
    wait_until_final(container, org_id, message_ids)
    return {
        "channels": channels,
        "template": template,
        "configurations": configurations,
        "message_ids": message_ids,
    }
