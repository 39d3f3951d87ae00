"""Encryption of channel credentials at rest (Fernet: AES-128-CBC with HMAC-SHA256).

The key is ``OUTBOUND_SECRET_KEY`` or, without it, the key file in the data directory. Either
may hold several keys (separated by commas, spaces or new lines): the first encrypts, every one
decrypts. That is how a key is rotated with nothing stopped: the new key goes first, the old
one stays second until ``outbound admin rotate-secret-key`` has re-encrypted every credential
under the new one (see docs/deploy.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from outbound.errors import SecretKeyError

__all__ = [
    "KEY_FILE_NAME",
    "SecretBox",
    "SecretKeyError",
    "key_file_path",
    "load_or_create_key",
    "parse_keys",
    "prepend_key_to_file",
]

KEY_FILE_NAME = "secret.key"

_SEPARATORS = re.compile(r"[\s,]+")


def parse_keys(keys: str | bytes) -> list[bytes]:
    """The keys of ``keys``, in order: ``"NEW,OLD"`` or one per line."""
    text = keys.decode() if isinstance(keys, bytes) else keys
    return [key.encode() for key in _SEPARATORS.split(text.strip()) if key]


def _fernet(keys: str | bytes) -> MultiFernet:
    try:
        parsed = parse_keys(keys)
        if not parsed:
            raise ValueError("no key")
        return MultiFernet([Fernet(key) for key in parsed])
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise SecretKeyError(
            "OUTBOUND_SECRET_KEY must be a Fernet key: 32 bytes, urlsafe base64 "
            "(generate one with `outbound admin generate-secret-key`); several keys are "
            "separated by commas, the first encrypting"
        ) from exc


class SecretBox:
    """Encrypts and decrypts small JSON documents (credentials) with the service's keys.

    With ``key_file``, a token that none of the keys opens makes the box read the file again
    first: a running service keeps working when ``outbound admin rotate-secret-key`` puts a
    new key in the file and re-encrypts the credentials under it.
    """

    def __init__(self, keys: str | bytes, *, key_file: Path | None = None) -> None:
        self._fernet = _fernet(keys)
        self._keys = parse_keys(keys)
        self._primary = Fernet(self._keys[0])
        self._key_file = key_file

    @property
    def key_count(self) -> int:
        return len(self._keys)

    def derived_keys(self, purpose: str) -> list[bytes]:
        """A key of its own for ``purpose`` (signing console sessions) from each of the
        service's keys, first key first: the keys themselves never leave this object, and a
        rotation changes the derived keys too."""
        return [hmac.new(key, purpose.encode(), hashlib.sha256).digest() for key in self._keys]

    def encrypt(self, value: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(value, sort_keys=True).encode()).decode()

    def decrypt(self, token: str) -> dict[str, str]:
        try:
            plain = self._fernet.decrypt(token.encode())
        except InvalidToken:
            if not self._reload():
                raise self._unopenable() from None
            try:
                plain = self._fernet.decrypt(token.encode())
            except InvalidToken as exc:
                raise self._unopenable() from exc
        data = json.loads(plain)
        return {str(k): str(v) for k, v in data.items()}

    def is_current(self, token: str) -> bool:
        """``token`` is encrypted under the first key already."""
        try:
            self._primary.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """``token`` re-encrypted under the first key (any of the keys may open it)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise self._unopenable() from exc

    def _reload(self) -> bool:
        """Read the key file again; whether it holds other keys now."""
        if self._key_file is None:
            return False
        try:
            keys = parse_keys(self._key_file.read_bytes())
        except OSError:
            return False
        if not keys or keys == self._keys:
            return False
        self._fernet = _fernet(b",".join(keys))
        self._primary = Fernet(keys[0])
        self._keys = keys
        return True

    @staticmethod
    def _unopenable() -> SecretKeyError:
        return SecretKeyError(
            "stored credentials cannot be decrypted with the configured secret key"
        )


def key_file_path(data_dir: Path) -> Path:
    return data_dir / KEY_FILE_NAME


def load_or_create_key(data_dir: Path) -> bytes:
    """Read the key file in ``data_dir``, creating it (mode 0600) on first use."""
    path = key_file_path(data_dir)
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


def prepend_key_to_file(data_dir: Path, key: bytes) -> Path:
    """Make ``key`` the first key of the key file, keeping the others after it.

    The file is replaced whole (written beside it with mode 0600, then renamed): a process
    reading it meanwhile sees the old keys or the new list, never half of it.
    """
    path = key_file_path(data_dir)
    old = parse_keys(load_or_create_key(data_dir))
    temporary = path.with_name(path.name + ".new")
    temporary.unlink(missing_ok=True)  # a leftover of an interrupted run, maybe not 0600
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(b"\n".join([key, *old]) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path
