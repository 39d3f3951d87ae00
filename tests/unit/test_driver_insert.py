"""Rows inserted straight through SQLite's driver are stored as SQLAlchemy's own insert
stores them: each value through its column's type, None included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
import sqlalchemy as sa

from outbound.adapters.db.models import Base, Message, MessageEvent
from outbound.adapters.db.rowsets import DriverInsert, _variable_limit

MESSAGES = cast(sa.Table, Message.__table__)
EVENTS = cast(sa.Table, MessageEvent.__table__)


def _engine() -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    return engine


def _stored(engine: sa.Engine, table: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY 1")]


def _message(number: int, **columns: Any) -> dict[str, Any]:
    at = datetime(2026, 12, 6, 10, 30, 15, 123456, tzinfo=UTC)
    return {
        "id": f"m{number}",
        "org_id": "o1",
        "contact_index": number,
        "channel_id": "c1",
        "channel_type": "sms",
        "provider": "twilio",
        "to_raw": "+33612345678",
        "status": "queued",
        "send_as_template": False,
        "show_in_timeline": True,
        "attempts": 0,
        "max_attempts": 3,
        "scheduled_at": at,
        # Another offset: stored as naive UTC, as the column's type does.
        "created_at": at.astimezone(timezone(timedelta(hours=2))),
        "updated_at": at,
        **columns,
    }


def test_messages_are_stored_as_sqlalchemy_stores_them() -> None:
    rows = [
        _message(1, context={"CustomerName": "Zoë", "n": [1, 2]}, template_parameters=None),
        _message(2, segments=2, body="Hi\u00a0€", send_as_template=True),
        _message(3),  # names fewer columns: those are NULL
    ]
    names = tuple(sorted({name for row in rows for name in row}))
    ours, theirs = _engine(), _engine()
    with ours.begin() as conn:
        DriverInsert(MESSAGES).execute(conn, names, rows)
    with theirs.begin() as conn:
        conn.execute(MESSAGES.insert(), [{name: row.get(name) for name in names} for row in rows])
    stored = _stored(ours, "messages")
    assert stored == _stored(theirs, "messages")
    assert len(stored) == 3
    # And read back through the model, the same values.
    with sa.orm.Session(ours) as session:
        first = session.get(Message, "m1")
        assert first is not None
        assert first.context == {"CustomerName": "Zoë", "n": [1, 2]}
        assert first.created_at == datetime(2026, 12, 6, 10, 30, 15, 123456, tzinfo=UTC)
        assert first.show_in_timeline is True and first.send_as_template is False


def test_history_rows_keep_their_order_and_leave_out_other_keys() -> None:
    at = datetime(2026, 12, 6, 10, 30, tzinfo=UTC)
    events = [
        {
            "message_id": f"m{i}",
            "org_id": "o1",
            "status": status,
            "occurred_at": at + timedelta(seconds=i),
            "source": "worker",
            "error_code": None,
            "error_message": None,
            "actor": None,
            "moved_from": "queued",  # not a column: left out
        }
        for i, status in enumerate(["queued", "sending", "sent", "delivered"])
    ]
    names = tuple(column.name for column in EVENTS.columns if column.name != "id")
    ours, theirs = _engine(), _engine()
    with ours.begin() as conn:
        insert = DriverInsert(EVENTS)
        insert.execute(conn, names, events[:2])
        insert.execute(conn, names, events[2:])  # the statement made once serves again
    with theirs.begin() as conn:
        conn.execute(EVENTS.insert(), [{n: e[n] for n in names} for e in events])
    stored = _stored(ours, "message_events")
    assert stored == _stored(theirs, "message_events")
    assert [row[0] for row in stored] == [1, 2, 3, 4]
    assert [row[3] for row in stored] == ["queued", "sending", "sent", "delivered"]


def test_a_batch_past_what_sqlite_binds_at_once_is_split_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    at = datetime(2026, 12, 6, 10, 30, tzinfo=UTC)
    names = ("message_id", "org_id", "status", "occurred_at", "source")
    events = [
        {"message_id": f"m{i}", "org_id": "o1", "status": "sent", "occurred_at": at, "source": "w"}
        for i in range(7)
    ]
    monkeypatch.setattr(DriverInsert, "MAX_VALUES", 2 * len(names))  # 2 rows a statement
    engine = _engine()
    statements: list[str] = []
    sa.event.listen(
        engine, "before_cursor_execute", lambda *args: statements.append(args[2]), named=False
    )
    with engine.begin() as conn:
        DriverInsert(EVENTS).execute(conn, names, events)
    assert [text.count("(?") for text in statements] == [2, 2, 2, 1]
    stored = _stored(engine, "message_events")
    assert [row[1] for row in stored] == [f"m{i}" for i in range(7)]


def test_the_batch_size_follows_what_the_sqlite_library_binds() -> None:
    engine = _engine()
    with engine.connect() as conn:
        limit = _variable_limit(conn)
    assert limit >= 999  # 32,766 since SQLite 3.32
    at = datetime(2026, 12, 6, 10, 30, tzinfo=UTC)
    names = ("message_id", "org_id", "status", "occurred_at", "source")
    per_statement = limit // len(names)
    events = [
        {"message_id": f"m{i}", "org_id": "o1", "status": "sent", "occurred_at": at, "source": "w"}
        for i in range(per_statement + 1)
    ]
    statements: list[str] = []
    sa.event.listen(
        engine, "before_cursor_execute", lambda *args: statements.append(args[2]), named=False
    )
    with engine.begin() as conn:
        DriverInsert(EVENTS).execute(conn, names, events)
    assert [text.count("(?") for text in statements] == [per_statement, 1]
    assert len(_stored(engine, "message_events")) == per_statement + 1
