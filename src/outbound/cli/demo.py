"""``outbound demo``: the whole path, from nothing, on SQLite with the sandbox provider."""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import uvicorn
from rich.console import Console
from rich.table import Table

from outbound.app import build_container, create_app
from outbound.config import load_settings
from outbound.domain.statuses import TERMINAL_STATUSES
from outbound.services.auth import create_api_key, create_organization
from outbound.web.server import server_config

__all__ = ["DEMO_ADMIN", "DEMO_CONTACTS", "run_demo"]

DEMO_TIMEOUT_SECONDS = 60.0
DEMO_ADMIN = {"email": "admin@example.com", "name": "Demo admin", "password": "demo-password-1"}
"""Who signs in to the demo's console."""

DEMO_CONTACTS: list[dict[str, Any]] = [
    {
        "tocontactid": "+1 415 555 2671",
        "optin": True,
        "locale": "en-US",
        "contextitems": {
            "CustomerName": "Ana",
            "CaseName": "CAS-01001",
            "regardingobjectid": "case-1001",
            "entityrelationshipname": "incident_msdyn_ocoutboundmessages",
        },
        "channelid": "sms",
    },
    {
        "tocontactid": "+33 6 12 34 56 78",
        "optin": True,
        "locale": 1036,
        "contextitems": {"CustomerName": "Élodie", "CaseName": "CAS-01002"},
        "channelid": "sms",
    },
    {
        "tocontactid": "+44 7911 123456",
        "optin": True,
        "locale": "fr-CA",
        "contextitems": {"CustomerName": "Jean", "CaseName": "CAS-01003"},
    },
    {
        "tocontactid": "+1 212 555 0147",
        "optin": False,
        "locale": "en-US",
        "contextitems": {"CustomerName": "Bo", "CaseName": "CAS-01004"},
    },
    {
        "tocontactid": "12345",
        "optin": True,
        "contextitems": {"CustomerName": "Nobody", "CaseName": "CAS-01005"},
    },
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _FakeTwilioThread:
    """The fake Twilio server, on a loop of its own in a background thread."""

    def __init__(self) -> None:
        from outbound.testing.fakes import FakeTwilio

        self.fake = FakeTwilio(callback_delay=0.2)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> str:
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self.fake.start(), self._loop).result(10)

    def send_inbound(self, url: str, from_: str, to: str, body: str) -> int | None:
        """A customer's message, as Twilio posts it (signed) to the channel's webhook."""
        return asyncio.run_coroutine_threadsafe(
            self.fake.send_inbound(url, from_, to, body), self._loop
        ).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def run_demo(
    console: Console,
    data_dir: Path | None = None,
    provider: str = "sandbox",
    *,
    keep_serving: bool = False,
) -> int:
    """Run the demo; returns the process exit code. With ``keep_serving`` the service stays
    up afterwards (its console open) until the process is interrupted."""
    with tempfile.TemporaryDirectory(prefix="outbound-demo-") as tmp:
        directory = data_dir or Path(tmp)
        port = _free_port()
        settings = load_settings(
            data_dir=directory,
            database_url=None,
            port=port,
            public_base_url=f"http://127.0.0.1:{port}",
            sandbox_delivery_delay=0.3,
            log_level="WARNING",
        )
        fake = _FakeTwilioThread() if provider == "twilio" else None
        channel: dict[str, Any] = {
            "name": "Sandbox SMS",
            "type": "sms",
            "provider": "sandbox",
            "sender": "+15005550006",
        }
        if fake is not None:
            from outbound.testing.fakes import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

            channel = {
                "name": "Twilio SMS (local fake)",
                "type": "sms",
                "provider": "twilio",
                "sender": "+15005550006",
                "base_url": fake.start(),
                "credentials": {
                    "account_sid": DEFAULT_ACCOUNT_SID,
                    "auth_token": DEFAULT_AUTH_TOKEN,
                },
            }
        label = "fake Twilio server" if fake else "sandbox provider"
        console.print(f"[bold]outbound demo[/bold]: SQLite in {directory}, {label}")
        container = build_container(settings)
        container.migrate()
        org = create_organization(container.db, container.clock, "Demo organisation")
        _key, api_key = create_api_key(container.db, container.clock, org.id, _admin_role())
        _create_console_admin(container, org.id)
        server = uvicorn.Server(
            server_config(
                create_app(container, run_worker=True),
                host="127.0.0.1",
                port=port,
                log_level="warning",
            )
        )
        thread = threading.Thread(target=server.run, name="outbound-demo-server", daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}"
        try:
            code = _drive(console, base, api_key, server, channel, fake)
            _print_console(console, base, keep_serving=keep_serving)
            if code == 0 and keep_serving:
                _serve_until_interrupted(thread)
            return code
        finally:
            server.should_exit = True
            thread.join(timeout=15)
            if fake is not None:
                fake.stop()


