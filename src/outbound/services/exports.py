"""Exports: messages as CSV, read a page at a time so that memory stays flat however many.

Each page (``EXPORT_PAGE`` messages, in creation order, after the previous page's last key) is
read in a short read transaction of its own, with the first time of each status from the
history, and written out before the next is read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from outbound.adapters.db.engine import Database
from outbound.adapters.db.models import Message, MessageEvent, UTCDateTime
from outbound.services.tracking import MessageFilter

__all__ = ["EXPORT_COLUMNS", "EXPORT_PAGE", "MessageExport"]

EXPORT_PAGE = 1_000

_MESSAGE_COLUMNS = (
    "id",
    "created_at",
    "request_id",
    "configuration_id",
    "template_id",
    "channel_id",
    "channel_type",
    "provider",
    "flow_run_id",
    "to",
    "from",
    "country",
    "locale",
    "status",
    "reason",
    "error_code",
    "error_message",
    "segments",
    "encoding",
    "attempts",
    "provider_message_id",
    "sent_via_channel_id",
    "conversation_id",
    "regarding_object_id",
    "body",
)
_TIMES = ("queued_at", "sent_at", "delivered_at", "undelivered_at", "failed_at", "canceled_at")
EXPORT_COLUMNS = (*_MESSAGE_COLUMNS, *_TIMES, "updated_at")
"""The columns of a message export, in order."""

_ATTRIBUTE = {"to": "to_number", "from": "from_number"}


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class MessageExport:
    """Messages that match a filter, as CSV."""

    def __init__(self, db: Database, *, page: int = EXPORT_PAGE) -> None:
        self._db = db
        self._page = page

    def count(self, org_id: str, filters: MessageFilter) -> int:
        """How many messages the export holds (for a progress bar)."""
        with self._db.read() as session:
            query = filters.apply(
                sa.select(sa.func.count()).select_from(Message).where(Message.org_id == org_id)
            )
            return int(session.execute(query).scalar_one())

    def rows(self, org_id: str, filters: MessageFilter) -> Iterator[list[Any]]:
        """Every matching message as a list of cells, oldest first, a page at a time."""
        after: tuple[datetime, str] | None = None
        while True:
            query = filters.apply(
                sa.select(*(getattr(Message, _ATTRIBUTE.get(c, c)) for c in _MESSAGE_COLUMNS))
                .add_columns(Message.updated_at)
                .where(Message.org_id == org_id)
            )
            if after is not None:
                query = query.where(sa.tuple_(Message.created_at, Message.id) > sa.tuple_(*after))
            query = query.order_by(Message.created_at, Message.id).limit(self._page)
            with self._db.read() as session:
                page = session.execute(query).all()
                times = self._times(session, [row[0] for row in page])
            for row in page:
                first = times.get(row[0], {})
                yield [
                    *(_cell(v) for v in row[: len(_MESSAGE_COLUMNS)]),
                    *(_cell(first.get(name.removesuffix("_at"))) for name in _TIMES),
                    _cell(row[-1]),
                ]
            if len(page) < self._page:
                return
            after = (page[-1][1], page[-1][0])

    @staticmethod
    def _times(session: Any, ids: list[str]) -> dict[str, dict[str, datetime]]:
        """The first time each message took each status."""
        times: dict[str, dict[str, datetime]] = {}
        if not ids:
            return times
        for message_id, status, at in session.execute(
            sa.select(
                MessageEvent.message_id,
                MessageEvent.status,
                sa.type_coerce(sa.func.min(MessageEvent.occurred_at), UTCDateTime()),
            )
            .where(MessageEvent.message_id.in_(ids))
            .group_by(MessageEvent.message_id, MessageEvent.status)
        ):
            times.setdefault(message_id, {})[status] = at
        return times

    def csv(self, org_id: str, filters: MessageFilter, rows_per_chunk: int = 500) -> Iterator[str]:
        """The export as CSV text, in chunks of ``rows_per_chunk`` rows (the header first)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(EXPORT_COLUMNS)
        pending = 0
        for row in self.rows(org_id, filters):
            writer.writerow(row)
            pending += 1
            if pending >= rows_per_chunk:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
                pending = 0
        yield buffer.getvalue()
