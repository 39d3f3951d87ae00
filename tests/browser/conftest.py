"""Browser tests: Playwright drives the operating system's Chromium against a real server.

Each test gets the service served by uvicorn on a free port (with its dispatcher, so messages
are really sent), on SQLite in a temporary directory unless the test asks for the
``backend`` fixture's PostgreSQL too; an organisation with an admin, a supervisor and an agent
who sign in with passwords (:data:`PASSWORD`); and the fake Twilio server for Twilio channels.

Chromium is Debian's package (``apt-get install chromium``), launched by its path, since
Playwright's own browser download is not used. Without it these tests are skipped, unless
``OUTBOUND_REQUIRE_BROWSER=1`` (set by CI) makes that a failure. A failed test keeps its
Playwright trace under ``test-results/`` (``playwright show-trace`` opens it). Screenshots
are taken at 1280 by 800 by :func:`tests.browser.helpers.snap`, into ``docs/screenshots/``
with ``make screenshots`` (``OUTBOUND_UPDATE_SCREENSHOTS=1``), else into
``test-results/screenshots/``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import expect

from outbound.app import Container, build_container, create_app
from outbound.config import Settings
from outbound.schemas import UserCreate
from outbound.services.auth import create_organization
from outbound.web.server import server_config
from tests.helpers import SECRET

REQUIRE_BROWSER = os.environ.get("OUTBOUND_REQUIRE_BROWSER") == "1"
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "console-password-1"
# What a person waits for shows up within this; a busy machine (CI beside other suites) can
# need more than Playwright's default 5 s. Never a measure of speed.
expect.set_options(timeout=20_000)
VIEWPORT = {"width": 1280, "height": 800}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def _chromium() -> str | None:
    configured = os.environ.get("OUTBOUND_CHROMIUM")
    if configured:
        return configured
    for path in CHROMIUM_PATHS:
        if Path(path).exists():
            return path
    found = shutil.which("chromium")
    return found


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = _chromium()
    if path is None:
        message = (
            "browser tests need Chromium (apt-get install chromium, or OUTBOUND_CHROMIUM=PATH); "
            "none found"
        )
        if REQUIRE_BROWSER:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def base_url() -> str | None:
    """No fixed base URL: each test's server has a port of its own. (This replaces the
    fixture of pytest-base-url, whose form pytest deprecates.)"""
    return None


@pytest.fixture(scope="session")
def browser_type_launch_args(
    browser_type_launch_args: dict[str, Any], chromium_path: str
) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": chromium_path,
        "args": CHROMIUM_ARGS,
        "headless": True,
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_context_args,
        "viewport": VIEWPORT,
        "locale": "en-GB",
        "timezone_id": "Europe/Paris",
    }


@pytest.fixture
def backend() -> str:
    """SQLite unless a test parametrizes ``backend`` itself (the scenarios run on both)."""
    return "sqlite"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Person:
    email: str
    name: str
    role: str
    id: str = ""


@dataclass
class ConsoleServer:
    """The running service, its organisation and its people."""

    url: str
    container: Container
    org_id: str
    admin: Person
    supervisor: Person
    agent: Person
    twilio_url: str


class FakeTwilioThread:
    """The fake Twilio server, on an event loop of its own in a background thread."""

    def __init__(self) -> None:
        from outbound.testing.fakes import FakeTwilio

        self.fake = FakeTwilio(callback_delay=0.1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> str:
        self._thread.start()
        url: str = asyncio.run_coroutine_threadsafe(self.fake.start(), self._loop).result(10)
        return url

    def send_inbound(self, url: str, from_: str, to: str, body: str) -> int | None:
        """A customer's message, as Twilio posts it (signed) to the channel's webhook."""
        status: int | None = asyncio.run_coroutine_threadsafe(
            self.fake.send_inbound(url, from_, to, body), self._loop
        ).result(10)
        return status

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilioThread]:
    fake = FakeTwilioThread()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def console_server(
    database_url: str, tmp_path: Path, fake_twilio: FakeTwilioThread
) -> Iterator[ConsoleServer]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        secret_key=SECRET,
        default_region="FR",
        public_base_url=url,
        sandbox_delivery_delay=0.1,
        worker_poll_interval=0.1,
        log_level="WARNING",
    )
    container = build_container(settings)
    container.migrate()
    org = create_organization(container.db, container.clock, "Acme")
    people = {
        "admin": Person("ada@example.com", "Ada Admin", "admin"),
        "supervisor": Person("sam@example.com", "Sam Supervisor", "supervisor"),
        "agent": Person("camille@example.com", "Camille Agent", "agent"),
    }
    for person in people.values():
        user = container.users.create(
            org.id,
            UserCreate(
                email=person.email,
                name=person.name,
                role=person.role,
                password=PASSWORD,
                time_zone="Europe/Paris",
            ),
        )
        person.id = user.id
    server = uvicorn.Server(
        server_config(
            create_app(container, run_worker=True), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, name="console-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the service did not start")
        time.sleep(0.05)
    try:
        yield ConsoleServer(
            url=url,
            container=container,
            org_id=org.id,
            admin=people["admin"],
            supervisor=people["supervisor"],
            agent=people["agent"],
            twilio_url=fake_twilio.fake.base_url,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=20)