def _create_console_admin(container: Any, org_id: str) -> None:
    from outbound.schemas import UserCreate

    container.users.create(
        org_id,
        UserCreate(
            email=DEMO_ADMIN["email"],
            name=DEMO_ADMIN["name"],
            role="admin",
            password=DEMO_ADMIN["password"],
        ),
    )


def _print_console(console: Console, base: str, *, keep_serving: bool) -> None:
    console.print(
        f"console: [cyan]{base}/[/cyan]  sign in as [cyan]{DEMO_ADMIN['email']}[/cyan] "
        f"with the password [cyan]{DEMO_ADMIN['password']}[/cyan]"
    )
    if keep_serving:
        console.print("the service keeps running; press Ctrl-C to stop it")
    else:
        console.print("(it stops with the demo; `outbound demo --keep-serving` keeps it open)")


def _serve_until_interrupted(thread: threading.Thread) -> None:
    try:
        while thread.is_alive():
            thread.join(timeout=0.5)
    except KeyboardInterrupt:
        pass


def _admin_role() -> Any:
    from outbound.domain.roles import Role

    return Role.ADMIN


def _drive(
    console: Console,
    base: str,
    api_key: str,
    server: uvicorn.Server,
    channel_body: dict[str, Any],
    fake: _FakeTwilioThread | None = None,
) -> int:
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            console.print("[red]the service did not start[/red]")
            return 1
        time.sleep(0.05)
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx2.Client(base_url=base, headers=headers, timeout=10.0) as client:

        def call(method: str, path: str, **kwargs: Any) -> Any:
            response = client.request(method, path, **kwargs)
            if response.status_code >= 400:
                raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text}")
            return response.json()

        channel = call("POST", "/v1/channels", json=channel_body)
        console.print(f"channel [cyan]{channel['name']}[/cyan] (provider {channel['provider']})")
        template = call(
            "POST",
            "/v1/templates",
            json={
                "name": "Case update",
                "channel_type": "sms",
                "default_locale": "en-US",
                "default_text": "Hi {CustomerName}, your case {CaseName} has been updated.",
                "localizations": {
                    "fr-FR": "Bonjour {CustomerName}, votre dossier {CaseName} a été mis à jour."
                },
            },
        )
        config = call(
            "POST",
            "/v1/outbound-configurations",
            json={
                "name": "Case updates by SMS",
                "channel_type": "sms",
                "channel_id": channel["id"],
                "template_id": template["id"],
                "default_locale": "en-US",
                "show_in_timeline": True,
            },
        )
        console.print(f"configuration [cyan]{config['id']}[/cyan] created; sending…")
        started = time.perf_counter()
        sent = call(
            "POST",
            "/v1/outbound/send",
            json={"configuration_id": config["id"], "contacts": DEMO_CONTACTS},
            headers={"Idempotency-Key": "demo-1"},
        )
        accept_ms = (time.perf_counter() - started) * 1000
        console.print(
            f"accepted in {accept_ms:.0f} ms: {sent['queued']} queued, "
            f"{sent['skipped']} skipped, {sent['rejected']} rejected"
        )
        messages: dict[str, Any] = {}
        with console.status("waiting for delivery reports…"):
            deadline = time.monotonic() + DEMO_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                page = call("GET", "/v1/messages", params={"request_id": sent["request_id"]})
                messages = {m["id"]: m for m in page["data"]}
                if len(messages) == len(DEMO_CONTACTS) and all(
                    m["status"] in {s.value for s in TERMINAL_STATUSES} for m in messages.values()
                ):
                    break
                time.sleep(0.2)
        table = Table(title="Outcomes")
        for column in ("#", "to", "locale", "status", "provider id", "text or reason"):
            table.add_column(column)
        for outcome in sent["results"]:
            message = messages.get(outcome["message_id"], {})
            status = message.get("status", outcome["status"])
            colour = {"delivered": "green", "skipped": "yellow", "rejected": "red"}.get(
                status, "white"
            )
            table.add_row(
                str(outcome["index"]),
                outcome.get("to") or DEMO_CONTACTS[outcome["index"]]["tocontactid"],
                outcome.get("locale") or "",
                f"[{colour}]{status}[/{colour}]",
                message.get("provider_message_id") or "",
                outcome.get("reason") or message.get("body") or "",
            )
        console.print(table)
        timeline = call("GET", "/v1/timeline/case-1001")
        console.print(f"timeline of case-1001: {len(timeline['data'])} message(s)")
        expected = {"delivered": 3, "skipped": 1, "rejected": 1}
        got: dict[str, int] = {}
        for m in messages.values():
            got[m["status"]] = got.get(m["status"], 0) + 1
        if got != expected:
            console.print(f"[red]unexpected outcomes[/red]: {got} (expected {expected})")
            return 1
        if not _flows(console, call, channel["id"]):
            return 1

        def customer_says(text: str) -> int | None:
            if fake is not None:
                return fake.send_inbound(
                    channel["webhook_url"], DEMO_REPLY_FROM, channel["sender"], text
                )
            answer = client.post(
                channel["webhook_url"], json={"from": DEMO_REPLY_FROM, "body": text}
            )
            return answer.status_code

        if not _agents(console, call, channel, customer_says):
            return 1
        console.print("[green]demo complete[/green]")
        return 0


