"""Keyset (cursor) pagination over ``(created_at, id)``, newest first."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from outbound.errors import InvalidRequestError
from outbound.schemas import Page
from outbound.texts import N_

if TYPE_CHECKING:
    from outbound.adapters.db.engine import Database

T = TypeVar("T")

__all__ = ["MAX_PAGE_SIZE", "decode_cursor", "encode_cursor", "fetch_page", "paginate"]

MAX_PAGE_SIZE = 500


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        # validate: refuse characters outside the alphabet instead of silently skipping them.
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
        created, separator, row_id = raw.decode().partition("|")
        when = datetime.fromisoformat(created)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidRequestError(N_("malformed cursor"), field="cursor") from exc
    # Cursors we issue always carry a time zone and an id; anything else was not made here.
    if not separator or not row_id or when.tzinfo is None:
        raise InvalidRequestError(N_("malformed cursor"), field="cursor")
    return when, row_id


def paginate(
    query: sa.Select[Any], created_col: Any, id_col: Any, cursor: str | None, limit: int
) -> sa.Select[Any]:
    """Apply cursor, order and limit (one extra row tells whether there is a next page)."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidRequestError(
            N_("limit must be between 1 and %(maximum)s", maximum=MAX_PAGE_SIZE), field="limit"
        )
    if cursor:
        created, row_id = decode_cursor(cursor)
        query = query.where(
            sa.or_(created_col < created, sa.and_(created_col == created, id_col < row_id))
        )
    return query.order_by(created_col.desc(), id_col.desc()).limit(limit + 1)


def fetch_page(
    db: Database,
    query: sa.Select[Any],
    created_col: Any,
    id_col: Any,
    cursor: str | None,
    limit: int,
    convert: Callable[[Any], T],
) -> Page[T]:
    """Run a paginated query and build the page (with the cursor of the next one, if any)."""
    query = paginate(query, created_col, id_col, cursor, limit)
    with db.read() as session:
        rows = list(session.execute(query).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[T](
        data=[convert(r) for r in rows],
        next_cursor=encode_cursor(rows[-1].created_at, rows[-1].id) if more else None,
    )
