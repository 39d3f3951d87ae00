"""Template versions, the warning of a new placeholder, language fallbacks and their preview."""

from __future__ import annotations

from typing import Any

from outbound.schemas import Role
from tests.helpers import Setup, Tenant, assert_error, contact

YAML = {"Content-Type": "application/yaml"}


def _send(tenant: Tenant, config_id: str, *contacts: dict[str, Any]) -> list[dict[str, Any]]:
    response = tenant.post(
        "/v1/outbound/send",
        {"configuration_id": config_id, "contacts": list(contacts)},
        role=Role.SENDER,
    )
    assert response.status_code == 202, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def _message(tenant: Tenant, message_id: str) -> dict[str, Any]:
    result: dict[str, Any] = tenant.get(f"/v1/messages/{message_id}").json()
    return result


# --- versions ---------------------------------------------------------------------------------


def test_every_change_makes_a_version_and_messages_record_theirs(
    tenant: Tenant, setup: Setup
) -> None:
    template_id = setup.template["id"]
    assert setup.template["version"] == 1
    (first,) = _send(tenant, setup.config_id, contact())
    assert _message(tenant, first["message_id"])["template_version"] == 1

    text = "Hi {CustomerName}, case {CaseName} changed."
    changed = tenant.patch(f"/v1/templates/{template_id}", {"default_text": text})
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    renamed = tenant.patch(f"/v1/templates/{template_id}", {"name": "Case changed"}).json()
    assert renamed["version"] == 3
    # Saving what is already there changes nothing and makes no version.
    same = tenant.patch(f"/v1/templates/{template_id}", {"name": "Case changed"}).json()
    assert same["version"] == 3

    (second,) = _send(tenant, setup.config_id, contact())
    message = _message(tenant, second["message_id"])
    assert (message["template_version"], message["body"]) == (3, "Hi Ana, case CAS-1 changed.")
    assert _message(tenant, first["message_id"])["template_version"] == 1

    response = tenant.get(f"/v1/templates/{template_id}/versions", role=Role.SENDER)
    assert response.status_code == 200, response.text
    versions = response.json()["data"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert [v["name"] for v in versions] == ["Case changed", "Case update", "Case update"]
    assert versions[1]["default_text"] == text
    assert versions[2]["default_text"] == setup.template["default_text"]
    assert versions[2]["localizations"] == setup.template["localizations"]
    assert versions[0]["placeholders"] == ["CustomerName", "CaseName"]
    assert all(v["created_by_key_id"] for v in versions)
    assert all(v["created_by_user_id"] is None for v in versions)
    assert versions[0]["created_at"] >= versions[2]["created_at"]


def test_versions_of_another_organisation_are_unknown(
    tenant: Tenant, other_tenant: Tenant, setup: Setup
) -> None:
    response = other_tenant.get(f"/v1/templates/{setup.template['id']}/versions")
    assert response.status_code == 404


def test_a_template_with_versions_can_be_deleted(tenant: Tenant) -> None:
    template = tenant.post(
        "/v1/templates",
        {"name": "gone", "channel_type": "sms", "default_locale": "en", "default_text": "x"},
    ).json()
    tenant.patch(f"/v1/templates/{template['id']}", {"default_text": "y"})
    assert tenant.delete(f"/v1/templates/{template['id']}").status_code == 204
    assert tenant.get(f"/v1/templates/{template['id']}/versions").status_code == 404


# --- a new placeholder ------------------------------------------------------------------------


def _flow(tenant: Tenant, name: str, configuration: str, extra: str = "") -> str:
    document = (
        f"name: {name}\nconfiguration: {configuration}\ntrigger: {{type: instant}}\n"
        f"source: {{records: cases}}\n{extra}"
    )
    response = tenant.post("/v1/flows", content=document.encode(), headers=YAML)
    assert response.status_code in (200, 201), response.text
    return str(response.json()["id"])


def test_a_new_placeholder_warns_of_the_configurations_and_flows_it_breaks(
    tenant: Tenant, setup: Setup
) -> None:
    template_id = setup.template["id"]
    blind = _flow(tenant, "blind", "Case updates")
    _flow(
        tenant, "fills-it", "Case updates", "recipient:\n  contextitems: {ref: '{case.number}'}\n"
    )
    text = "Hi {CustomerName}, case {CaseName} ({Ref}) was updated."

    dry = tenant.patch(f"/v1/templates/{template_id}?dry_run=true", {"default_text": text})
    assert dry.status_code == 200, dry.text
    preview = dry.json()
    assert preview["dry_run"] is True
    assert preview["default_text"] == text
    assert preview["version"] == 2
    assert preview["placeholders"] == ["CustomerName", "CaseName", "Ref"]
    (warning,) = preview["warnings"]
    assert warning["code"] == "new_placeholder"
    assert warning["placeholders"] == ["Ref"]
    assert warning["configurations"] == [{"id": setup.config_id, "name": "Case updates"}]
    assert warning["flows"] == [{"id": blind, "name": "blind"}]
    assert "{Ref}" in warning["message"]
    # Nothing was saved.
    stored = tenant.get(f"/v1/templates/{template_id}").json()
    assert (stored["version"], stored["default_text"]) == (1, setup.template["default_text"])
    assert len(tenant.get(f"/v1/templates/{template_id}/versions").json()["data"]) == 1
    (still,) = _send(tenant, setup.config_id, contact())
    assert still["status"] == "queued"

    saved = tenant.patch(f"/v1/templates/{template_id}", {"default_text": text}).json()
    assert saved["dry_run"] is False
    assert saved["version"] == 2
    assert saved["warnings"] == preview["warnings"]
    (rejected,) = _send(tenant, setup.config_id, contact())
    assert (rejected["status"], rejected["reason"]) == ("rejected", "missing_placeholder: Ref")

    # Changing a text without a new placeholder warns of nothing.
    again = tenant.patch(f"/v1/templates/{template_id}", {"default_text": text + " Bye."})
    assert again.json()["warnings"] == []


def test_a_new_placeholder_of_an_unused_template_warns_of_nothing(tenant: Tenant) -> None:
    template = tenant.post(
        "/v1/templates",
        {"name": "unused", "channel_type": "sms", "default_locale": "en", "default_text": "x"},
    ).json()
    response = tenant.patch(f"/v1/templates/{template['id']}", {"default_text": "{X}"})
    assert response.json()["warnings"] == []


def test_dry_run_still_validates(tenant: Tenant, setup: Setup) -> None:
    response = tenant.patch(
        f"/v1/templates/{setup.template['id']}?dry_run=true", {"default_text": "{"}
    )
    assert_error(response, 422, "invalid_template", "default_text")


# --- language fallbacks -------------------------------------------------------------------------

FRENCH = {
    "fr-CA": "Bonjour {CustomerName} (CA)",
    "fr-FR": "Bonjour {CustomerName} (FR)",
    "pt-PT": "Olá {CustomerName} (PT)",
    "pt-BR": "Olá {CustomerName} (BR)",
}


def _regional(tenant: Tenant, **extra: Any) -> dict[str, Any]:
    response = tenant.post(
        "/v1/templates",
        {
            "name": "regional",
            "channel_type": "sms",
            "default_locale": "en-GB",
            "default_text": "Hello {CustomerName} (GB)",
            "localizations": FRENCH,
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def test_sends_choose_the_likely_region_of_a_language(tenant: Tenant, setup: Setup) -> None:
    template = _regional(tenant)
    config = tenant.post(
        "/v1/outbound-configurations",
        {
            "name": "regional",
            "channel_type": "sms",
            "channel_id": setup.channel["id"],
            "template_id": template["id"],
        },
    ).json()
    locales = ["fr", "fr-BE", "fr-CH", "fr-CA", "pt", "pt-AO", "en", "en-US"]
    results = _send(tenant, config["id"], *(contact(locale=locale) for locale in locales))
    chosen = [r["locale"] for r in results]
    assert chosen == ["fr-FR", "fr-FR", "fr-FR", "fr-CA", "pt-BR", "pt-PT", "en-GB", "en-GB"]
    body = _message(tenant, results[1]["message_id"])["body"]
    assert body == "Bonjour Ana (FR)"


def test_a_template_names_its_own_fallbacks(tenant: Tenant) -> None:
    template = _regional(tenant, fallbacks={"fr_be": "fr-ca", "it": "fr-FR"})
    assert template["fallbacks"] == {"fr-BE": "fr-CA", "it": "fr-FR"}
    preview = tenant.post(
        f"/v1/templates/{template['id']}/preview",
        {"locale": "fr-BE", "values": {"CustomerName": "Ana"}},
    ).json()
    assert (preview["locale"], preview["match"], preview["text"]) == (
        "fr-CA",
        "fallback",
        "Bonjour Ana (CA)",
    )
    choices = {c["requested"]: (c["locale"], c["match"]) for c in preview["choices"]}
    assert choices == {
        "fr-BE": ("fr-CA", "fallback"),
        "en-GB": ("en-GB", "exact"),
        "fr-CA": ("fr-CA", "exact"),
        "fr-FR": ("fr-FR", "exact"),
        "pt-PT": ("pt-PT", "exact"),
        "pt-BR": ("pt-BR", "exact"),
        "en": ("en-GB", "language"),
        "fr": ("fr-FR", "language"),
        "pt": ("pt-BR", "language"),
        "it": ("fr-FR", "fallback"),
    }
    asked = tenant.post(
        f"/v1/templates/{template['id']}/preview",
        {"values": {"CustomerName": "Ana"}, "locales": ["fr-CH", 1046, "de-DE"]},
    ).json()
    assert [(c["requested"], c["locale"], c["match"]) for c in asked["choices"]] == [
        ("fr-CH", "fr-FR", "language"),
        ("pt-BR", "pt-BR", "exact"),
        ("de-DE", "en-GB", "template_default"),
    ]
    # Replacing the fallbacks makes a version.
    patched = tenant.patch(f"/v1/templates/{template['id']}", {"fallbacks": {}}).json()
    assert (patched["fallbacks"], patched["version"]) == ({}, 2)


def test_fallbacks_and_content_sids_are_checked(tenant: Tenant) -> None:
    def refused(field: str, **extra: Any) -> None:
        body = {
            "name": "checked",
            "channel_type": "whatsapp",
            "default_locale": "en-GB",
            "default_text": "Hello",
            "localizations": {"fr-FR": "Bonjour"},
            **extra,
        }
        assert_error(tenant.post("/v1/templates", body), 422, "invalid_request", field)

    refused("fallbacks.fr-BE", fallbacks={"fr-BE": "fr-CA"})  # no fr-CA text
    refused("fallbacks.fr-FR", fallbacks={"fr-FR": "en-GB"})  # fr-FR has its own text
    refused("fallbacks.xx-YY", fallbacks={"xx-YY": "fr-FR"})
    refused("content_sids.de-DE", content_sids={"de-DE": "HX" + "a" * 32})
    refused("content_sids.en-GB", content_sids={"en-GB": "HX" + "a" * 32})
    template = tenant.post(
        "/v1/templates",
        {
            "name": "checked",
            "channel_type": "whatsapp",
            "default_locale": "en-GB",
            "default_text": "Hello",
            "localizations": {"fr-FR": "Bonjour"},
            "content_sids": {"fr_fr": "HX" + "b" * 32},
        },
    )
    assert template.status_code == 201, template.text
    assert template.json()["content_sids"] == {"fr-FR": "HX" + "b" * 32}
    # Removing the French text while its Content SID stays is refused.
    response = tenant.patch(f"/v1/templates/{template.json()['id']}", {"localizations": {}})
    assert_error(response, 422, "invalid_request", "content_sids.fr-FR")
