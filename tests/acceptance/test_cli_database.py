"""The database a command uses: the platform's data directory by default, said on start or
with --verbose; an unknown --org refused; waiting for a running service's writes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from outbound.adapters.db.engine import Database, create_engine
from outbound.adapters.db.models import Organization
from outbound.app import Container
from outbound.cli.main import app
from outbound.config import Settings, default_data_dir
from tests.helpers import SECRET


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.stdout.split()), " ".join(result.stderr.split())


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTBOUND_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("OUTBOUND_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("OUTBOUND_SECRET_KEY", SECRET)


def test_the_default_data_directory_is_the_users_not_the_current_one(
    user_data_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = user_data_home / "outbound"
    assert default_data_dir() == expected
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.data_dir == expected
    assert settings.resolved_database_url == f"sqlite:///{expected / 'outbound.db'}"


def test_a_command_in_another_directory_uses_the_same_database(
    user_data_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTBOUND_SECRET_KEY", SECRET)
    monkeypatch.chdir(tmp_path)
    code, org_id, _ = cli("admin", "create-org", "Acme")
    assert code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, _out, err = cli("--verbose", "flows", "list", "--org", org_id)
    assert code == 0, err
    assert f"database: SQLite {user_data_home / 'outbound' / 'outbound.db'}" in err
    assert not (tmp_path / ".outbound").exists()


def test_commands_say_which_database_they_use(
    cli_env: None, settings: Settings, container: Container
) -> None:
    code, _out, err = cli("migrate")
    assert code == 0, err
    assert "database: " in err
    code, _out, err = cli("admin", "create-org", "Quiet")
    assert code == 0 and "database" not in err
    code, _out, err = cli("-v", "admin", "create-org", "Loud")
    assert code == 0, err
    url = sa.make_url(container.settings.resolved_database_url)
    if url.get_backend_name() == "sqlite":
        assert f"database: SQLite {url.database}" in err
    else:
        assert f"database: {url.render_as_string(hide_password=True)}" in err
        if url.password:
            assert url.password not in err


@pytest.mark.parametrize(
    "command",
    [
        ["flows", "list"],
        ["flows", "status", "some-run"],
        ["admin", "list-keys"],
        ["admin", "create-key"],
        ["admin", "revoke-key", "some-key"],
        ["admin", "set-limits", "--max-contacts", "5"],
        ["contacts", "import", "-"],
    ],
)
def test_an_unknown_org_is_refused(cli_env: None, container: Container, command: list[str]) -> None:
    code, out, err = cli(*command, "--org", "no-such-org")
    assert code == 2, (out, err)
    assert "no organisation 'no-such-org'" in err
    assert out == ""


def test_a_command_waits_while_a_service_writes_or_migrates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service migrating a new database holds SQLite's write lock; a command started then
    waits for its turn, says so after a second, and succeeds."""
    monkeypatch.setenv("OUTBOUND_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OUTBOUND_SECRET_KEY", SECRET)
    path = tmp_path / "outbound.db"
    service = Database(create_engine(f"sqlite:///{path}"))
    writing = threading.Event()
    noticed = threading.Event()
    patient = Database.patient

    def observed(self: Database, timeout: float, notice: Callable[[], None]) -> None:
        def both() -> None:
            notice()
            noticed.set()

        patient(self, timeout, both)

    monkeypatch.setattr(Database, "patient", observed)

    def migrating() -> None:
        with service.transaction() as session:
            session.execute(sa.text("CREATE TABLE service_was_here (n INTEGER)"))
            writing.set()
            # Until the command has said it waits (however slow the machine), and a little.
            noticed.wait(60)
            time.sleep(0.2)

    holder = threading.Thread(target=migrating)
    holder.start()
    try:
        assert writing.wait(10)
        code, _out, err = cli("admin", "create-org", "Patient")
    finally:
        holder.join(10)
        service.dispose()
    assert code == 0, err
    assert "waiting for the database" in err
    assert "database is locked" not in err
    check = Database(create_engine(f"sqlite:///{path}"))
    with check.read() as session:
        assert session.execute(sa.select(Organization.name)).scalars().all() == ["Patient"]
    check.dispose()
