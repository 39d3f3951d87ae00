"""What every ``outbound`` command shares: its consoles, and reading the settings and starting
the service with a short message and exit status 2 when either fails."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console

from outbound.config import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from outbound.app import Container

__all__ = ["console", "err", "fail", "open_service", "read_settings", "start_service"]

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


def start_service(settings: Settings) -> Container:
    """Build the service and bring its schema up to date (unless the settings say not to),
    with clear errors for bad setups."""
    import sqlalchemy as sa

    from outbound.app import build_container
    from outbound.errors import OutboundError

    try:
        container = build_container(settings)
        if settings.migrate_on_start:
            container.migrate()
    except OutboundError as exc:
        raise fail(str(exc)) from exc
    except sa.exc.OperationalError as exc:
        raise fail(f"database unreachable: {exc.orig}") from exc
    return container


def open_service(settings: Settings | None = None) -> Container:
    """The service for a one-off command: ``settings`` (else those of the environment), with
    the schema brought up to date whatever ``OUTBOUND_MIGRATE_ON_START`` says."""
    settings = settings or read_settings()
    return start_service(settings.model_copy(update={"migrate_on_start": True}))
