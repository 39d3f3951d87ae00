"""CSV import of contacts, through the API and the command line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from outbound.adapters.db.models import Contact, Event
from outbound.app import Container
from outbound.cli.records import contacts_app
from outbound.config import Settings
from outbound.schemas import Role
from outbound.services.auth import create_organization
from outbound.services.contact_import import IMPORT_CHUNK_ROWS, text_lines
from tests.helpers import SECRET, Tenant, assert_error

HEADER = (
    "external_id,name,mobile_phone,whatsapp_number,preferred_language,"
    "consent_sms,consent_whatsapp,time_zone,tier"
)


def upload(
    tenant: Tenant,
    body: str | bytes,
    role: Role = Role.ADMIN,
    content_type: str = "text/csv",
    **params: Any,
) -> Any:
    content = body.encode() if isinstance(body, str) else body
    return tenant.post(
        "/v1/contacts/import",
        role=role,
        content=content,
        headers={"Content-Type": content_type},
        params=params,
    )


def imported(tenant: Tenant, body: str | bytes, **params: Any) -> dict[str, Any]:
    response = upload(tenant, body, **params)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def contacts(tenant: Tenant) -> dict[str, dict[str, Any]]:
    """The organisation's contacts by external_id (or name when they have none)."""
    data = tenant.get("/v1/contacts", params={"limit": 500}).json()["data"]
    return {c["external_id"] or c["name"]: c for c in data}


def event_types(tenant: Tenant) -> list[str]:
    data = tenant.get("/v1/events", params={"limit": 500}).json()["data"]
    return [e["type"] for e in reversed(data)]


def test_import_creates_contacts_with_custom_fields(tenant: Tenant) -> None:
    body = (
        "\ufeff"  # Excel's UTF-8 byte order mark
        + HEADER
        + ",custom.name\r\n"
        + "crm-1,Ana Lima,06 12 34 56 78,,fr_fr,yes,no,europe/paris,gold,A\r\n"
        + 'crm-2,"Smith, Jo",+44 7911 123456,+44 7911 123456,1033,TRUE,1,Europe/London,,B\r\n'
        + 'crm-3,"Multi\nLine ""Quoted""",+33612345670,,,,,,silver,\r\n'
    )
    result = imported(tenant, body)
    assert result == {
        "dry_run": False,
        "rows": 3,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "failed": 0,
        "error_count": 0,
        "errors": [],
        "stopped": None,
    }
    found = contacts(tenant)
    ana = found["crm-1"]
    assert ana["name"] == "Ana Lima"
    assert ana["mobile_phone"] == "+33612345678"
    assert ana["whatsapp_number"] is None
    assert ana["preferred_language"] == "fr-FR"
    assert ana["consent"] == {"sms": True, "whatsapp": False}
    assert ana["time_zone"] == "Europe/Paris"
    assert ana["custom"] == {"tier": "gold", "name": "A"}
    jo = found["crm-2"]
    assert jo["name"] == "Smith, Jo"
    assert jo["mobile_phone"] == jo["whatsapp_number"] == "+447911123456"
    assert jo["preferred_language"] == "en-US"
    assert jo["consent"] == {"sms": True, "whatsapp": True}
    assert jo["custom"] == {"name": "B"}
    assert found["crm-3"]["name"] == 'Multi\nLine "Quoted"'
    assert found["crm-3"]["consent"] == {"sms": False, "whatsapp": False}

    data = tenant.get("/v1/events", params={"limit": 10}).json()["data"]
    assert [e["type"] for e in data] == ["contact.created"] * 3
    assert {e["source"] for e in data} == {"import"}
    assert {e["data"]["contact"]["external_id"] for e in data} == {"crm-1", "crm-2", "crm-3"}


