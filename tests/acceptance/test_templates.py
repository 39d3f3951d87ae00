"""Message templates: placeholders, validation, locales, previews and protection while in use."""

from __future__ import annotations

from typing import Any

from outbound.schemas import Role
from tests.helpers import Setup, Tenant, assert_error


def template_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Welcome",
        "channel_type": "sms",
        "default_locale": "en-US",
        "default_text": "Hello {CustomerName}, your case {CaseName} is open.",
        "localizations": {"fr-FR": "Bonjour {CustomerName}, votre dossier {CaseName} est ouvert."},
    }
    body.update(overrides)
    return body


def _create(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    response = tenant.post("/v1/templates", template_body(**overrides))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _preview(tenant: Tenant, template_id: str, **body: Any) -> Any:
    return tenant.post(f"/v1/templates/{template_id}/preview", body)


# --- create and read ------------------------------------------------------------------------


def test_create_get_list_template(tenant: Tenant, other_tenant: Tenant) -> None:
    created = _create(
        tenant,
        default_text="{Greeting} {CustomerName}, case {CaseName}; {CustomerName} again.",
        localizations={"fr-FR": "Bonjour {CustomerName}, dossier {CaseName}, réf. {Ref}."},
    )
    assert created["name"] == "Welcome"
    assert created["channel_type"] == "sms"
    assert created["default_locale"] == "en-US"
    assert created["placeholders"] == ["Greeting", "CustomerName", "CaseName", "Ref"]
    assert created["content_sid"] is None
    assert len(created["id"]) == 36
    assert tenant.get(f"/v1/templates/{created['id']}").json() == created
    listed = tenant.get("/v1/templates").json()
    assert listed == {"data": [created], "next_cursor": None}
    created_first = created

    created = _create(
        tenant, name="WhatsApp", channel_type="whatsapp", content_sid="HX0123456789abcdef"
    )
    assert created["channel_type"] == "whatsapp"
    assert created["content_sid"] == "HX0123456789abcdef"
    patched = tenant.patch(f"/v1/templates/{created['id']}", {"content_sid": None}).json()
    assert patched["content_sid"] is None

    first = created_first
    assert_error(tenant.post("/v1/templates", template_body()), 409, "duplicate_name", "name")
    # Names are per organisation.
    assert other_tenant.post("/v1/templates", template_body()).status_code == 201
    second = _create(tenant, name="Other")
    renamed = tenant.patch(f"/v1/templates/{second['id']}", {"name": "Welcome"})
    assert_error(renamed, 409, "duplicate_name", "name")
    # Keeping one's own name is not a conflict.
    same = tenant.patch(f"/v1/templates/{first['id']}", {"name": "Welcome"})
    assert same.status_code == 200, same.text
    names = sorted(t["name"] for t in tenant.get("/v1/templates").json()["data"])
    assert names == ["Other", "Welcome", "WhatsApp"]


def test_preview_values(tenant: Tenant) -> None:
    created = _create(
        tenant,
        default_text="Use {{code}} or }}{{ for {Name}: {{{Name}}}",
        localizations={},
    )
    assert created["placeholders"] == ["Name"]
    assert created["default_text"] == "Use {{code}} or }}{{ for {Name}: {{{Name}}}"
    preview = _preview(tenant, created["id"], values={"Name": "Ana"})
    assert preview.status_code == 200, preview.text
    assert preview.json()["text"] == "Use {code} or }{ for Ana: {Ana}"
    # '{' and '}' are GSM-7 extension characters: 2 septets each.
    assert preview.json()["encoding"] == "GSM-7"
    assert preview.json()["units"] == len("Use {code} or }{ for Ana: {Ana}") + 6

    template_id = _create(tenant, name="Plain", localizations={})["id"]
    response = _preview(
        tenant, template_id, values={"CustomerName": "{CaseName}", "CaseName": "{{x}}", "Extra": 1}
    )
    assert response.status_code == 200, response.text
    assert response.json()["text"] == "Hello {CaseName}, your case {{x}} is open."
    numbers = _preview(tenant, template_id, values={"CustomerName": 42, "CaseName": 1.5})
    assert numbers.json()["text"] == "Hello 42, your case 1.5 is open."

    template_id = _create(tenant, name="Bilingual")["id"]
    error = assert_error(
        _preview(tenant, template_id, values={"CustomerName": "Ana"}),
        422,
        "missing_placeholder",
        "values.CaseName",
    )
    assert "CaseName" in error["message"]
    assert_error(
        _preview(
            tenant, template_id, locale="fr-FR", values={"CaseName": "C", "CustomerName": None}
        ),
        422,
        "missing_placeholder",
        "values.CustomerName",
    )
    assert_error(
        _preview(tenant, template_id, values={"CustomerName": {"nested": 1}}),
        422,
        "invalid_request",
        "values.CustomerName",
    )
    assert_error(
        tenant.post(
            f"/v1/templates/{template_id}/preview",
            {"values": {}},
            Role.AGENT,
        ),
        403,
        "forbidden",
    )


def test_malformed_text_is_422_with_position(tenant: Tenant) -> None:
    cases = [
        ("Hi {Name", 3),
        ("Hi } there", 3),
        ("Hi {} there", 3),
        ("Hi {first name}", 9),
        ("Hi {1st}", 4),
        ("Hi {Na{me}}", 6),
        ("Hi {Name!}", 8),
        ("{Name} and {", 11),
    ]
    for text, position in cases:
        error = assert_error(
            tenant.post("/v1/templates", template_body(default_text=text)),
            422,
            "invalid_template",
            "default_text",
        )
        assert error["position"] == position, (text, error)
        assert f"position {position}" in error["message"]
    assert tenant.get("/v1/templates").json()["data"] == []

    body = template_body(localizations={"de-DE": "Hallo {Name}", "fr-FR": "Bonjour {Nom"})
    error = assert_error(
        tenant.post("/v1/templates", body), 422, "invalid_template", "localizations.fr-FR"
    )
    assert error["position"] == 8
    created = _create(tenant)
    patched = tenant.patch(
        f"/v1/templates/{created['id']}", {"localizations": {"fr-FR": "Bonjour }"}}
    )
    error = assert_error(patched, 422, "invalid_template", "localizations.fr-FR")
    assert error["position"] == 8
    patched = tenant.patch(f"/v1/templates/{created['id']}", {"default_text": "{"})
    assert assert_error(patched, 422, "invalid_template", "default_text")["position"] == 0
    assert tenant.get(f"/v1/templates/{created['id']}").json() == created


def test_text_length_limits(tenant: Tenant) -> None:
    at_limit = _create(tenant, name="Long", default_text="a" * 2000, localizations={})
    assert len(at_limit["default_text"]) == 2000
    assert_error(
        tenant.post("/v1/templates", template_body(name="Too long", default_text="a" * 2001)),
        422,
        "invalid_request",
        "default_text",
    )
    fr_ok = _create(tenant, name="Fr long", localizations={"fr-FR": "b" * 1000})
    assert len(fr_ok["localizations"]["fr-FR"]) == 1000
    error = assert_error(
        tenant.post(
            "/v1/templates", template_body(name="Fr too long", localizations={"fr-FR": "b" * 1001})
        ),
        422,
        "invalid_request",
        "localizations.fr-FR",
    )
    assert "1000" in error["message"]
    # The same limits apply when patching.
    assert_error(
        tenant.patch(f"/v1/templates/{fr_ok['id']}", {"default_text": "a" * 2001}),
        422,
        "invalid_request",
        "default_text",
    )
    assert_error(
        tenant.patch(f"/v1/templates/{fr_ok['id']}", {"localizations": {"de-DE": "c" * 1001}}),
        422,
        "invalid_request",
        "localizations.de-DE",
    )
    assert_error(
        tenant.post("/v1/templates", template_body(name="Empty", default_text="")),
        422,
        "invalid_request",
        "default_text",
    )
    assert_error(
        tenant.post("/v1/templates", template_body(name="Blank fr", localizations={"fr-FR": " "})),
        422,
        "invalid_request",
        "localizations.fr-FR",
    )


def test_locales_are_normalised_or_refused(tenant: Tenant) -> None:
    for locale in ("xx-YY", "english", "fr-FR-u-ca-gregory", "99999", "fr-ZZ", "123"):
        assert_error(
            tenant.post("/v1/templates", template_body(default_locale=locale)),
            422,
            "invalid_request",
            "default_locale",
        )
    assert_error(
        tenant.post("/v1/templates", template_body(localizations={"klingon": "Qapla'"})),
        422,
        "invalid_request",
        "localizations.klingon",
    )
    twice = template_body(localizations={"fr-FR": "Bonjour", "fr_fr": "Salut"})
    error = assert_error(
        tenant.post("/v1/templates", twice), 422, "invalid_request", "localizations.fr_fr"
    )
    assert "fr-FR" in error["message"]
    assert tenant.get("/v1/templates").json()["data"] == []

    created = _create(
        tenant,
        default_locale="EN_us",
        localizations={"fr_fr": "Bonjour {CustomerName}", "DE-de": "Hallo", "pt-br": "Olá"},
    )
    assert created["default_locale"] == "en-US"
    assert set(created["localizations"]) == {"fr-FR", "de-DE", "pt-BR"}
    assert created["localizations"]["fr-FR"] == "Bonjour {CustomerName}"
    patched = tenant.patch(
        f"/v1/templates/{created['id']}", {"default_locale": "1036", "localizations": {}}
    ).json()
    assert patched["default_locale"] == "fr-FR"
    assert patched["localizations"] == {}


def test_patch_template(tenant: Tenant, clock: Any) -> None:
    created = _create(tenant)
    clock.advance(10)
    response = tenant.patch(
        f"/v1/templates/{created['id']}",
        {"default_text": "Hi {FirstName}", "localizations": {"es-ES": "Hola {FirstName}"}},
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["default_text"] == "Hi {FirstName}"
    assert patched["localizations"] == {"es-ES": "Hola {FirstName}"}
    assert patched["placeholders"] == ["FirstName"]
    assert patched["name"] == "Welcome"
    assert patched["created_at"] == created["created_at"]
    assert patched["updated_at"] > created["updated_at"]
    assert patched.pop("dry_run") is False
    assert patched.pop("warnings") == []
    assert patched["version"] == created["version"] + 1
    assert tenant.get(f"/v1/templates/{created['id']}").json() == patched
    assert_error(
        tenant.patch(f"/v1/templates/{created['id']}", {"channel_type": "whatsapp"}),
        422,
        "invalid_request",
        "channel_type",
    )


# --- preview --------------------------------------------------------------------------------


def test_preview_picks_the_language(tenant: Tenant) -> None:
    template_id = _create(tenant)["id"]
    values = {"CustomerName": "Ana", "CaseName": "CAS-01"}
    french = "Bonjour Ana, votre dossier CAS-01 est ouvert."
    expected = {
        "fr-FR": ("fr-FR", "exact", french),
        "fr_fr": ("fr-FR", "exact", french),
        1036: ("fr-FR", "exact", french),
        "1036": ("fr-FR", "exact", french),
        "fr-CA": ("fr-FR", "language", french),
        3084: ("fr-FR", "language", french),  # fr-CA as a Windows LCID
        "en-GB": ("en-US", "language", "Hello Ana, your case CAS-01 is open."),
        "de-DE": ("en-US", "template_default", "Hello Ana, your case CAS-01 is open."),
        None: ("en-US", "template_default", "Hello Ana, your case CAS-01 is open."),
    }
    for locale, (chosen, match, text) in expected.items():
        response = _preview(tenant, template_id, locale=locale, values=values)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["locale"], body["match"], body["text"]) == (chosen, match, text), locale
        assert body["encoding"] == "GSM-7"
        assert body["segments"] == 1
        assert body["characters"] == len(text)
    for bad in ("xx-YY", 99999, True, [1036]):
        assert_error(
            _preview(tenant, template_id, locale=bad, values=values),
            422,
            "invalid_request",
            "locale",
        )


def test_preview_counts_segments(tenant: Tenant) -> None:
    template_id = _create(tenant, default_text="{Body}", localizations={})["id"]
    cases = [
        ("a" * 160, "GSM-7", 1, 160),
        ("a" * 161, "GSM-7", 2, 161),
        ("a" * 159 + "€", "GSM-7", 2, 161),  # € is an extension character: 2 septets
        ("a" * 158 + "€", "GSM-7", 1, 160),
        ("[" * 80, "GSM-7", 1, 160),
        ("a" * 306, "GSM-7", 2, 306),
        ("a" * 307, "GSM-7", 3, 307),
        ("é" * 160, "GSM-7", 1, 160),  # é is in the basic GSM alphabet
        ("ł" * 70, "UCS-2", 1, 70),
        ("ł" * 71, "UCS-2", 2, 71),
        ("a" * 69 + "😀", "UCS-2", 2, 71),  # a surrogate pair: 2 code units
        ("Ça va? 你好", "UCS-2", 1, 9),
    ]
    for body, encoding, segments, units in cases:
        response = _preview(tenant, template_id, values={"Body": body})
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["text"] == body
        assert (result["encoding"], result["segments"], result["units"]) == (
            encoding,
            segments,
            units,
        ), body
        assert result["characters"] == len(body)


# --- delete ---------------------------------------------------------------------------------


def test_delete_template_unless_in_use(tenant: Tenant, setup: Setup) -> None:
    template_id = setup.template["id"]
    second = tenant.post(
        "/v1/outbound-configurations",
        {
            "name": "Another use",
            "channel_type": "sms",
            "channel_id": setup.channel["id"],
            "template_id": template_id,
        },
    )
    assert second.status_code == 201, second.text
    error = assert_error(tenant.delete(f"/v1/templates/{template_id}"), 409, "template_in_use")
    assert "Case updates" in error["message"] and setup.config_id in error["message"]
    assert "Another use" in error["message"] and second.json()["id"] in error["message"]
    assert sorted(error["configurations"], key=lambda c: c["name"]) == [
        {"id": second.json()["id"], "name": "Another use"},
        {"id": setup.config_id, "name": "Case updates"},
    ]
    assert tenant.get(f"/v1/templates/{template_id}").status_code == 200

    tenant.delete(f"/v1/outbound-configurations/{second.json()['id']}")
    error = assert_error(tenant.delete(f"/v1/templates/{template_id}"), 409, "template_in_use")
    assert error["configurations"] == [{"id": setup.config_id, "name": "Case updates"}]
    tenant.delete(f"/v1/outbound-configurations/{setup.config_id}")
    assert tenant.delete(f"/v1/templates/{template_id}").status_code == 204

    created = _create(tenant)
    assert tenant.delete(f"/v1/templates/{created['id']}").status_code == 204
    assert_error(tenant.get(f"/v1/templates/{created['id']}"), 404, "not_found")
    assert_error(tenant.delete(f"/v1/templates/{created['id']}"), 404, "not_found")
    # The name is free again.
    assert tenant.post("/v1/templates", template_body()).status_code == 201
