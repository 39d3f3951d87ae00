"""The ``outbound`` command line."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import typer

from outbound.adapters import heap
from outbound.adapters.db.stages import run_in_stage
from outbound.cli.common import (
    console,
    fail,
    open_service,
    read_settings,
    set_verbose,
    start_service,
)
from outbound.cli.exports import export_app
from outbound.cli.flows import flows_app
from outbound.cli.records import contacts_app
from outbound.cli.users import create_key, create_user, list_keys, revoke_key
from outbound.config import Settings

__all__ = ["app"]

app = typer.Typer(help="Outbound SMS and WhatsApp messaging service.", no_args_is_help=True)
admin = typer.Typer(
    help="Operator tasks: organisations, users, keys, limits.", no_args_is_help=True
)
app.add_typer(admin, name="admin")
app.add_typer(flows_app, name="flows")
app.add_typer(contacts_app, name="contacts")
app.add_typer(export_app, name="export")


@app.callback()
def main(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Say which database the command uses."
    ),
) -> None:
    """Outbound SMS and WhatsApp messaging service."""
    set_verbose(verbose)


def _run_loop(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop where it is installed (as uvicorn does for ``serve``), else asyncio."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)
    else:
        uvloop.run(coroutine)


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Alembic narrates every step at INFO; an operator needs only its warnings.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Interface to listen on (OUTBOUND_HOST)."),
    port: int | None = typer.Option(None, help="Port to listen on (OUTBOUND_PORT)."),
    worker: bool | None = typer.Option(
        None, "--worker/--no-worker", help="Run the dispatcher in this process too."
    ),
) -> None:
    """Run the HTTP API (and, by default, a dispatcher and the flow engine) in one process."""
    import uvicorn

    from outbound.app import create_app
    from outbound.web.server import server_config

    settings = read_settings()
    _logging(settings)
    container = start_service(settings, announce=True)
    application = create_app(container, run_worker=worker)
    heap.settle()
    server = uvicorn.Server(
        server_config(
            application,
            host=host or settings.host,
            port=port or settings.port,
            log_level=settings.log_level,
            keep_alive=settings.http_keep_alive_seconds,
        )
    )
    server.run()
    if not server.started:
        raise typer.Exit(3)  # as uvicorn.run: the port was taken, or the startup failed


@app.command()
def worker() -> None:
    """Run a dispatcher, the flow engine and the routing sweep, without the API (several may
    share one PostgreSQL database)."""
    settings = read_settings()
    _logging(settings)
    container = start_service(settings, announce=True)

    if settings.worker_metrics_port:
        from outbound.adapters.metrics import serve_metrics

        serve_metrics(
            settings.worker_metrics_port,
            settings.host,
            container.metrics.registry,
            token=settings.metrics_token,
        )

    heap.settle()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await asyncio.gather(
                run_in_stage("dispatch", container.dispatcher().run(stop)),
                container.flow_engine().run(stop),
                container.webhook_deliverer().run(stop),
                container.conversation_sweep.run(stop, settings.routing_sweep_seconds),
            )
        finally:
            await container.aclose()

    _run_loop(main())


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from outbound.adapters.db.migrate import current_revision

    container = open_service(announce=True)
    console.print(f"schema at revision [bold]{current_revision(container.db.engine)}[/bold]")
    container.db.dispose()


@app.command()
def demo(
    data_dir: Path | None = typer.Option(
        None, help="Keep the demo database here (default: a temporary directory)."
    ),
    provider: str = typer.Option(
        "sandbox", help="sandbox, or twilio: the real Twilio adapter against a local fake."
    ),
    keep_serving: bool = typer.Option(
        False, help="Keep the service (and its console) running after the demo, until Ctrl-C."
    ),
) -> None:
    """Run the service on SQLite with a sandbox channel and send a few messages end to end."""
    from outbound.cli.demo import run_demo

    if provider not in {"sandbox", "twilio"}:
        raise fail("--provider must be sandbox or twilio")
    raise typer.Exit(run_demo(console, data_dir, provider, keep_serving=keep_serving))


@admin.command("create-org")
def create_org(name: str = typer.Argument(..., help="The organisation's name.")) -> None:
    """Create an organisation and print its id."""
    from outbound.services.auth import create_organization

    container = open_service()
    try:
        org = create_organization(container.db, container.clock, name)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    console.print(org.id)
    container.db.dispose()


# Users and keys (outbound.cli.users), listed after create-org in the help.
admin.command("create-user")(create_user)
admin.command("create-key")(create_key)
admin.command("list-keys")(list_keys)
admin.command("revoke-key")(revoke_key)


@admin.command("set-limits")
def set_limits_cmd(
    org: str = typer.Option(..., "--org", help="Organisation id."),
    max_contacts: int | None = typer.Option(None, min=1, help="Contacts per send request."),
    hourly_quota: int | None = typer.Option(None, min=1, help="Send requests per hour."),
) -> None:
    """Override the request limits of one organisation."""
    from outbound.errors import NotFoundError
    from outbound.services.auth import set_limits

    container = open_service(org=org)
    try:
        org_row = set_limits(
            container.db,
            org,
            max_contacts_per_request=max_contacts,
            hourly_request_quota=hourly_quota,
        )
    except NotFoundError as exc:
        raise fail(str(exc)) from exc
    finally:
        container.db.dispose()
    console.print(
        f"{org_row.id}: max_contacts_per_request={org_row.max_contacts_per_request}, "
        f"hourly_request_quota={org_row.hourly_request_quota}"
    )


@admin.command("generate-secret-key")
def generate_secret_key() -> None:
    """Print a new key for OUTBOUND_SECRET_KEY."""
    from cryptography.fernet import Fernet

    console.print(Fernet.generate_key().decode())


@admin.command("rotate-secret-key")
def rotate_secret_key() -> None:
    """Re-encrypt every channel's credentials and webhook secret under a new key (the old one
    still opens them).

    With OUTBOUND_SECRET_KEY, set it to NEW,OLD first (and restart the service); with the key
    file, a new key is put first in it, the old ones kept after it. See docs/deploy.md.
    """
    from cryptography.fernet import Fernet

    from outbound.adapters.secrets import parse_keys, prepend_key_to_file
    from outbound.errors import SecretKeyError

    settings = read_settings()
    if settings.secret_key:
        if len(parse_keys(settings.secret_key)) < 2:
            raise fail(
                "OUTBOUND_SECRET_KEY holds one key: set it to the new key, a comma, then the "
                "current one (NEW,OLD), restart every process with it, then run this again"
            )
        target = "the first key of OUTBOUND_SECRET_KEY"
    else:
        path = prepend_key_to_file(settings.data_dir, Fernet.generate_key())
        target = f"a new key, now first in {path}"
    container = open_service(settings)
    try:
        rotated, current = container.channels.reencrypt_credentials()
        hooks, hooks_current = container.webhook_endpoints.reencrypt_secrets()
    except SecretKeyError as exc:
        raise fail(str(exc)) from exc
    finally:
        container.db.dispose()
    console.print(
        f"re-encrypted {rotated} channel credentials under {target} ({current} already were)"
    )
    console.print(f"re-encrypted {hooks} webhook endpoint secrets ({hooks_current} already were)")


@app.command()
def backup(
    file: Path = typer.Argument(..., help="Where to write the copy (a new file)."),
) -> None:
    """Copy the SQLite database while the service runs (PostgreSQL: use pg_dump)."""
    from outbound.adapters.db.backup import BackupError, backup_sqlite

    settings = read_settings()
    if not settings.is_sqlite:
        raise fail(
            "outbound backup copies a SQLite database; back up PostgreSQL with pg_dump "
            "(see docs/deploy.md)"
        )
    try:
        size = backup_sqlite(settings.resolved_database_url, file)
    except BackupError as exc:
        raise fail(str(exc)) from exc
    console.print(
        f"copied the database to {file} ({size:,} bytes); its channel credentials open only "
        "with the secret key: keep the key with it"
    )
