"""Exports: GET /v1/messages/export and ``outbound export messages``, as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from outbound.app import Container, create_app
from outbound.cli.main import app
from outbound.config import Settings
from outbound.domain.roles import Role
from outbound.services.exports import EXPORT_COLUMNS, MessageExport
from outbound.services.tracking import MessageFilter
from outbound.testing import FakeClock
from tests.acceptance.test_reports import _history
from tests.helpers import SECRET, Tenant, make_tenant


@pytest.fixture
def stenant(scripted_container: Container) -> Iterator[Tenant]:
    with TestClient(create_app(scripted_container, run_worker=False)) as client:
        yield make_tenant(scripted_container, client)


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_the_export_has_every_message_with_its_times_and_error(
    stenant: Tenant, scripted_container: Container, clock: FakeClock
) -> None:
    await _history(scripted_container, stenant, clock)
    answer = stenant.get("/v1/messages/export")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.text.splitlines()[0].split(",") == list(EXPORT_COLUMNS)
    rows = _rows(answer.text)
    assert sorted(r["status"] for r in rows) == ["delivered", "rejected", "skipped", "undelivered"]
    undelivered = next(r for r in rows if r["status"] == "undelivered")
    assert undelivered["error_code"] == "30003"
    assert undelivered["sent_at"] and undelivered["undelivered_at"]
    assert undelivered["queued_at"] == undelivered["created_at"]
    # The filters of the list.
    only = _rows(stenant.get("/v1/messages/export", params={"status": "delivered"}).text)
    assert [r["status"] for r in only] == ["delivered"]
    assert stenant.get("/v1/messages/export", Role.AGENT).status_code == 403
    bad = stenant.get("/v1/messages/export", params={"status": "lost"})
    assert bad.status_code == 422


async def test_the_export_reads_page_after_page(
    stenant: Tenant, scripted_container: Container, clock: FakeClock
) -> None:
    await _history(scripted_container, stenant, clock)
    export = MessageExport(scripted_container.db, page=1)
    rows = list(export.rows(stenant.org_id, MessageFilter()))
    assert len(rows) == 4 == export.count(stenant.org_id, MessageFilter())
    assert len({row[0] for row in rows}) == 4


async def test_the_command_writes_the_csv_to_stdout(
    stenant: Tenant,
    scripted_container: Container,
    clock: FakeClock,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _history(scripted_container, stenant, clock)
    monkeypatch.setenv("OUTBOUND_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("OUTBOUND_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("OUTBOUND_SECRET_KEY", SECRET)
    result = CliRunner().invoke(
        app, ["export", "messages", "--org", stenant.org_id, "--status", "skipped"]
    )
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    assert [(r["status"], r["reason"]) for r in rows] == [("skipped", "opted_out")]
    assert "1 messages exported" in result.stderr
    bad = CliRunner().invoke(app, ["export", "messages", "--org", stenant.org_id, "--status", "x"])
    assert bad.exit_code == 2
