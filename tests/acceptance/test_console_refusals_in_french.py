"""The services' refusals in the console are said in the reader's language, on both
databases: the same forms posted by an English and a French admin give the same errors, the
French ones in French (the API still answers in English)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from outbound.app import Container
from outbound.console.routes import auth
from outbound.schemas import UserCreate
from tests.helpers import Tenant

PASSWORD = "console-password-1"
BAD_FLOW = """\
name: reminder
configuration: Nowhere
trigger:
  type: sometimes
source:
  records: contacts
"""
FORMS = {
    "a template's unclosed placeholder": (
        "/templates/new",
        "/templates/new",
        {
            "name": "Reminder",
            "channel_type": "sms",
            "default_locale": "en-US",
            "default_text": "Hello {CustomerName",
        },
    ),
    "a user's email taken": (
        "/users",
        "/users",
        {"email": "en@example.com", "name": "Again", "role": "agent"},
    ),
    "a flow's faults": ("/flows/new", "/flows/new", {"source": BAD_FLOW}),
    "a channel's sender that is no number": (
        "/channels/new",
        "/channels/new?type=sms&provider=sandbox",
        {"name": "SMS", "type": "sms", "provider": "sandbox", "sender": "12"},
    ),
}
ENGLISH = re.compile(
    r"\b(the|is|are|must|should|not|this|that|cannot|already|with|has|have|another|of|at|"
    r"and|be|one|user|number|placeholder)\b"
)
"""Words of the English refusals that no French sentence has."""
ERRORS = re.compile(
    r'<p class="error" id="e-[^"]+">(.*?)</p>'
    r'|<div class="alert error" role="alert">(?!\s*<p>)(.*?)</div>'
    r"|<li>(?:<a [^>]*>[^<]*</a> · )?<code>[^<]*</code>: (.*?)</li>",
    re.S,
)


@pytest.fixture(autouse=True)
def _no_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "FAILED_SIGN_IN_DELAY_SECONDS", 0.0)


def _token(client: TestClient, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match, path
    return match.group(1)


def _admin(container: Container, tenant: Tenant, client: TestClient, language: str) -> None:
    email = f"{language}@example.com"
    container.users.create(
        tenant.org_id,
        UserCreate(
            email=email, name=language, role="admin", password=PASSWORD, ui_language=language
        ),
    )
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": _token(client, "/login")},
        follow_redirects=False,
    )
    assert response.status_code == 303


def _errors(client: TestClient, form_page: str, action: str, data: dict[str, str]) -> list[str]:
    page = client.post(action, data={**data, "csrf_token": _token(client, form_page)})
    assert page.status_code in (409, 422), page.text
    found = ["".join(groups).strip() for groups in ERRORS.findall(page.text)]
    return [re.sub(r"\s+", " ", text) for text in found if text]


def _import_errors(client: TestClient) -> list[str]:
    csv = "external_id,name,mobile_phone,consent_sms\nC1,Ana,12,yes\nC2,Bo,+33612345678,maybe\n"
    page = client.post(
        "/contacts/import",
        data={"csrf_token": _token(client, "/contacts"), "dry_run": "1"},
        files={"file": ("contacts.csv", csv.encode(), "text/csv")},
    )
    assert page.status_code == 200, page.text
    cells = re.findall(r'<td class="mono">[^<]*</td><td>(.*?)</td>', page.text, re.S)
    return [re.sub(r"\s+", " ", cell).strip() for cell in cells]


def test_an_imports_refused_rows_are_said_in_french(
    container: Container, tenant: Tenant, client: TestClient
) -> None:
    _admin(container, tenant, client, "en")
    english = _import_errors(client)
    with TestClient(client.app) as other:
        _admin(container, tenant, other, "fr")
        french = _import_errors(other)
    assert len(english) == len(french) == 2, (english, french)
    for said_in_english, said_in_french in zip(english, french, strict=True):
        assert said_in_french != said_in_english
        assert ENGLISH.findall(said_in_french) == [], (said_in_english, said_in_french)


@pytest.mark.parametrize("case", list(FORMS))
def test_a_refusal_is_said_in_french_to_a_french_admin(
    container: Container, tenant: Tenant, client: TestClient, case: str
) -> None:
    form_page, action, data = FORMS[case]
    _admin(container, tenant, client, "en")
    english = _errors(client, form_page, action, data)
    with TestClient(client.app) as other:
        _admin(container, tenant, other, "fr")
        french = _errors(other, form_page, action, data)
    assert english and len(french) == len(english), (english, french)
    for said_in_english, said_in_french in zip(english, french, strict=True):
        assert said_in_french != said_in_english, (english, french)
        # No English is left in the French sentence (names and values it quotes may be).
        english_words = ENGLISH.findall(said_in_french)
        assert english_words == [], (said_in_english, said_in_french)
