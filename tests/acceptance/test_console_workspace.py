"""The workspace and supervision screens over HTTP: roles, CSRF, presence."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, MutableMapping
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from outbound.adapters.db.models import Conversation
from outbound.app import Container
from outbound.console.routes import auth
from outbound.console.routes.workspace import INBOX_SIZE
from outbound.console.session import COOKIE_NAME
from outbound.schemas import QueueCreate, UserCreate, UserUpdate
from outbound.testing import FakeClock
from tests.helpers import Tenant

PASSWORD = "console-password-1"


@pytest.fixture(autouse=True)
def _no_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "FAILED_SIGN_IN_DELAY_SECONDS", 0.0)


def _token(client: TestClient, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match
    return match.group(1)


def _signed_in(
    container: Container, tenant: Tenant, client: TestClient, role: str, **extra: str
) -> str:
    email = f"{role}@example.com"
    user = container.users.create(
        tenant.org_id, UserCreate(email=email, name=role, role=role, password=PASSWORD, **extra)
    )
    answer = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": _token(client, "/login")},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    return user.id


def test_agents_have_the_workspace_and_supervisors_the_supervision(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    _signed_in(container, tenant, client, "agent")
    page = client.get("/workspace")
    assert page.status_code == 200
    assert 'sse-connect="/workspace/stream"' in page.text
    assert 'href="/supervision"' not in page.text
    assert client.get("/workspace?view=all").status_code == 200  # shows "mine" instead
    assert ">All<" not in client.get("/workspace/inbox?view=all").text
    assert client.get("/supervision").status_code == 403
    client.post("/logout", data={"csrf_token": _token(client, "/workspace")})
    _signed_in(container, tenant, client, "supervisor")
    assert client.get("/supervision").status_code == 200
    assert ">All<" in client.get("/workspace/inbox?view=all").text


def test_the_presence_switch_needs_the_csrf_token_and_makes_the_agent_online(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    user_id = _signed_in(container, tenant, client, "agent")
    refused = client.post("/workspace/presence", data={"status": "available"})
    assert refused.status_code == 403
    assert container.presence.get(tenant.org_id, user_id).status == "offline"
    answer = client.post(
        "/workspace/presence",
        data={"status": "available", "csrf_token": _token(client, "/workspace")},
        follow_redirects=False,
    )
    assert (answer.status_code, answer.headers["location"]) == (303, "/workspace")
    presence = container.presence.get(tenant.org_id, user_id)
    assert presence.status == "available" and presence.online


def test_the_reply_counter_counts_segments(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    _signed_in(container, tenant, client, "agent")
    token = _token(client, "/workspace")
    answer = client.post(
        "/workspace/count", data={"body": "é" * 70 + "🚚"}, headers={"X-CSRF-Token": token}
    )
    assert 'data-testid="encoding">UCS-2<' in answer.text
    assert 'data-testid="segments">2<' in answer.text


def test_the_stream_needs_a_session(container: Container, client: TestClient) -> None:
    answer = client.get("/workspace/stream", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (
        303,
        "/login?next=%2Fworkspace%2Fstream",
    )


def test_the_workspace_speaks_french(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    _signed_in(container, tenant, client, "agent", ui_language="fr")
    page = client.get("/workspace").text
    assert "Espace de travail" in page
    assert "Les miennes" in page and "Non attribuées" in page
    assert "Disponible" in page


def test_the_whatsapp_window_closes_24_hours_after_the_customer_wrote() -> None:
    from datetime import UTC, datetime, timedelta

    from outbound.console.routes.workspace import whatsapp_window_end
    from outbound.schemas import ConversationOut

    wrote = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    conv = ConversationOut.model_validate(
        {
            "id": "c",
            "channel_id": "ch",
            "configuration_id": None,
            "customer_number": "+33612345678",
            "status": "active",
            "assigned_to": None,
            "created_at": wrote,
            "updated_at": wrote,
            "last_message_at": wrote,
            "consent": {"opted_out": False, "last_inbound_at": wrote.replace(tzinfo=None)},
        }
    )
    assert whatsapp_window_end(conv, "whatsapp") == wrote + timedelta(hours=24)
    assert whatsapp_window_end(conv, "sms") is None


async def _stream_until_it_ends(
    client: TestClient, end_session: Callable[[], object], limit: float = 10.0
) -> bytes:
    """Open the workspace's stream with the client's cookie, call ``end_session`` once it is
    connected, and return what it sent; fails if it is still open ``limit`` seconds later.

    The application is called directly: the test client reads a response to its end, which
    a stream that never ends does not have."""
    received: list[bytes] = []
    disconnected = asyncio.Event()

    async def receive() -> dict[str, object]:
        await disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, object]) -> None:
        if message["type"] == "http.response.body":
            received.append(bytes(message.get("body", b"")))  # type: ignore[arg-type]

    cookie = f"{COOKIE_NAME}={client.cookies[COOKIE_NAME]}"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/workspace/stream",
        "raw_path": b"/workspace/stream",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    task = asyncio.create_task(client.app(scope, receive, send))
    try:
        async with asyncio.timeout(limit):
            while b": connected" not in b"".join(received):
                await asyncio.sleep(0.01)
        await asyncio.to_thread(end_session)
        await asyncio.wait_for(asyncio.shield(task), timeout=limit)
    finally:
        disconnected.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return b"".join(received)


@pytest.mark.parametrize(
    "ended_by", ["sign-out in another tab", "an admin", "deactivation", "expiry"]
)
async def test_the_stream_ends_when_its_session_is_ended_elsewhere(
    container: Container,
    tenant: Tenant,
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    ended_by: str,
) -> None:
    user_id = _signed_in(container, tenant, client, "agent")
    token = _token(client, "/workspace")
    # A heartbeat every 50 ms instead of every 15 s.
    monkeypatch.setattr(container.presence, "seen_every", 0.05)

    def end_session() -> None:
        if ended_by == "sign-out in another tab":
            client.post("/logout", data={"csrf_token": token})
        elif ended_by == "an admin":
            container.console_sessions.end_all(tenant.org_id, user_id)
        elif ended_by == "deactivation":
            container.users.update(tenant.org_id, user_id, UserUpdate(active=False))
        else:  # the cookie's lifetime is over
            monkeypatch.setattr(client.app.state.console_sessions, "max_age", 0)

    sent = await _stream_until_it_ends(client, end_session)
    assert sent.startswith(b": connected")
    assert sent.endswith(b"event: signed-out\ndata: {}\n\n")  # the page closes it


async def test_the_stream_stays_open_while_its_session_lives(
    container: Container, tenant: Tenant, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _signed_in(container, tenant, client, "agent")
    monkeypatch.setattr(container.presence, "seen_every", 0.05)
    with pytest.raises(TimeoutError):  # ten heartbeats, each with its check, and still open
        await _stream_until_it_ends(client, lambda: None, limit=0.5)


def test_the_inbox_finds_an_offer_and_a_queues_conversation_behind_a_page_of_others(
    container: Container, tenant: Tenant, client: TestClient, clock: FakeClock
) -> None:
    agent = _signed_in(container, tenant, client, "agent")
    mine, other = (
        container.queues.create_queue(tenant.org_id, QueueCreate(name=name, members=members)).id
        for name, members in (("Mine", [agent]), ("Other", []))
    )
    started = clock.now()

    def waiting(number: str, queue_id: str, offered_to: str | None = None) -> dict[str, Any]:
        return {
            "org_id": tenant.org_id,
            "channel_id": "channel",
            "customer_number": number,
            "status": "open",
            "queue_id": queue_id,
            "offered_to": offered_to,
            "created_at": started,
            "updated_at": started,
            "last_message_at": started,
            "waiting_since": started,
        }

    with container.db.transaction() as session:
        session.execute(
            sa.insert(Conversation),
            [waiting("+33600000001", mine, offered_to=agent), waiting("+33600000002", mine)],
        )
        newer = started + timedelta(minutes=1)
        session.execute(  # a page of newer ones, in a queue the agent is not in
            sa.insert(Conversation),
            [
                {**waiting(f"+3361{n:07d}", other), "created_at": newer}
                for n in range(INBOX_SIZE + 1)
            ],
        )
    assert "+33600000001" in client.get("/workspace?view=mine").text
    unassigned = client.get("/workspace?view=unassigned").text
    assert "+33600000002" in unassigned and "+33610000000" not in unassigned