DEMO_CUSTOMERS: list[dict[str, Any]] = [
    {"name": "Élodie", "mobile_phone": "+33 6 12 34 56 78", "preferred_language": "fr-FR"},
    {"name": "Ana", "mobile_phone": "+1 415 555 2671", "preferred_language": "en-US"},
    {"name": "Mateo", "mobile_phone": "+34 612 34 56 78", "preferred_language": "es-ES"},
]


def _wait_for(
    console: Console, call: Any, configuration_id: str, count: int, what: str
) -> list[dict[str, Any]]:
    """The configuration's messages, once ``count`` of them are delivered (or time is up)."""
    found: list[dict[str, Any]] = []
    with console.status(what):
        deadline = time.monotonic() + DEMO_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            page = call("GET", "/v1/messages", params={"configuration_id": configuration_id})
            found = page["data"]
            if len(found) >= count and all(m["status"] == "delivered" for m in found):
                break
            time.sleep(0.2)
    return found


def _flows(console: Console, call: Any, channel_id: str) -> bool:
    """The sample flows: an automatic one on case creation, an instant one run by hand."""
    from outbound.cli.samples import SAMPLE_NAMES, apply_sample, load_sample

    flows = {name: apply_sample(call, load_sample(name), channel_id) for name in SAMPLE_NAMES}
    console.print(
        "flows [cyan]case-created[/cyan] (automatic) and [cyan]case-resolved[/cyan] (instant) "
        "applied from examples/flows"
    )
    cases = []
    for customer in DEMO_CUSTOMERS:
        contact = call("POST", "/v1/contacts", json={**customer, "consent": {"sms": True}})
        cases.append(
            call("POST", "/v1/cases", json={"title": "Parcel damaged", "contact_id": contact["id"]})
        )
    console.print(f"{len(cases)} cases created; the case-created flow tells each customer…")
    created = _wait_for(
        console,
        call,
        flows["case-created"]["configuration_id"],
        len(cases),
        "waiting for the case-created messages…",
    )
    for case in cases[:2]:
        call("POST", f"/v1/cases/{case['id']}/resolve")
    run = call("POST", "/v1/flows/case-resolved/runs", json={})
    console.print(f"2 cases resolved; case-resolved run [cyan]{run['id']}[/cyan] started")
    deadline = time.monotonic() + DEMO_TIMEOUT_SECONDS
    while run["status"] in {"pending", "running"} and time.monotonic() < deadline:
        time.sleep(0.2)
        run = call("GET", f"/v1/flow-runs/{run['id']}")
    resolved = _wait_for(
        console,
        call,
        flows["case-resolved"]["configuration_id"],
        run["queued"],
        "waiting for the case-resolved messages…",
    )
    table = Table(title="Flow messages")
    for column in ("flow", "to", "status", "text"):
        table.add_column(column)
    for flow, rows in (("case-created", created), ("case-resolved", resolved)):
        for message in rows:
            table.add_row(flow, message["to"], message["status"], message["body"])
    console.print(table)
    delivered = sum(m["status"] == "delivered" for m in created + resolved)
    if run["status"] != "completed" or delivered != len(cases) + 2:
        console.print(
            f"[red]unexpected flow outcomes[/red]: run {run['status']}, "
            f"{delivered} delivered (expected {len(cases) + 2})"
        )
        return False
    return True


