"""Operator commands: rotating the secret key, and backing up a SQLite database online."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from outbound.adapters.db.models import Channel
from outbound.adapters.secrets import KEY_FILE_NAME, SecretBox, parse_keys
from outbound.app import Container, build_container
from outbound.cli.main import app
from outbound.config import Settings
from outbound.errors import SecretKeyError
from outbound.schemas import ChannelCreate
from outbound.services.auth import create_organization
from tests.helpers import SECRET

CREDENTIALS = {"account_sid": "AC" + "1" * 32, "auth_token": "t" * 32}


@dataclass
class Ran:
    exit_code: int
    output: str  # on one line: the console wraps long lines


def cli(*args: str) -> Ran:
    result = CliRunner().invoke(app, list(args))
    return Ran(result.exit_code, " ".join(result.output.split()))


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTBOUND_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("OUTBOUND_DATABASE_URL", str(settings.database_url))


def _channels(container: Container) -> list[str]:
    """A channel with credentials, one without; their ids."""
    org = create_organization(container.db, container.clock, "Acme")
    with_credentials = container.channels.create(
        org.id,
        ChannelCreate(
            name="twilio",
            type="sms",
            provider="twilio",
            sender="+15005550006",
            credentials=CREDENTIALS,
        ),
    )
    without = container.channels.create(
        org.id, ChannelCreate(name="sandbox", type="sms", provider="sandbox", sender="+15005550006")
    )
    return [with_credentials.id, without.id]


def _stored(container: Container, channel_id: str) -> str:
    with container.db.read() as session:
        token = session.execute(
            sa.select(Channel.credentials_encrypted).where(Channel.id == channel_id)
        ).scalar_one()
    assert token is not None
    return str(token)


# --- rotate-secret-key ------------------------------------------------------------------------


def test_rotation_re_encrypts_under_the_first_key_of_the_setting(
    container: Container, cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel_id, _ = _channels(container)
    new = Fernet.generate_key().decode()
    monkeypatch.setenv("OUTBOUND_SECRET_KEY", f"{new},{SECRET}")

    result = cli("admin", "rotate-secret-key")
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1 channel credentials" in result.output
    assert "(0 already were)" in result.output
    token = _stored(container, channel_id)
    assert SecretBox(new).decrypt(token) == CREDENTIALS
    with pytest.raises(SecretKeyError):
        SecretBox(SECRET).decrypt(token)

    again = cli("admin", "rotate-secret-key")
    assert again.exit_code == 0, again.output
    assert "re-encrypted 0 channel credentials" in again.output
    assert "(1 already were)" in again.output


def test_rotation_needs_the_new_and_the_old_key(
    container: Container, cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel_id, _ = _channels(container)
    before = _stored(container, channel_id)
    monkeypatch.setenv("OUTBOUND_SECRET_KEY", SECRET)
    result = cli("admin", "rotate-secret-key")
    assert result.exit_code == 2
    assert "NEW,OLD" in result.output
    assert _stored(container, channel_id) == before


def test_credentials_no_key_opens_stop_the_rotation_before_any_change(
    container: Container, cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel_id, other_id = _channels(container)
    before = _stored(container, channel_id)
    foreign = SecretBox(Fernet.generate_key()).encrypt(CREDENTIALS)
    with container.db.transaction() as session:
        session.execute(
            sa.update(Channel).where(Channel.id == other_id).values(credentials_encrypted=foreign)
        )
    monkeypatch.setenv("OUTBOUND_SECRET_KEY", f"{Fernet.generate_key().decode()},{SECRET}")
    result = cli("admin", "rotate-secret-key")
    assert result.exit_code == 2
    assert other_id in result.output
    assert _stored(container, channel_id) == before


def test_rotation_with_the_key_file_keeps_a_running_service_working(
    settings: Settings, container: Container, cli_env: None
) -> None:
    channel_id, _ = _channels(container)
    key_file = settings.data_dir / KEY_FILE_NAME
    key_file.write_text(SECRET + "\n")
    running = build_container(settings.model_copy(update={"secret_key": None}))
    try:
        result = cli("admin", "rotate-secret-key")
        assert result.exit_code == 0, result.output
        assert "re-encrypted 1 channel credentials under a new key" in result.output
        keys = parse_keys(key_file.read_bytes())
        assert len(keys) == 2
        assert keys[1] == SECRET.encode()
        assert key_file.stat().st_mode & 0o777 == 0o600
        token = _stored(container, channel_id)
        assert SecretBox(keys[0]).decrypt(token) == CREDENTIALS
        # A process started before the rotation reads the key file again.
        assert running.secrets.decrypt(token) == CREDENTIALS
    finally:
        running.db.dispose()


# --- backup -----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_backup_copies_a_sqlite_database_in_use(
    container: Container, settings: Settings, cli_env: None, tmp_path: Path
) -> None:
    _channels(container)
    database = sa.make_url(str(settings.database_url)).database
    assert database is not None
    # A writer is in the middle of a transaction: the copy holds what was committed before.
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM channels")
    target = tmp_path / "copy" / "outbound.db"
    target.parent.mkdir()
    try:
        result = cli("backup", str(target))
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert result.exit_code == 0, result.output
    assert "keep the key with it" in result.output
    assert sorted(p.name for p in target.parent.iterdir()) == ["outbound.db"]
    copy = sqlite3.connect(target)
    try:
        assert copy.execute("SELECT count(*) FROM channels").fetchone()[0] == 2
        assert copy.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        copy.close()

    again = cli("backup", str(target))
    assert again.exit_code == 2
    assert "exists" in again.output


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_backup_does_not_create_a_missing_database(
    cli_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTBOUND_DATABASE_URL", f"sqlite:///{tmp_path / 'missing.db'}")
    result = cli("backup", str(tmp_path / "copy.db"))
    assert result.exit_code == 2
    assert not (tmp_path / "missing.db").exists()
    assert not (tmp_path / "copy.db").exists()


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_backup_refuses_postgresql_and_names_pg_dump(cli_env: None, tmp_path: Path) -> None:
    result = cli("backup", str(tmp_path / "copy.db"))
    assert result.exit_code == 2
    assert "pg_dump" in result.output
    assert not (tmp_path / "copy.db").exists()
