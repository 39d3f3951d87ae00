"""Public identifiers of rows numbered in one sequence for every organisation.

Events, audit rows, webhook deliveries and live updates are numbered by the database in one
sequence shared by all organisations, which keeps them ordered and cheap to page through. Shown
as they are, two ids an organisation sees would tell it how much every other organisation did
in between. They are shown instead as a block cipher's image of the number under the
organisation's own key (:attr:`outbound.adapters.db.models.Organization.id_key`): a permutation,
so each number has one public id and back, that says nothing of the number without the key.

The cleartext block is the number (8 bytes), the kind of row (4 bytes) and 4 zero bytes: an id
of another kind, of another organisation, or made up decodes to ``None``, not to some other row.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import struct
from enum import StrEnum

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from outbound.texts import N_

__all__ = ["IdKind", "decode_public_id", "encode_public_id", "new_id_key"]

_KEY_BYTES = 16
_BLOCK = struct.Struct(">Q4s4x")
_ENCODED_LENGTH = 26  # base32 of 16 bytes, padding removed


class IdKind(StrEnum):
    """Each kind has its prefix, which is also its tag in the cleartext."""

    EVENT = "evt"
    AUDIT = "aud"
    DELIVERY = "whd"
    UPDATE = "upd"


def new_id_key() -> str:
    """A new organisation's key, as stored (hexadecimal)."""
    return secrets.token_hex(_KEY_BYTES)


def _cipher(key: str) -> Cipher[modes.ECB]:
    raw = bytes.fromhex(key)
    if len(raw) != _KEY_BYTES:
        raise ValueError(N_("an id key is 16 bytes"))
    # One block, one number: ECB of a single block is the bare permutation wanted here.
    return Cipher(algorithms.AES(raw), modes.ECB())


def encode_public_id(key: str, kind: IdKind, number: int) -> str:
    """``number`` (≥ 0) as the organisation holding ``key`` sees it: ``evt_`` and 26 letters."""
    if not 0 <= number < 1 << 64:
        raise ValueError(N_("a row number is a 64-bit unsigned integer"))
    block = _BLOCK.pack(number, kind.value.encode().ljust(4, b"\0"))
    encryptor = _cipher(key).encryptor()
    sealed = encryptor.update(block) + encryptor.finalize()
    text = base64.b32encode(sealed).decode().rstrip("=").lower()
    return f"{kind.value}_{text}"


def decode_public_id(key: str, kind: IdKind, public_id: str) -> int | None:
    """The number behind ``public_id``, or ``None`` if it is not an id of this kind and key."""
    prefix, separator, text = public_id.partition("_")
    if prefix != kind.value or not separator or len(text) != _ENCODED_LENGTH:
        return None
    try:
        sealed = base64.b32decode(text.upper() + "=" * 6)
    except (binascii.Error, ValueError):
        return None
    decryptor = _cipher(key).decryptor()
    block = decryptor.update(sealed) + decryptor.finalize()
    number, tag = _BLOCK.unpack(block)
    if tag != kind.value.encode().ljust(4, b"\0") or block[-4:] != b"\0" * 4:
        return None
    return int(number)