DEMO_AGENT = {"email": "camille@example.com", "name": "Camille", "role": "agent"}
DEMO_REPLY_FROM = "+33612345678"


def _agents(
    console: Console,
    call: Any,
    channel: dict[str, Any],
    customer_says: Callable[[str], int | None],
) -> bool:
    """A customer answers; the reply is routed to the demo agent, who answers back."""
    agent = call(
        "POST",
        "/v1/users",
        json={**DEMO_AGENT, "languages": ["fr", "en"], "password": "demo-password-1"},
    )
    key = call("POST", "/v1/api-keys", json={"role": "agent", "user_id": agent["id"]})["key"]
    as_agent = {"Authorization": f"Bearer {key}"}
    queue = call("POST", "/v1/queues", json={"name": "Support", "members": [agent["id"]]})
    call("PUT", "/v1/users/me/presence", json={"status": "available"}, headers=as_agent)
    console.print(
        f"agent [cyan]{agent['name']}[/cyan] is available in queue [cyan]{queue['name']}[/cyan]"
        " (the organisation's fallback queue)"
    )
    status = customer_says("Merci ! Quand arrive le colis ?")
    if status != 200:
        console.print(f"[red]the customer's reply was refused[/red] ({status})")
        return False
    console.print(f"the customer {DEMO_REPLY_FROM} answers: “Merci ! Quand arrive le colis ?”")
    conversation: dict[str, Any] = {}
    with console.status("routing the reply…"):
        deadline = time.monotonic() + DEMO_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            mine = call(
                "GET",
                "/v1/conversations",
                params={"assigned_to": "me", "status": "active"},
                headers=as_agent,
            )["data"]
            if mine:
                conversation = mine[0]
                break
            time.sleep(0.2)
    if not conversation:
        console.print("[red]the conversation was not assigned[/red]")
        return False
    console.print(
        f"conversation [cyan]{conversation['id']}[/cyan] assigned to {agent['name']}; answering…"
    )
    answer = call(
        "POST",
        f"/v1/conversations/{conversation['id']}/messages",
        json={"body": "Bonjour, Camille ici : votre colis arrive demain avant midi."},
        headers=as_agent,
    )
    status = answer["status"]
    with console.status("waiting for the answer's delivery report…"):
        deadline = time.monotonic() + DEMO_TIMEOUT_SECONDS
        while status != "delivered" and time.monotonic() < deadline:
            time.sleep(0.2)
            status = call("GET", f"/v1/messages/{answer['message_id']}")["status"]
    thread = call("GET", f"/v1/conversations/{conversation['id']}", headers=as_agent)
    table = Table(title=f"Conversation with {DEMO_REPLY_FROM} ({thread['status']})")
    for column in ("direction", "text", "status"):
        table.add_column(column)
    for entry in thread["messages"]:
        table.add_row(entry["direction"], entry["body"] or "", entry.get("status") or "")
    console.print(table)
    if status != "delivered" or thread["status"] != "waiting":
        console.print(
            f"[red]unexpected conversation outcome[/red]: answer {status}, "
            f"conversation {thread['status']} (expected delivered, waiting)"
        )
        return False
    return True