def test_bad_rows_are_reported_and_the_others_imported(tenant: Tenant) -> None:
    body = (
        HEADER + "\n"
        "ok-1,Ana,+33612345678,,,,,,\n"  # row 2
        "bad-1,Bob,12,,,,,,\n"  # row 3: phone
        "bad-2,Cy,+33612345679,,xx-YY,maybe,,Mars/Base,\n"  # row 4: three fields
        "\n"  # row 5: blank, skipped
        'ok-2,"Di\nwith a line break",+33612345670,,,,,,\n'  # row 6 (two lines)
        "bad-3,Ed,+33612345671,,,,,\n"  # row 7: one field short
        ",Flo,,,,,,,\n"  # row 8: nothing to match on
        "ok-3,Gus,+33612345672,,,,,,\n"  # row 9
    )
    result = imported(tenant, body)
    assert (result["rows"], result["created"], result["failed"]) == (7, 3, 4)
    assert result["error_count"] == 6
    found = [(e["row"], e["field"]) for e in result["errors"]]
    assert found == [
        (3, "mobile_phone"),
        (4, "preferred_language"),
        (4, "consent_sms"),
        (4, "time_zone"),
        (7, None),
        (8, "mobile_phone"),
    ]
    messages = {(e["row"], e["field"]): e["message"] for e in result["errors"]}
    assert "phone number" in messages[(3, "mobile_phone")]
    assert "12" not in messages[(3, "mobile_phone")]
    assert "header has 9" in messages[(7, None)]
    assert messages[(4, "consent_sms")] == "must be true or false (yes/no, on/off, 1/0)"
    assert sorted(contacts(tenant)) == ["ok-1", "ok-2", "ok-3"]
    assert event_types(tenant) == ["contact.created"] * 3


def test_consent_cells_take_the_same_words_as_settings_and_flows(tenant: Tenant) -> None:
    body = HEADER + "\non-1,Ana,+33612345678,,,on,OFF,,\ny-1,Bo,+33612345679,,,Y,n,,\n"
    result = imported(tenant, body)
    assert (result["created"], result["failed"]) == (2, 0), result
    found = contacts(tenant)
    assert found["on-1"]["consent"] == {"sms": True, "whatsapp": False}
    assert found["y-1"]["consent"] == {"sms": True, "whatsapp": False}


def test_reimport_updates_by_external_id_then_by_mobile_phone(tenant: Tenant) -> None:
    first = HEADER + "\ncrm-1,Ana,+33612345678,,fr-FR,yes,,,gold\ncrm-2,Bob,+33612345679,,,,,,\n"
    assert imported(tenant, first)["created"] == 2
    again = imported(tenant, first)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    assert event_types(tenant) == ["contact.created"] * 2

    # Empty cells leave fields as they are; given ones change.
    changed = HEADER + "\ncrm-1,Ana Lima,,,,,,,platinum\n"
    result = imported(tenant, changed)
    assert (result["created"], result["updated"]) == (0, 1)
    ana = contacts(tenant)["crm-1"]
    assert ana["name"] == "Ana Lima"
    assert ana["mobile_phone"] == "+33612345678"
    assert ana["consent"]["sms"] is True
    assert ana["custom"] == {"tier": "platinum"}
    last = tenant.get("/v1/events", params={"limit": 1}).json()["data"][0]
    assert last["type"] == "contact.updated"
    assert last["data"]["changes"] == {
        "name": {"old": "Ana", "new": "Ana Lima"},
        "custom": {"old": {"tier": "gold"}, "new": {"tier": "platinum"}},
    }

    # Without an external_id column, rows match on the mobile phone in any format.
    by_phone = "mobile_phone,name\n06 12 34 56 79,Bobby\n+33612345670,New\n"
    result = imported(tenant, by_phone)
    assert (result["created"], result["updated"], result["failed"]) == (1, 1, 0)
    found = contacts(tenant)
    assert found["crm-2"]["name"] == "Bobby"
    assert found["New"]["external_id"] is None

    # Two contacts with one number: the row cannot say which.
    imported(tenant, "external_id,mobile_phone\ncrm-3,+33612345670\n")
    result = imported(tenant, "mobile_phone,name\n+33612345670,Who\n")
    assert result["failed"] == 1
    [error] = result["errors"]
    assert (error["row"], error["field"]) == (2, "mobile_phone")
    assert "external_id" in error["message"]

    # Within one file, a later row updates what an earlier one created.
    result = imported(tenant, "external_id,name\ncrm-9,First\ncrm-9,Second\n")
    assert (result["created"], result["updated"]) == (1, 1)
    assert contacts(tenant)["crm-9"]["name"] == "Second"


