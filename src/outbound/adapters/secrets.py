"""Encryption of channel credentials at rest (Fernet: AES-128-CBC with HMAC-SHA256)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from outbound.errors import SecretKeyError

__all__ = ["SecretBox", "SecretKeyError", "load_or_create_key"]

KEY_FILE_NAME = "secret.key"


class SecretBox:
    """Encrypts and decrypts small JSON documents (credentials) with one Fernet key."""

    def __init__(self, key: str | bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise SecretKeyError(
                "OUTBOUND_SECRET_KEY must be a Fernet key: 32 bytes, urlsafe base64 "
                "(generate one with `outbound admin generate-secret-key`)"
            ) from exc

    def encrypt(self, value: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(value, sort_keys=True).encode()).decode()

    def decrypt(self, token: str) -> dict[str, str]:
        try:
            data = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise SecretKeyError(
                "stored credentials cannot be decrypted with the configured secret key"
            ) from exc
        return {str(k): str(v) for k, v in data.items()}


def load_or_create_key(data_dir: Path) -> bytes:
    """Read the key file in ``data_dir``, creating it (mode 0600) on first use."""
    path = data_dir / KEY_FILE_NAME
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # O_EXCL: two processes starting together must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
