"""``outbound admin create-user``, ``create-key --user``, ``list-keys`` and ``revoke-key``."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from outbound.app import Container
from outbound.cli.main import app
from outbound.config import Settings
from outbound.schemas import Role
from outbound.services.auth import create_organization
from tests.acceptance.test_auth_and_tenancy import assert_error
from tests.acceptance.test_users import as_key, make_user
from tests.helpers import SECRET, Tenant

PASSWORD = " a long pass phrase "


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTBOUND_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("OUTBOUND_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("OUTBOUND_SECRET_KEY", SECRET)
    monkeypatch.setenv("COLUMNS", "250")  # the keys' table on one line each


def admin(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, ["admin", *args], input=input)


def test_create_user_reads_the_password_from_stdin(
    tenant: Tenant, container: Container, cli_env: None
) -> None:
    created = admin(
        "create-user",
        "--org",
        tenant.org_id,
        "--email",
        "Ana@Example.com",
        "--role",
        "supervisor",
        "--name",
        "Ana López",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert created.exit_code == 0, created.output
    user_id = created.stdout.strip()
    assert PASSWORD.strip() not in created.output
    user = tenant.get(f"/v1/users/{user_id}").json()
    assert (user["email"], user["name"], user["role"], user["has_password"]) == (
        "ana@example.com",
        "Ana López",
        "supervisor",
        True,
    )
    # The line is the password, spaces included.
    assert container.users.verify_password(tenant.org_id, "ana@example.com", PASSWORD)
    assert not container.users.verify_password(tenant.org_id, "ana@example.com", PASSWORD.strip())

    # Without --name, the name is the address's local part.
    bob = admin(
        "create-user", "--org", tenant.org_id, "--email", "bob@example.com", "--role", "agent",
        "--password-stdin", input="0123456789\n",
    )  # fmt: skip
    assert bob.exit_code == 0, bob.output
    assert tenant.get(f"/v1/users/{bob.stdout.strip()}").json()["name"] == "bob"


def test_create_user_asks_for_the_password_twice_without_echo(
    tenant: Tenant, container: Container, cli_env: None
) -> None:
    typed = "typed in twice!"
    created = admin(
        "create-user", "--org", tenant.org_id, "--email", "ana@example.com", "--role", "agent",
        input=f"{typed}\n{typed}\n",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert "Password" in created.output and "Repeat for confirmation" in created.output
    assert typed not in created.output
    assert container.users.verify_password(tenant.org_id, "ana@example.com", typed)

    mismatch = admin(
        "create-user", "--org", tenant.org_id, "--email", "bob@example.com", "--role", "agent",
        input="first one here\nsecond one here\n",
    )  # fmt: skip
    assert mismatch.exit_code != 0
    assert "do not match" in mismatch.output
    assert len(tenant.get("/v1/users").json()["data"]) == 1


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (["--email", "not an address", "--role", "agent"], "0123456789\n", "--email"),
        (["--email", "ana@example.com", "--role", "agent"], "short\n", "password: must be"),
        (["--email", "ana@example.com", "--role", "agent"], "\n", "password: must be"),
        (["--email", "ana@example.com", "--role", "agent", "--name", ""], "0123456789\n", "--name"),
        (["--email", "dup@example.com", "--role", "agent"], "0123456789\n", "e-mail address"),
    ],
)
def test_create_user_refusals_exit_2_and_name_the_option(
    tenant: Tenant, cli_env: None, args: list[str], stdin: str, expected: str
) -> None:
    make_user(tenant, "dup@example.com")
    result = admin("create-user", "--org", tenant.org_id, *args, "--password-stdin", input=stdin)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert stdin.strip() not in result.output or not stdin.strip()
    assert len(tenant.get("/v1/users").json()["data"]) == 1


def test_create_user_in_an_unknown_organisation_or_role_fails(
    container: Container, cli_env: None
) -> None:
    unknown = admin(
        "create-user", "--org", "nope", "--email", "a@example.com", "--role", "agent",
        "--password-stdin", input="0123456789\n",
    )  # fmt: skip
    assert unknown.exit_code == 2 and "no organisation" in unknown.output
    bad_role = admin(
        "create-user", "--org", "nope", "--email", "a@example.com", "--role", "sender",
        "--password-stdin", input="0123456789\n",
    )  # fmt: skip
    assert bad_role.exit_code == 2 and "--role" in bad_role.output


def test_keys_of_users_listed_and_revoked(
    tenant: Tenant, container: Container, cli_env: None
) -> None:
    ana = make_user(tenant, role="supervisor")
    made = admin("create-key", "--org", tenant.org_id, "--user", ana["id"], "--name", "console")
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    me = as_key(tenant, key, "GET", "/v1/users/me")
    assert me.status_code == 200 and me.json()["id"] == ana["id"]
    assert as_key(tenant, key, "GET", "/v1/users").status_code == 200  # the user's role

    above = admin("create-key", "--org", tenant.org_id, "--user", ana["id"], "--role", "admin")
    assert above.exit_code == 2 and "supervisor" in above.output
    agent = admin("create-key", "--org", tenant.org_id, "--user", ana["id"], "--role", "agent")
    assert agent.exit_code == 0, agent.output
    nobody = admin("create-key", "--org", tenant.org_id, "--name", "x")
    assert nobody.exit_code == 2 and "--role" in nobody.output
    org_key = admin("create-key", "--org", tenant.org_id, "--role", "sender")
    assert org_key.exit_code == 0 and org_key.stdout.strip().startswith("ob_")

    listed = admin("list-keys", "--org", tenant.org_id)
    assert listed.exit_code == 0, listed.output
    assert key[:10] in listed.stdout and "console" in listed.stdout
    assert ana["id"][:8] in listed.stdout
    for secret in (key, *tenant.keys.values()):
        assert secret not in listed.stdout
    key_id = next(
        k["id"] for k in tenant.get("/v1/api-keys").json()["data"] if k["name"] == "console"
    )

    revoked = admin("revoke-key", key_id, "--org", tenant.org_id)
    assert revoked.exit_code == 0, revoked.output
    assert f"{key_id} revoked at" in revoked.stdout
    assert_error(as_key(tenant, key, "GET", "/v1/users/me"), 401, "unauthenticated")
    assert admin("revoke-key", "nope", "--org", tenant.org_id).exit_code == 2
    # Another organisation's key is not found from this one.
    another = create_organization(container.db, container.clock, "Another").id
    other = admin("revoke-key", key_id, "--org", another)
    assert other.exit_code == 2 and "no API key" in other.output
    unknown = admin("revoke-key", key_id, "--org", "no-such-org")
    assert unknown.exit_code == 2 and "no organisation 'no-such-org'" in unknown.output
    assert tenant.get("/v1/organization", Role.SENDER).status_code == 200
