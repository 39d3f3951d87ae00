"""What every ``outbound`` command shares: its consoles, and reading the settings and starting
the service with a short message and exit status 2 when either fails.

A command says which database it uses when it starts (``serve``, ``worker``, ``migrate``) or
with ``--verbose``; on SQLite it waits for a running service's writes and migrations, saying so
after a second, rather than failing with ``database is locked``; and an ``--org`` that names
no organisation ends it with an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console

from outbound.config import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from outbound.app import Container

__all__ = [
    "CLI_WRITE_TIMEOUT",
    "check_org",
    "console",
    "database_label",
    "err",
    "fail",
    "open_service",
    "read_settings",
    "set_verbose",
    "start_service",
]

# How long a command waits for its turn to write to SQLite while a service writes or migrates.
CLI_WRITE_TIMEOUT = 600.0

_state = {"verbose": False}


def set_verbose(verbose: bool) -> None:
    """``--verbose``: every command says which database it uses."""
    _state["verbose"] = verbose


def database_label(settings: Settings) -> str:
    """The database in use, for people: a SQLite file's path, or the URL without password."""
    import sqlalchemy as sa

    url = sa.make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        return f"SQLite {url.database}"
    return url.render_as_string(hide_password=True)


console = Console()
"""Where a command prints its results (standard output)."""

err = Console(stderr=True)
"""Where a command prints errors and progress (standard error)."""


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise, with status ``code``."""
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def read_settings() -> Settings:
    """The settings from the environment; a bad value ends the command naming the variable."""
    try:
        return load_settings()
    except SettingsError as exc:
        raise fail(str(exc)) from exc


def start_service(
    settings: Settings, *, announce: bool = False, patient: bool = False
) -> Container:
    """Build the service and bring its schema up to date (unless the settings say not to),
    with clear errors for bad setups. ``announce`` (or ``--verbose``) prints the database in
    use; ``patient`` makes SQLite writes wait for a running service (see the module doc)."""
    import sqlalchemy as sa

    from outbound.app import build_container
    from outbound.errors import OutboundError

    if announce or _state["verbose"]:
        err.print(f"database: {database_label(settings)}", highlight=False)
    try:
        container = build_container(settings)
        if patient:
            label = database_label(settings)
            container.db.patient(
                CLI_WRITE_TIMEOUT,
                lambda: err.print(
                    f"waiting for the database ({label}): another process, such as "
                    "outbound serve, is migrating or writing it…",
                    highlight=False,
                ),
            )
        if settings.migrate_on_start:
            container.migrate()
    except OutboundError as exc:
        raise fail(str(exc)) from exc
    except sa.exc.OperationalError as exc:
        raise fail(f"database unreachable: {exc.orig}") from exc
    return container


def open_service(
    settings: Settings | None = None, *, org: str | None = None, announce: bool = False
) -> Container:
    """The service for a one-off command: ``settings`` (else those of the environment), with
    the schema brought up to date whatever ``OUTBOUND_MIGRATE_ON_START`` says, waiting for a
    running service's writes. ``org``: the organisation the command acts for, which must
    exist."""
    settings = settings or read_settings()
    container = start_service(
        settings.model_copy(update={"migrate_on_start": True}), announce=announce, patient=True
    )
    if org is not None:
        check_org(container, org)
    return container


def check_org(container: Container, org: str) -> None:
    """End the command if ``org`` names no organisation (rather than print an empty list)."""
    from outbound.errors import NotFoundError
    from outbound.services.auth import get_organization

    try:
        get_organization(container.db, org)
    except NotFoundError:
        container.db.dispose()
        raise fail(
            f"no organisation {org!r} in {database_label(container.settings)} "
            "(outbound admin create-org NAME creates one)"
        ) from None
