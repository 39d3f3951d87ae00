"""The organisation's key of public ids, read once per process, and the ids it makes.

See :mod:`outbound.domain.public_ids` for why rows numbered across organisations are shown
under another name. An organisation's key never changes, so each process keeps the keys it
has read.
"""

from __future__ import annotations

import threading

import sqlalchemy as sa
from sqlalchemy.orm import Session

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Organization
from outbound.domain.public_ids import IdKind, decode_public_id, encode_public_id
from outbound.errors import InvalidRequestError
from outbound.texts import N_

__all__ = ["IdKind", "org_id_key", "parse_public_id", "public_id"]

_MAX_KEYS = 10_000
_keys: dict[str, str] = {}
_lock = threading.Lock()


def org_id_key(source: Session | Database, org_id: str) -> str:
    """The key of ``org_id``'s public ids, read in ``source`` (a session, or a database to
    open a read on) the first time."""
    key = _keys.get(org_id)
    if key is None:
        query = sa.select(Organization.id_key).where(Organization.id == org_id)
        if isinstance(source, Database):
            with source.read() as session:
                key = session.execute(query).scalar_one()
        else:
            key = source.execute(query).scalar_one()
        with _lock:
            if len(_keys) >= _MAX_KEYS:
                _keys.clear()
            _keys[org_id] = key
    return key


def public_id(source: Session | Database, org_id: str, kind: IdKind, number: int) -> str:
    return encode_public_id(org_id_key(source, org_id), kind, number)


def parse_public_id(
    session: Session | Database, org_id: str, kind: IdKind, text: str, *, field: str = "cursor"
) -> int:
    """The row number behind ``text``, an id this organisation was given; 422 otherwise."""
    number = decode_public_id(org_id_key(session, org_id), kind, text.strip())
    if number is None:
        raise InvalidRequestError(N_("not an id this organisation was given"), field=field)
    return number
