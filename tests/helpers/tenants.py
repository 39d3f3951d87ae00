"""Acting as an organisation through the HTTP API: its keys, a ready catalog, a contact item."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

from outbound.app import Container
from outbound.domain.roles import Role
from outbound.services.auth import create_api_key, create_organization

__all__ = ["Setup", "Tenant", "contact", "make_setup", "make_tenant"]


@dataclass
class Tenant:
    """An organisation with one key per role, and an HTTP client to act as each."""

    client: TestClient
    org_id: str
    keys: dict[Role, str] = field(default_factory=dict)

    def headers(self, role: Role = Role.ADMIN, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}", **extra}

    def request(self, method: str, path: str, role: Role = Role.ADMIN, **kwargs: Any) -> Any:
        headers = {**self.headers(role), **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def post(self, path: str, json: Any = None, role: Role = Role.ADMIN, **kw: Any) -> Any:
        return self.request("POST", path, role, json=json, **kw)

    def get(self, path: str, role: Role = Role.ADMIN, **kw: Any) -> Any:
        return self.request("GET", path, role, **kw)

    def patch(self, path: str, json: Any = None, role: Role = Role.ADMIN, **kw: Any) -> Any:
        return self.request("PATCH", path, role, json=json, **kw)

    def put(self, path: str, json: Any = None, role: Role = Role.ADMIN, **kw: Any) -> Any:
        return self.request("PUT", path, role, json=json, **kw)

    def delete(self, path: str, role: Role = Role.ADMIN, **kw: Any) -> Any:
        return self.request("DELETE", path, role, **kw)


def make_tenant(container: Container, client: TestClient, name: str = "Acme") -> Tenant:
    """A new organisation named ``name``, with a key for every role."""
    org = create_organization(container.db, container.clock, name)
    tenant = Tenant(client=client, org_id=org.id)
    for role in Role:
        _key, secret = create_api_key(container.db, container.clock, org.id, role)
        tenant.keys[role] = secret
    return tenant


@dataclass
class Setup:
    """A ready sms channel, an en-US/fr-FR template and an active configuration."""

    channel: dict[str, Any]
    template: dict[str, Any]
    configuration: dict[str, Any]

    @property
    def config_id(self) -> str:
        return str(self.configuration["id"])


def make_setup(tenant: Tenant, *, show_in_timeline: bool = True) -> Setup:
    """The tenant's sandbox sms channel, template and configuration, made through the API."""
    channel = tenant.post(
        "/v1/channels",
        {"name": "SMS", "type": "sms", "provider": "sandbox", "sender": "+15005550006"},
    )
    assert channel.status_code == 201, channel.text
    template = tenant.post(
        "/v1/templates",
        {
            "name": "Case update",
            "channel_type": "sms",
            "default_locale": "en-US",
            "default_text": "Hi {CustomerName}, case {CaseName} was updated.",
            "localizations": {"fr-FR": "Bonjour {CustomerName}, dossier {CaseName} mis à jour."},
        },
    )
    assert template.status_code == 201, template.text
    config = tenant.post(
        "/v1/outbound-configurations",
        {
            "name": "Case updates",
            "channel_type": "sms",
            "channel_id": channel.json()["id"],
            "template_id": template.json()["id"],
            "default_locale": "en-US",
            "show_in_timeline": show_in_timeline,
        },
    )
    assert config.status_code == 201, config.text
    return Setup(channel.json(), template.json(), config.json())


def contact(number: str = "+33612345678", **overrides: Any) -> dict[str, Any]:
    """A send request's contact item with consent and the template's placeholders filled."""
    item: dict[str, Any] = {
        "tocontactid": number,
        "optin": True,
        "contextitems": {"CustomerName": "Ana", "CaseName": "CAS-1"},
    }
    item.update(overrides)
    return item


def queue_messages(tenant: Tenant, config_id: str, numbers: list[str]) -> list[str]:
    """Send one request with a contact per number (202 expected); its messages' ids, in order."""
    response = tenant.post(
        "/v1/outbound/send",
        {"configuration_id": config_id, "contacts": [contact(n) for n in numbers]},
    )
    assert response.status_code == 202, response.text
    return [r["message_id"] for r in response.json()["results"]]