def test_dry_run_writes_nothing(tenant: Tenant) -> None:
    imported(tenant, "external_id,name\ncrm-1,Ana\n")
    body = "external_id,name,mobile_phone\ncrm-1,Ana Lima,\ncrm-2,Bob,\ncrm-3,Bad,nope\n"
    result = imported(tenant, body, dry_run="true")
    assert result["dry_run"] is True
    assert (result["created"], result["updated"], result["failed"]) == (1, 1, 1)
    assert result["errors"][0]["row"] == 4
    assert contacts(tenant)["crm-1"]["name"] == "Ana"
    assert sorted(contacts(tenant)) == ["crm-1"]
    assert event_types(tenant) == ["contact.created"]


def test_dry_run_counts_rows_repeated_across_chunks_as_the_import_does(tenant: Tenant) -> None:
    imported(tenant, "external_id,name,mobile_phone\ncrm-old,Old,+33612345600\n")
    filler = "".join(f"crm-{n},Contact {n},\n" for n in range(IMPORT_CHUNK_ROWS))
    body = (
        "external_id,name,mobile_phone\n"
        "crm-new,Ana,+33612345601\n"
        "crm-old,Renamed,\n"
        "crm-moved,Mo,+33612345602\n"
        + filler
        # the next chunk: a repeat of each, a rename, a row matched by the number moved to
        + "crm-new,Ana,\n"
        + "crm-old,Renamed,\n"
        + "crm-new,Ana Lima,\n"
        + "crm-moved,,+33612345603\n"
        + ",Found by number,+33612345603\n"
        + ",Nobody,+33612345602\n"
    )
    dry = imported(tenant, body, dry_run="true")
    real = imported(tenant, body)
    counts = ("rows", "created", "updated", "unchanged", "failed")
    assert {k: dry[k] for k in counts} == {k: real[k] for k in counts}
    assert (real["created"], real["unchanged"]) == (IMPORT_CHUNK_ROWS + 3, 2)


def test_unusable_files_are_refused(tenant: Tenant) -> None:
    for body, message in [
        ("", "empty"),
        ("\ufeff", "empty"),
        ("\n\nexternal_id\nx\n", "header"),
        ("name,tier\nAna,gold\n", "external_id or a mobile_phone"),
        ("external_id,External_ID\n", "twice"),
        ("external_id,,name\n", "column 2"),
    ]:
        error = assert_error(upload(tenant, body), 422, "invalid_request", "header")
        assert message in error["message"], (body, error)
    error = assert_error(
        upload(tenant, "x", content_type="application/json"),
        415,
        "unsupported_media_type",
        "Content-Type",
    )
    assert "text/csv" in error["message"]
    response = upload(tenant, "external_id\nx\n", content_type="text/csv; charset=latin-1")
    assert_error(response, 415, "unsupported_media_type", "Content-Type")
    assert (
        imported(tenant, "external_id\nx\n", content_type="text/csv; charset=utf-8")["created"] == 1
    )
    assert_error(upload(tenant, "external_id\ny\n", Role.AGENT), 403, "forbidden")
    assert sorted(contacts(tenant)) == ["x"]


