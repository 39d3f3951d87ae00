"""``outbound flows``: apply, list, run (with its progress), disable and enable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from outbound.cli.flows import parse_where
from outbound.cli.main import app
from outbound.config import Settings
from tests.helpers import SECRET, Setup, Tenant

FLOW = """\
name: lyon
configuration: Case updates
trigger:
  type: instant
conditions:
  - field: contact.custom.city
    value: Lyon
recipient:
  contextitems: {CaseName: "{contact.custom.order}"}
"""


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTBOUND_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("OUTBOUND_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("OUTBOUND_SECRET_KEY", SECRET)
    monkeypatch.setenv("OUTBOUND_DEFAULT_REGION", "FR")


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["flows", *args])


def test_apply_list_run_disable(
    tenant: Tenant, setup: Setup, tmp_path: Path, cli_env: None
) -> None:
    for i, city in enumerate(["Lyon", "Lyon", "Nice"]):
        response = tenant.post(
            "/v1/contacts",
            {
                "name": f"C{i}",
                "mobile_phone": f"+3361234560{i}",
                "consent": {"sms": True},
                "custom": {"city": city, "order": f"O-{i}"},
            },
        )
        assert response.status_code == 201, response.text
    document = tmp_path / "lyon.yaml"
    document.write_text(FLOW)
    org = tenant.org_id

    applied = cli("apply", str(document), "--org", org)
    assert applied.exit_code == 0, applied.output
    assert "lyon: created" in applied.stdout
    again = cli("apply", str(document), "--org", org)
    assert "updated (version 2)" in again.stdout

    listed = cli("list", "--org", org)
    assert listed.exit_code == 0 and "lyon" in listed.stdout and "instant" in listed.stdout

    ran = cli("run", "lyon", "--org", org, "--where", "contact.name ne C1")
    assert ran.exit_code == 0, ran.output
    assert '"status": "completed"' in ran.stdout
    assert '"queued": 1' in ran.stdout
    assert len(tenant.get("/v1/messages").json()["data"]) == 1

    assert "disabled" in cli("disable", "lyon", "--org", org).stdout
    refused = cli("run", "lyon", "--org", org)
    assert refused.exit_code == 2 and "disabled" in refused.output
    assert "enabled" in cli("enable", "lyon", "--org", org).stdout

    detached = cli("run", "lyon", "--org", org, "--detach")
    assert detached.exit_code == 0
    run_id = detached.stdout.split("run ")[1].split()[0]
    status = cli("status", run_id, "--org", org)
    assert status.exit_code == 0 and '"status": "pending"' in status.stdout


def test_apply_reports_each_error_with_its_line(
    tenant: Tenant, setup: Setup, tmp_path: Path, cli_env: None
) -> None:
    document = tmp_path / "bad.yaml"
    document.write_text(FLOW.replace("instant", "never").replace("value: Lyon", "op: like"))
    result = cli("apply", str(document), "--org", tenant.org_id)
    assert result.exit_code == 2
    assert f"{document}:4" in result.output and "trigger.type" in result.output
    assert f"{document}:7" in result.output and "conditions[0].op" in result.output


def test_run_a_csv_list(tenant: Tenant, setup: Setup, tmp_path: Path, cli_env: None) -> None:
    document = tmp_path / "list.yaml"
    document.write_text(
        "name: list\nconfiguration: Case updates\ntrigger: {type: instant}\n"
        "source: {records: csv}\nrecipient: {contextitems: {CaseName: '{record.order}'}}\n"
    )
    assert cli("apply", str(document), "--org", tenant.org_id).exit_code == 0
    people = tmp_path / "people.csv"
    people.write_text("name,phone,optin,order\nAna,0612345678,yes,A-1\nBo,12,yes,B-2\n")
    result = cli("run", "list", "--org", tenant.org_id, "--csv", str(people))
    assert result.exit_code == 0, result.output
    assert '"queued": 1' in result.stdout and '"rejected": 1' in result.stdout
    assert "invalid_number" in result.output


def test_parse_where() -> None:
    assert parse_where(["a=b", "case.resolved_at since 7d", "x in a, b", "y exists"]) == [
        {"field": "a", "op": "eq", "value": "b"},
        {"field": "case.resolved_at", "op": "since", "value": "7d"},
        {"field": "x", "op": "in", "value": ["a", "b"]},
        {"field": "y", "op": "exists", "value": None},
    ]
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        parse_where(["nonsense"])
