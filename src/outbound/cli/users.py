"""``outbound admin`` commands for users and API keys: create-user, create-key, list-keys,
revoke-key (registered on the ``admin`` group by :mod:`outbound.cli.main`).

Passwords are read without echo (asked twice) or, for scripts, from one line of standard input
(``--password-stdin``); never from an option, which would leave them in the shell's history and
the process list.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from outbound.cli.common import console, fail, open_service
from outbound.domain.roles import Role
from outbound.domain.users import UserRole

if TYPE_CHECKING:
    from outbound.app import Container

__all__ = ["create_key", "create_user", "list_keys", "revoke_key"]

OrgOption = typer.Option(..., "--org", help="Organisation id.")
# Options of create-user by the field of the API they fill, to name them in errors.
_OPTIONS = {"email": "--email", "name": "--name", "role": "--role", "password": "password"}


@contextmanager
def _service(org: str) -> Iterator[Container]:
    """The service for one command of organisation ``org`` (which must exist); a refused
    request ends the command with exit code 2."""
    from outbound.errors import RequestError

    c = open_service(org=org)
    try:
        yield c
    except RequestError as exc:
        raise fail(exc.message) from exc
    finally:
        c.db.dispose()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        # One line; only its line ending is removed (a password may start or end with spaces).
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def create_user(
    org: str = OrgOption,
    email: str = typer.Option(..., "--email", help="E-mail address, unique in the organisation."),
    role: UserRole = typer.Option(..., "--role", help="admin, supervisor or agent."),
    name: str | None = typer.Option(
        None, "--name", help="Display name (default: the part of the e-mail before @)."
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input (one line)."
    ),
) -> None:
    """Create a user with a password (asked twice, without echo) and print the user's id."""
    from pydantic import ValidationError

    from outbound.schemas import UserCreate

    password = _read_password(password_stdin)
    try:
        data = UserCreate(
            email=email,
            name=name if name is not None else email.split("@", 1)[0],
            role=role,
            password=password,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "input"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise fail(f"{_OPTIONS.get(field, field)}: {message}") from None
    with _service(org) as c:
        user = c.users.create(org, data)
    console.print(user.id)


def create_key(
    org: str = OrgOption,
    role: Role | None = typer.Option(
        None,
        "--role",
        help="admin, sender, supervisor or agent; with --user, the user's role by default.",
    ),
    name: str = typer.Option("api key", "--name", help="A label for the key."),
    user: str | None = typer.Option(
        None, "--user", help="User id: the key acts as this user, never above their role."
    ),
) -> None:
    """Create an API key and print it (shown once; only its hash is stored)."""
    from outbound.services.auth import create_api_key

    with _service(org) as c:
        key_role = _key_role(c, org, role, user)
        _key, secret = create_api_key(c.db, c.clock, org, key_role, name, user_id=user)
    console.print(secret)


def _key_role(c: Container, org: str, role: Role | None, user: str | None) -> Role:
    if role is not None:
        return role
    if user is None:
        raise fail("--role is needed (or --user, to give the key the user's role)")
    return Role(c.users.get(org, user).role.value)


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


def list_keys(org: str = OrgOption) -> None:
    """List the organisation's API keys (their first characters, never the secrets)."""
    from outbound.services.auth import list_api_keys

    table = Table()
    for column in ("id", "prefix", "name", "role", "user", "created", "last used", "revoked"):
        # Folded, not cut short: an id or a time with an ellipsis is of no use.
        table.add_column(column, overflow="fold")
    cursor: str | None = None
    with _service(org) as c:
        while True:
            page = list_api_keys(c.db, org, cursor, 500)
            for key in page.data:
                table.add_row(
                    key.id,
                    key.prefix + "…",
                    key.name,
                    key.role.value,
                    key.user_id or "-",
                    _when(key.created_at),
                    _when(key.last_used_at),
                    _when(key.revoked_at),
                )
            cursor = page.next_cursor
            if not cursor:
                break
    console.print(table)


def revoke_key(
    key_id: str = typer.Argument(..., help="The key's id (see list-keys)."),
    org: str = OrgOption,
) -> None:
    """Revoke an API key: every process refuses it from its next request on."""
    from outbound.services.auth import revoke_api_key

    with _service(org) as c:
        key = revoke_api_key(c.db, c.clock, org, key_id)
    console.print(f"{key.id} revoked at {_when(key.revoked_at)}")