def test_a_chunked_upload_is_read_as_it_arrives(tenant: Tenant) -> None:
    data = "\ufeffexternal_id,name\ncrm-1,José\n".encode() + b"".join(
        f"crm-{n},Contact {n}\n".encode() for n in range(2, 1200)
    )

    def body() -> Iterator[bytes]:
        # Odd sizes split the BOM, the "é" and many lines between chunks.
        for start in range(0, len(data), 1001):
            yield data[start : start + 1001]
        yield data[:0]

    response = tenant.post(
        "/v1/contacts/import", content=body(), headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert (response.json()["created"], response.json()["failed"]) == (1199, 0)
    found = tenant.get("/v1/contacts", params={"external_id": "crm-1"}).json()["data"]
    assert found[0]["name"] == "José"


def test_bytes_that_are_not_utf8_only_spoil_their_row(tenant: Tenant) -> None:
    body = b"external_id,name\ncrm-1,Ana\ncrm-2,Jos\xe9\ncrm-3,Jos\xc3\xa9\n"
    result = imported(tenant, body)
    assert (result["created"], result["failed"]) == (2, 1)
    assert [(e["row"], e["field"]) for e in result["errors"]] == [(3, "name")]
    assert contacts(tenant)["crm-3"]["name"] == "José"


def test_a_runaway_line_stops_the_import_after_what_was_read(tenant: Tenant) -> None:
    body = "external_id,name\ncrm-1,Ana\ncrm-2," + "x" * (1 << 20) + "y" * 10
    result = imported(tenant, body)
    assert result["created"] == 1
    assert result["stopped"] and "longer than" in result["stopped"]
    assert result["errors"][-1]["row"] == 3


def test_large_import_commits_in_chunks_and_caps_errors(
    container: Container, tenant: Tenant
) -> None:
    rows = 2 * IMPORT_CHUNK_ROWS + 150
    seen_when_reading: list[int] = []

    def lines() -> Iterator[str]:
        yield "external_id,mobile_phone,name\n"
        for n in range(rows):
            if n == IMPORT_CHUNK_ROWS + 10:
                with container.db.read() as session:
                    count = session.execute(
                        sa.select(sa.func.count()).select_from(Contact)
                    ).scalar_one()
                seen_when_reading.append(count)
            yield f"crm-{n},+336{n:08d},Contact {n}\n"
        for n in range(1100):
            yield f"bad-{n},not a number,x\n"

    result = container.records.import_contacts(tenant.org_id, lines())
    # The first chunk was committed (with its events) before the rest was even read.
    assert seen_when_reading == [IMPORT_CHUNK_ROWS]
    assert (result.created, result.failed) == (rows, 1100)
    assert len(result.errors) == 1000 and result.error_count == 1100
    assert result.errors[0].row == rows + 2
    with container.db.read() as session:
        events = session.execute(
            sa.select(sa.func.count()).select_from(Event).where(Event.type == "contact.created")
        ).scalar_one()
    assert events == rows


def test_text_lines_decodes_across_chunk_boundaries() -> None:
    data = '\ufeffa,b\r\n"x\ny",é€\nlast'.encode()
    for size in (1, 2, 3, 7, len(data)):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        assert list(text_lines(chunks)) == ["a,b\r\n", '"x\n', 'y",é€\n', "last"]


# --- command line ---------------------------------------------------------------------------


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTBOUND_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("OUTBOUND_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("OUTBOUND_SECRET_KEY", SECRET)
    monkeypatch.setenv("OUTBOUND_DEFAULT_REGION", "FR")


def cli(*args: str) -> Any:
    app = typer.Typer()
    app.add_typer(contacts_app, name="contacts")
    return CliRunner().invoke(app, ["contacts", "import", *args])


def test_cli_import(container: Container, tmp_path: Path, cli_env: None) -> None:
    org = create_organization(container.db, container.clock, "CLI").id
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "\ncrm-1,Ana,0612345678,,fr-FR,yes,,,gold\ncrm-2,Bob,,,,,,,\n")
    result = cli(str(good), "--org", org)
    assert result.exit_code == 0, result.output
    assert "created 2" in result.stdout and "failed 0" in result.stdout
    with container.db.read() as session:
        names = session.execute(
            sa.select(Contact.name, Contact.mobile_phone).where(Contact.org_id == org)
        ).all()
    assert sorted(names, key=lambda r: r[0] or "") == [("Ana", "+33612345678"), ("Bob", None)]

    again = cli(str(good), "--org", org)
    assert again.exit_code == 0 and "unchanged 2" in again.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text("external_id,mobile_phone\ncrm-3,+33612345670\ncrm-4,0000\n")
    result = cli(str(bad), "--org", org, "--dry-run")
    assert result.exit_code == 1, result.output
    assert "dry run" in result.stdout and "created 1" in result.stdout
    assert "mobile_phone" in result.stdout and "3" in result.stdout
    result = cli(str(bad), "--org", org)
    assert result.exit_code == 1
    with container.db.read() as session:
        count = session.execute(
            sa.select(sa.func.count()).select_from(Contact).where(Contact.org_id == org)
        ).scalar_one()
    assert count == 3


def test_cli_unusable_input_exits_2(container: Container, tmp_path: Path, cli_env: None) -> None:
    org = create_organization(container.db, container.clock, "CLI").id
    missing = cli(str(tmp_path / "missing.csv"), "--org", org)
    assert missing.exit_code == 2 and "cannot read" in missing.output
    headerless = tmp_path / "headerless.csv"
    headerless.write_text("name\nAna\n")
    result = cli(str(headerless), "--org", org)
    assert result.exit_code == 2 and "external_id" in result.output
    good = tmp_path / "good.csv"
    good.write_text("external_id\nx\n")
    result = cli(str(good), "--org", "no-such-org")
    assert result.exit_code == 2 and "no-such-org" in result.output
