"""``outbound contacts``: bring contacts in from a CSV file."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

__all__ = ["contacts_app"]

contacts_app = typer.Typer(help="Contacts: import from CSV.", no_args_is_help=True)

READ_BYTES = 64 * 1024
SHOWN_ERRORS = 20


def _chunks(stream: BinaryIO, progress: Progress, task: TaskID) -> Iterator[bytes]:
    while chunk := stream.read(READ_BYTES):
        progress.advance(task, len(chunk))
        yield chunk


@contacts_app.command("import")
def import_contacts(
    file: Path = typer.Argument(..., help="The CSV file (UTF-8, header row first); - for stdin."),
    org: str = typer.Option(..., "--org", help="Organisation id."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and match; write nothing."),
) -> None:
    """Create or update contacts from a CSV file, as POST /v1/contacts/import does.

    Exit status: 0 when every row was imported, 1 when some were refused, 2 when the file or
    the organisation cannot be used.
    """
    from outbound.cli.common import open_service
    from outbound.errors import ImportInputError, NotFoundError
    from outbound.services.contact_import import text_lines

    console = Console()
    err = Console(stderr=True)

    def fail(message: str) -> typer.Exit:
        err.print(f"[red]error:[/red] {message}", highlight=False)
        return typer.Exit(2)

    from_stdin = str(file) == "-"
    try:
        stream: BinaryIO = sys.stdin.buffer if from_stdin else file.open("rb")
        size = None if from_stdin else file.stat().st_size
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}") from exc

    with stream:
        # Waits for a running service's writes; ends the command if the organisation is unknown.
        container = open_service(org=org)
        try:
            progress = Progress(
                TextColumn("[bold]importing[/bold]"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            )
            with progress:
                task = progress.add_task("import", total=size)
                lines = text_lines(_chunks(stream, progress, task))
                result = container.records.import_contacts(org, lines, dry_run=dry_run)
        except NotFoundError as exc:
            raise fail(exc.message) from exc
        except ImportInputError as exc:
            raise fail(f"{file}: {exc.message}") from exc
        finally:
            container.db.dispose()

    label = " (dry run: nothing written)" if result.dry_run else ""
    console.print(
        f"{result.rows} rows{label}: created {result.created}, updated {result.updated}, "
        f"unchanged {result.unchanged}, failed {result.failed}",
        highlight=False,
    )
    if result.errors:
        table = Table("row", "field", "error", title="first errors (the header is row 1)")
        for error in result.errors[:SHOWN_ERRORS]:
            table.add_row(str(error.row), error.field or "", error.message)
        console.print(table)
        if result.error_count > SHOWN_ERRORS:
            console.print(f"... and {result.error_count - SHOWN_ERRORS} more errors")
    if result.stopped:
        err.print(f"[red]stopped early:[/red] {result.stopped}", highlight=False)
    if result.failed or result.stopped:
        raise typer.Exit(1)
