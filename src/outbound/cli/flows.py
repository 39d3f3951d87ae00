"""``outbound flows``: apply, list, run, enable and disable flows."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from outbound.cli.common import console, err, fail, open_service

if TYPE_CHECKING:
    from outbound.app import Container
    from outbound.schemas import FlowRunOut

__all__ = ["flows_app", "parse_where", "run_with_progress"]

flows_app = typer.Typer(help="Flows: messages on events, on demand and on a schedule.")
OrgOption = typer.Option(..., "--org", help="Organisation id.", envvar="OUTBOUND_ORG")


def parse_where(expressions: list[str]) -> list[dict[str, object]]:
    """``field=value`` (equals) or ``field OP value`` (e.g. ``case.resolved_at since 7d``)."""
    from outbound.domain.conditions import CONDITION_OPS

    conditions: list[dict[str, object]] = []
    for text in expressions:
        parts = text.split(None, 2)
        if len(parts) >= 2 and parts[1] in CONDITION_OPS:
            value: object = parts[2] if len(parts) == 3 else None
            if parts[1] in {"in", "not_in"} and isinstance(value, str):
                value = [v.strip() for v in value.split(",")]
            conditions.append({"field": parts[0], "op": parts[1], "value": value})
        elif "=" in text:
            field, _, value = text.partition("=")
            conditions.append({"field": field.strip(), "op": "eq", "value": value.strip()})
        else:
            raise ValueError(f"--where {text!r}: use FIELD=VALUE or 'FIELD OP VALUE'")
    return conditions


@flows_app.command("apply")
def apply(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A YAML or JSON file."),
    org: str = OrgOption,
) -> None:
    """Create or update the flow a document describes (matched by name)."""
    from outbound.domain.flows import FlowDefinitionError
    from outbound.errors import RequestError

    c = open_service(org=org)
    try:
        text = file.read_text(encoding="utf-8-sig")
        fmt = "json" if file.suffix.lower() == ".json" else "yaml"
        flow, created = c.flows.apply(org, text, source_format=fmt)
    except FlowDefinitionError as exc:
        for error in exc.errors:
            where = f"{file}:{error.line}" if error.line else str(file)
            err.print(f"[red]{where}[/red] {error.field}: {error.message}")
        raise typer.Exit(2) from exc
    except (RequestError, UnicodeDecodeError) as exc:
        raise fail(str(exc)) from exc
    finally:
        c.db.dispose()
    verb = "created" if created else f"updated (version {flow.version})"
    console.print(f"{flow.name}: {verb} [dim]{flow.id}[/dim]")


@flows_app.command("list")
def list_flows(org: str = OrgOption) -> None:
    """List the organisation's flows."""
    c = open_service(org=org)
    table = Table("name", "trigger", "event / next run", "enabled", "id")
    cursor: str | None = None
    try:
        while True:
            page = c.flows.list(org, cursor, 500)
            for flow in page.data:
                when = flow.event_type or (
                    flow.next_fire_at.isoformat() if flow.next_fire_at else "-"
                )
                table.add_row(flow.name, flow.trigger_type, when, str(flow.enabled), flow.id)
            cursor = page.next_cursor
            if not cursor:
                break
    finally:
        c.db.dispose()
    console.print(table)


def _set_enabled(name: str, org: str, enabled: bool) -> None:
    from outbound.errors import RequestError

    c = open_service(org=org)
    try:
        flow = c.flows.set_enabled(org, name, enabled)
    except RequestError as exc:
        raise fail(exc.message) from exc
    finally:
        c.db.dispose()
    console.print(f"{flow.name}: {'enabled' if flow.enabled else 'disabled'}")


@flows_app.command("disable")
def disable(name: str = typer.Argument(..., help="Flow name or id."), org: str = OrgOption) -> None:
    """Stop a flow from starting new runs."""
    _set_enabled(name, org, False)


@flows_app.command("enable")
def enable(name: str = typer.Argument(..., help="Flow name or id."), org: str = OrgOption) -> None:
    """Let a disabled flow start runs again."""
    _set_enabled(name, org, True)


def run_with_progress(c: Container, org: str, run: FlowRunOut, out: Console) -> FlowRunOut:
    """Execute a run in this process (or follow it if a worker has it), with a progress bar."""
    engine = c.flow_engine()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("queued {task.fields[queued]} skipped {task.fields[skipped]}"),
        TextColumn("rejected {task.fields[rejected]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=out, transient=False) as bar:
        task = bar.add_task("run", total=run.total, queued=0, skipped=0, rejected=0)

        def show(state: FlowRunOut) -> None:
            bar.update(
                task,
                total=state.total,
                completed=state.scanned,
                queued=state.queued,
                skipped=state.skipped,
                rejected=state.rejected,
                description=state.status.value
                + (f" ({state.wait_reason})" if state.wait_reason else ""),
            )

        while True:
            state = c.flows.get_run(org, run.id)
            show(state)
            if state.status.value in {"completed", "failed", "canceled"}:
                return state
            if engine.claim(run_id=run.id):
                engine.execute(run.id, progress=show)
            else:
                time.sleep(1.0)  # a worker holds it, or it waits for the quota


@flows_app.command("run")
def run(
    name: str = typer.Argument(..., help="Flow name or id."),
    org: str = OrgOption,
    csv_file: Path | None = typer.Option(
        None, "--csv", exists=True, dir_okay=False, help="The list to send to (csv flows)."
    ),
    where: list[str] = typer.Option(
        [], "--where", help="Extra condition: FIELD=VALUE or 'FIELD OP VALUE'; repeatable."
    ),
    detach: bool = typer.Option(
        False, "--detach", help="Only start the run; the workers execute it."
    ),
) -> None:
    """Run an instant (or scheduled) flow now, showing its progress."""
    from outbound.errors import RequestError
    from outbound.schemas import FlowRunIn

    try:
        data = FlowRunIn.model_validate({"conditions": parse_where(where)})
    except ValueError as exc:
        raise fail(str(exc)) from exc
    c = open_service(org=org)
    try:
        if csv_file is not None:
            with csv_file.open(encoding="utf-8-sig", newline="") as lines:
                started = c.flows.start_run(org, name, data, csv_lines=lines)
        else:
            started = c.flows.start_run(org, name, data)
        console.print(f"run [bold]{started.id}[/bold] started")
        if detach:
            return
        final = run_with_progress(c, org, started, console)
    except RequestError as exc:
        raise fail(exc.message) from exc
    finally:
        c.db.dispose()
    typer.echo(
        json.dumps(
            {
                "status": final.status.value,
                "matched": final.matched,
                "queued": final.queued,
                "skipped": final.skipped,
                "rejected": final.rejected,
                "batches": final.batches,
                "errors": final.error_count,
            }
        )
    )
    for error in final.errors[:10]:
        err.print(f"  {error.at or ''} {error.field or ''}: {error.message}")
    if final.status.value != "completed":
        raise typer.Exit(1)


@flows_app.command("status")
def status(run_id: str = typer.Argument(..., help="Run id."), org: str = OrgOption) -> None:
    """Show one run: status, counts and first errors."""
    from outbound.errors import RequestError

    c = open_service(org=org)
    try:
        state = c.flows.get_run(org, run_id)
    except RequestError as exc:
        raise fail(exc.message) from exc
    finally:
        c.db.dispose()
    console.print_json(state.model_dump_json())
