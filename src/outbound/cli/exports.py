"""``outbound export``: messages as CSV on standard output, with a progress bar."""

from __future__ import annotations

import sys
from datetime import datetime

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

__all__ = ["export_app"]

export_app = typer.Typer(help="Export data as CSV.", no_args_is_help=True)


@export_app.command("messages")
def export_messages(
    org: str = typer.Option(..., "--org", help="Organisation id."),
    configuration_id: str | None = typer.Option(None, "--configuration-id"),
    status: str | None = typer.Option(None, "--status"),
    to: str | None = typer.Option(None, "--to", help="Recipient, any format."),
    request_id: str | None = typer.Option(None, "--request-id"),
    created_after: datetime | None = typer.Option(
        None, "--created-after", help="ISO time with a zone, e.g. 2026-12-01T00:00:00+00:00"
    ),
    created_before: datetime | None = typer.Option(None, "--created-before"),
) -> None:
    """Write the messages the filters keep as CSV to standard output (the columns of
    GET /v1/messages/export), with a progress bar on standard error.

    Exit status: 0 when done, 2 when a filter or the organisation cannot be used.
    """
    from outbound.cli.common import open_service
    from outbound.errors import RequestError
    from outbound.services.exports import MessageExport
    from outbound.services.tracking import MessageFilter

    err = Console(stderr=True)
    container = open_service(org=org)
    try:
        try:
            filters = MessageFilter(
                configuration_id=configuration_id,
                status=status,
                to=to,
                request_id=request_id,
                created_after=created_after,
                created_before=created_before,
                default_region=container.settings.default_region,
            )
        except RequestError as exc:
            err.print(f"[red]error:[/red] --{exc.field}: {exc.message}", highlight=False)
            raise typer.Exit(2) from exc
        export = MessageExport(container.db)
        total = export.count(org, filters)
        progress = Progress(
            TextColumn("[bold]exporting[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        out = sys.stdout
        with progress:
            task = progress.add_task("export", total=total)
            for chunk in export.csv(org, filters):
                out.write(chunk)
                progress.advance(task, chunk.count("\r\n"))
        out.flush()
        err.print(f"{total} messages exported", highlight=False)
    finally:
        container.db.dispose()
