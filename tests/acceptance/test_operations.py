"""Operator commands: rotating the secret key."""

from __future__ import annotations

from dataclasses import dataclass

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
from tests.conftest import SECRET

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
