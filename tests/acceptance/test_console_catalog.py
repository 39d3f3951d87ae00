"""The console's catalog screens over HTTP: the same rules as the API, roles on the server."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from outbound.app import Container
from outbound.console.routes import auth
from outbound.schemas import UserCreate
from tests.helpers import Setup, Tenant, contact

PASSWORD = "console-password-1"


@pytest.fixture(autouse=True)
def _no_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "FAILED_SIGN_IN_DELAY_SECONDS", 0.0)


def _signed_in(container: Container, tenant: Tenant, client: TestClient, role: str) -> str:
    email = f"{role}@example.com"
    container.users.create(
        tenant.org_id, UserCreate(email=email, name=role, role=role, password=PASSWORD)
    )
    token = _token(client, "/login")
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    return _token(client, "/messages")


def _token(client: TestClient, path: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', client.get(path).text)
    assert match
    return match.group(1)


def _errors(html: str) -> list[str]:
    return re.findall(r'<p class="error"[^>]*>([^<]+)</p>', html)


def test_admin_screens_refuse_other_roles_on_the_server(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    token = _signed_in(container, tenant, client, "supervisor")
    for path in ("/channels", "/channels/new", "/templates", "/configurations/new"):
        assert client.get(path).status_code == 403, path
    posted = client.post(
        "/channels/new",
        data={
            "csrf_token": token,
            "name": "X",
            "type": "sms",
            "provider": "sandbox",
            "sender": "+15005550006",
        },
    )
    assert posted.status_code == 403
    assert container.channels.list(tenant.org_id, None, 10).data == []


def test_channels_are_created_with_their_providers_fields_and_tested(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    token = _signed_in(container, tenant, client, "admin")
    fields = client.get("/channels/new/fields?provider=telesign").text
    assert 'name="cred_customer_id"' in fields and 'name="cred_api_key" type="password"' in fields
    missing = client.post(
        "/channels/new",
        data={
            "csrf_token": token,
            "name": "TS",
            "type": "sms",
            "provider": "telesign",
            "sender": "+15005550006",
            "cred_customer_id": "C1",
        },
    )
    assert missing.status_code == 422
    assert _errors(missing.text) == ["provider &#39;telesign&#39; needs credentials: api_key"]
    assert 'value="TS"' in missing.text  # what was typed is kept
    created = client.post(
        "/channels/new",
        data={
            "csrf_token": token,
            "name": "Sandbox",
            "type": "sms",
            "provider": "sandbox",
            "sender": "+15005550006",
            "rate_per_second": "2",
        },
        follow_redirects=False,
    )
    assert created.status_code == 303
    channel_id = created.headers["location"].split("/")[2].split("?")[0]
    page = client.get(f"/channels/{channel_id}").text
    assert f"http://testserver/webhooks/{channel_id}?token=" in page
    bad = client.post(
        f"/channels/{channel_id}/test", data={"csrf_token": token, "to": "12", "text": "hi"}
    )
    assert bad.status_code == 422 and _errors(bad.text)
    sent = client.post(
        f"/channels/{channel_id}/test",
        data={"csrf_token": token, "to": "06 12 34 56 78", "text": "hi"},
        follow_redirects=False,
    )
    message_id = sent.headers["location"].split("/")[2]
    message = container.tracking.get(tenant.org_id, message_id)
    assert (message.to, message.status, message.reason) == (
        "+33612345678",
        "queued",
        "channel_test",
    )
    # The messages list filters by channel and error code, and keeps the filters in the URL.
    listed = client.get(f"/messages?channel_id={channel_id}&status=queued").text
    assert f'href="/messages/{message_id}"' in listed
    assert f'<option value="{channel_id}" selected>' in listed
    assert "No messages here." in client.get("/messages?error_code=30003").text
    assert "No messages here." in client.get("/messages?channel_id=other").text


def test_templates_preview_and_configurations_keep_window_and_cap(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    token = _signed_in(container, tenant, client, "admin")
    preview = client.post(
        "/templates/preview?field=t", data={"t": "Ça va ? 🙂"}, headers={"X-CSRF-Token": token}
    ).text
    assert 'data-testid="encoding">UCS-2<' in preview and 'data-testid="segments">1<' in preview
    unsent = client.post("/templates/preview?field=t", data={"t": "x"})
    assert unsent.status_code == 403  # no token: refused like any other state change
    template = client.post(
        "/templates/new",
        data={
            "csrf_token": token,
            "name": "T",
            "channel_type": "sms",
            "default_locale": "en",
            "default_text": "Hi {Name}",
            "loc-0-locale": "fr",
            "loc-0-text": "Salut {Nom",
        },
    )
    assert template.status_code == 422
    # Next to the French text: the service's refusal, and the counter's mark.
    assert _errors(template.text) == [
        "malformed template: unclosed placeholder at position 6",
        "Placeholder error at character 7: unclosed placeholder",
    ]
    created = client.post(
        "/templates/new",
        data={
            "csrf_token": token,
            "name": "T",
            "channel_type": "sms",
            "default_locale": "en",
            "default_text": "Hi {Name}",
            "loc-0-locale": "fr",
            "loc-0-text": "Salut {Name}",
        },
        follow_redirects=False,
    )
    template_id = created.headers["location"].split("/")[2].split("?")[0]
    assert container.templates.get(tenant.org_id, template_id).localizations == {
        "fr": "Salut {Name}"
    }
    # The version records the console's user as its author.
    (version,) = container.templates.versions(tenant.org_id, template_id)
    assert version.created_by_key_id == "console"
    assert version.created_by_user_id is not None
    channel = tenant.post(
        "/v1/channels",
        {"name": "S", "type": "sms", "provider": "sandbox", "sender": "+15005550006"},
    ).json()
    form = {
        "csrf_token": token,
        "name": "C",
        "channel_type": "sms",
        "channel_id": channel["id"],
        "template_id": template_id,
        "active": "1",
        "window_enabled": "1",
        "window_start": "09:00",
        "window_end": "18:00",
        "window_days": ["1", "2"],
        "window_time_zone": "Europe/Paris",
        "cap_count": "2",
        "cap_period": "7d",
    }
    created = client.post("/configurations/new", data=form, follow_redirects=False)
    assert created.status_code == 303, _errors(created.text)
    config_id = created.headers["location"].split("/")[2].split("?")[0]
    config = tenant.get(f"/v1/outbound-configurations/{config_id}").json()
    assert config["contact_window"] == {
        "start": "09:00",
        "end": "18:00",
        "days": [1, 2],
        "time_zone": "Europe/Paris",
    }
    assert config["frequency_cap"] == {"count": 2, "period": 604800}
    page = client.get(f"/configurations/{config_id}").text
    assert 'value="7d"' in page and 'id="configuration-id">' + config_id in page
    cleared = {k: v for k, v in form.items() if not k.startswith(("window", "cap"))}
    client.post(f"/configurations/{config_id}", data=cleared)
    config = tenant.get(f"/v1/outbound-configurations/{config_id}").json()
    assert config["contact_window"] is None and config["frequency_cap"] is None
    wrong = client.post(f"/configurations/{config_id}", data={**form, "window_end": "09:00"})
    assert wrong.status_code == 422 and _errors(wrong.text)
    test = client.post(
        f"/configurations/{config_id}/test",
        data={"csrf_token": token, "to": "+33612345678", "locale": "fr", "value_Name": "Ana"},
        follow_redirects=False,
    )
    message = container.tracking.get(tenant.org_id, test.headers["location"].split("/")[2])
    assert message.body == "Salut Ana"
    # A template in use is not deleted; the configuration is named.
    refused = client.post(f"/templates/{template_id}/delete", data={"csrf_token": token})
    assert refused.status_code == 409
    assert f'href="/configurations/{config_id}">C</a>' in refused.text


def test_a_messages_page_shows_its_history_and_its_records_timeline(
    container: Container, tenant: Tenant, setup: Setup, client: TestClient
) -> None:
    _signed_in(container, tenant, client, "agent")  # every role reads messages
    context = {
        "CustomerName": "Ana",
        "CaseName": "CAS-9",
        "regardingobjectid": "CAS-9",
        "entityrelationshipname": "incident_msdyn_ocoutboundmessages",
    }
    sent = tenant.post(
        "/v1/outbound/send",
        {
            "configuration_id": setup.config_id,
            "contacts": [
                contact("+33612345678", contextitems=context),
                contact("+33612345679", contextitems=context),
            ],
        },
    ).json()
    first, second = (r["message_id"] for r in sent["results"])
    page = client.get(f"/messages/{first}").text
    assert "Timeline of CAS-9" in page
    assert f'href="/messages/{second}"' in page
    assert 'hx-trigger="every 1s"' in page  # queued: the page refreshes itself
    assert '<span class="badge status-queued">queued</span>' in page
    assert 'href="/channels/' not in page  # the channel's page is for admins
    assert client.get("/messages/unknown").status_code == 404
