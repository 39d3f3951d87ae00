"""Database engines and transactions for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with a busy timeout. pysqlite would otherwise start transactions lazily
and deferred, so a reader that later writes can fail to upgrade its lock; here write transactions
start with ``BEGIN IMMEDIATE`` (SQLite's single writer) and reads with a plain ``BEGIN``.

SQLite's own wait for its write lock is a sleep that grows to 100 ms between tries, with no
order among the waiters: under load a writer can wait for seconds while others come and go.
So writers queue before ``BEGIN IMMEDIATE``: first in this process, in arrival order
(:class:`WriterQueue`), then across processes on the same file, with an advisory lock on a
file beside the database (``<database>-writer``); the process's lock is freed the moment its
holder commits, and the next in line starts at once. A writer that has waited the busy timeout
gets the same ``database is locked`` error SQLite would give. Migrations take the same turn
(:meth:`Database.exclusive`), so a process starting while another migrates waits for it
instead of failing; a command line may wait longer and say so (:meth:`Database.patient`).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import GenerativeSelect

from outbound.adapters.db.stages import StageCounters

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "Database",
    "Presence",
    "WriterQueue",
    "affected",
    "create_engine",
    "dump_json",
    "load_json",
]

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
_BEGIN_OPTION = "outbound_sqlite_begin"
_QUEUED = "outbound_queued"

_Select = TypeVar("_Select", bound=GenerativeSelect)


def dump_json(value: Any) -> str:
    """JSON columns' and parameters' text, written by orjson (in C); what orjson refuses (an
    integer beyond 64 bits) is written by the standard library, as before."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


def load_json(text: str | bytes) -> Any:
    """A JSON column's value, read by orjson; the standard library reads what it refuses."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    """Create an engine tuned for the backend the URL names."""
    codec: dict[str, Any] = {"json_serializer": dump_json, "json_deserializer": load_json}
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            **codec,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=pool_size,
            max_overflow=pool_size,
            poolclass=sa.pool.QueuePool,
        )
        _tune_sqlite(engine)
        # An INSERT of many rows is a multi-row VALUES, a statement per batch (SQLite runs
        # each row of an executemany as a statement of its own).
        engine.dialect.use_insertmanyvalues_wo_returning = True
        return engine
    return sa.create_engine(
        url, **codec, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take control of BEGIN away from pysqlite (see the module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


_HANDED_OVER = -1


def _locked_error() -> sa.exc.OperationalError:
    return sa.exc.OperationalError(
        "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
    )


class WriterQueue:
    """SQLite's writers in arrival order: in this process, then across processes.

    ``hold()`` returns once every writer that asked before it (in this process) is done and
    no other process writes to the same database file. ``hold(urgent=True)`` (a client
    waiting for an answer, such as a send request) goes ahead of background writers (the
    dispatcher, status reports), but lets one of them through after every
    ``URGENT_STREAK`` urgent writers in a row, so that background work never starves. A
    thread that already holds it and asks again gets an error at once, where SQLite would
    wait for itself until the timeout.
    """

    URGENT_STREAK = 3

    def __init__(
        self,
        lock_path: str | None,
        timeout: float,
        *,
        notice: Callable[[], None] | None = None,
        notice_after: float = 1.0,
    ) -> None:
        self.notice = notice
        """Called once per wait, when a writer has waited ``notice_after`` seconds."""
        self.notice_after = notice_after
        self._mutex = threading.Lock()
        self._waiters: deque[threading.Lock] = deque()
        self._urgent: deque[threading.Lock] = deque()
        self._streak = 0
        self._owner: int | None = None
        self.timeout = timeout
        self._lock_path = lock_path
        self._fd: int | None = None

    @contextmanager
    def hold(self, *, urgent: bool = False) -> Iterator[None]:
        started = time.monotonic()
        deadline = started + self.timeout
        noticed = [self.notice is None]

        def waited() -> None:
            if not noticed[0] and time.monotonic() - started >= self.notice_after:
                noticed[0] = True
                if self.notice is not None:
                    self.notice()

        self._acquire(deadline, urgent, waited)
        try:
            self._lock_file(deadline, waited)
        except BaseException:
            self._release()
            raise
        try:
            yield
        finally:
            try:
                self._unlock_file()
            finally:
                self._release()

    def _acquire(self, deadline: float, urgent: bool, waited: Callable[[], None]) -> None:
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                raise RuntimeError("a write transaction was opened inside another one")
            if self._owner is None and not self._waiters and not self._urgent:
                self._owner = me
                return
            turn = threading.Lock()
            turn.acquire()
            line = self._urgent if urgent else self._waiters
            line.append(turn)
        try:
            got = turn.acquire(
                timeout=max(0.0, min(deadline, self._notice_at()) - time.monotonic())
            )
            if not got:
                waited()
                got = turn.acquire(timeout=max(0.0, deadline - time.monotonic()))
        except BaseException:
            # Interrupted while waiting (KeyboardInterrupt): leave the line, or pass on a turn
            # handed over meanwhile, so that nobody waits for a writer that went away.
            with self._mutex:
                if turn in line:
                    line.remove(turn)
                    raise
                self._owner = me
            self._release()
            raise
        if got:
            with self._mutex:
                self._owner = me  # handed over by the previous holder
            return
        with self._mutex:
            if turn in line:
                line.remove(turn)
                raise _locked_error()
        # Handed over just as the wait ended: the turn is ours after all.
        with self._mutex:
            self._owner = me

    def _notice_at(self) -> float:
        return time.monotonic() + self.notice_after if self.notice is not None else float("inf")

    def _release(self) -> None:
        with self._mutex:
            if self._urgent and (self._streak < self.URGENT_STREAK or not self._waiters):
                self._streak += 1
                turn = self._urgent.popleft()
            elif self._waiters:
                self._streak = 0
                turn = self._waiters.popleft()
            else:
                self._owner = None
                return
            # The next in line holds it now; newcomers queue behind until it takes over.
            self._owner = _HANDED_OVER
            turn.release()

    def _lock_file(self, deadline: float, waited: Callable[[], None]) -> None:
        if self._lock_path is None or fcntl is None:
            return
        if self._fd is None:
            try:
                self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                # Writers of this process still take turns; other processes fall back on
                # SQLite's own busy wait.
                log.warning(
                    "cannot open %s (%s): SQLite's writers queue in-process only",
                    self._lock_path,
                    exc,
                )
                self._lock_path = None
                return
        pause = 0.0002
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _locked_error() from None
                waited()
                time.sleep(pause)
                pause = min(pause * 2, 0.002)
            except OSError as exc:
                # A file system without locks (some network mounts): as if it could not open.
                log.warning(
                    "cannot lock %s (%s): SQLite's writers queue in-process only",
                    self._lock_path,
                    exc,
                )
                os.close(self._fd)
                self._fd = None
                self._lock_path = None
                return

    def _unlock_file(self) -> None:
        if self._fd is not None and fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the lock file (it opens again on the next write); not while a writer holds it."""
        with self._mutex:
            if self._fd is not None and self._owner is None:
                os.close(self._fd)
                self._fd = None


def _beside_database(engine: Engine, suffix: str) -> str | None:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return f"{os.path.abspath(database)}-{suffix}"


def _writer_lock_path(engine: Engine) -> str | None:
    return _beside_database(engine, "writer")


class Presence:
    """Which processes of a kind are alive, for a SQLite database: each holds a shared lock on
    a file beside it (``<database>-<kind>``) while it runs, which the system drops the moment
    the process ends, however it ends.

    :meth:`join` tells the first one in whether it is alone, and lets it act on that while it
    still holds the lock alone: a dispatcher that finds no other one alive knows that every
    lease still running belongs to a dead one. Without a file (PostgreSQL, a database in
    memory, a file system without locks) nobody is ever alone.
    """

    def __init__(self, path: str | None) -> None:
        self._path = path
        self._fd: int | None = None

    def join(self, when_alone: Callable[[], object]) -> bool:
        """Hold the shared lock until :meth:`leave`; if no other process held it, call
        ``when_alone`` first (under an exclusive lock) and return True."""
        if self._path is None or fcntl is None or self._fd is not None:
            return False
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning("cannot open %s (%s): other processes cannot be seen", self._path, exc)
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                alone = True
            except BlockingIOError:
                alone = False
            if alone:
                when_alone()
            # Waits, at most, for another process's when_alone.
            fcntl.flock(fd, fcntl.LOCK_SH)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return alone

    def leave(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Database:
    """Owns the engine; hands out read sessions and write transactions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._write_engine = (
            engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
            if self.dialect == "sqlite"
            else engine
        )
        self._writers = (
            WriterQueue(_writer_lock_path(engine), SQLITE_BUSY_TIMEOUT_MS / 1000)
            if self.dialect == "sqlite"
            else None
        )
        self.stages = StageCounters()
        """Statements, transactions and CPU of this process's sessions, by stage."""
        self.stages.watch(engine)
        self._listeners: dict[str, list[Callable[[], None]]] = {}
        self._listeners_lock = threading.Lock()
        self.write_observer: Callable[[float, float], None] | None = None
        """Called after each write transaction with the seconds it waited for its turn (SQLite)
        and the seconds it then took, commit included."""

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def for_update(self, query: _Select, *, skip_locked: bool = False) -> _Select:
        """``query`` locking the rows it reads until commit, where the database can.

        PostgreSQL adds ``FOR UPDATE`` (``SKIP LOCKED`` with ``skip_locked``: rows another
        transaction holds are passed over rather than waited for). SQLite has no row locks:
        there the write transaction itself is the lock (``BEGIN IMMEDIATE``, one writer at a
        time), and the query is returned as it is.
        """
        if self.dialect == "sqlite":
            return query
        return query.with_for_update(skip_locked=skip_locked)

    @contextmanager
    def transaction(self, *, urgent: bool = False) -> Iterator[Session]:
        """A write transaction, committed on success and rolled back on error.

        ``urgent``: a client waits for it (SQLite: it goes ahead of background writers).
        Once it is committed, the listeners of what it queued are told (:meth:`queued`).
        """
        began = time.perf_counter()
        turn = began
        try:
            if self._writers is None:
                with (
                    self.stages.timed(),
                    Session(self._write_engine, expire_on_commit=False) as session,
                    session.begin(),
                ):
                    yield session
            else:
                with self._writers.hold(urgent=urgent):
                    turn = time.perf_counter()
                    with (
                        self.stages.timed(),
                        Session(self._write_engine, expire_on_commit=False) as session,
                        session.begin(),
                    ):
                        yield session
        finally:
            if self.write_observer is not None:
                ended = time.perf_counter()
                self.write_observer(turn - began, ended - turn)
        self._tell(session)

    @staticmethod
    def queued(session: Session, kind: str) -> None:
        """Note that ``session``'s transaction queues work of ``kind`` (webhook deliveries):
        once it commits, this process's listeners of ``kind`` are told (:meth:`listen`)."""
        session.info.setdefault(_QUEUED, set()).add(kind)

    def listen(self, kind: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (from the committing thread) after each transaction of this
        process that queued work of ``kind``; returns what stops it. A loop that polls for
        that work then takes it at once, and may poll less often for the work of others."""
        with self._listeners_lock:
            self._listeners.setdefault(kind, []).append(callback)

        def stop() -> None:
            with self._listeners_lock:
                self._listeners.get(kind, []).remove(callback)

        return stop

    def _tell(self, session: Session) -> None:
        kinds = session.info.get(_QUEUED)
        if not kinds:
            return
        with self._listeners_lock:
            callbacks = [c for kind in kinds for c in self._listeners.get(kind, ())]
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a listener's bug must not fail a committed transaction
                log.exception("telling a listener of committed work failed")

    def presence(self, kind: str) -> Presence:
        """The processes of ``kind`` alive on this database, as far as SQLite can tell
        (:class:`Presence`); on PostgreSQL, none can be seen."""
        return Presence(_beside_database(self.engine, kind) if self.dialect == "sqlite" else None)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (its transaction is rolled back at the end)."""
        with self.stages.timed(), Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """SQLite: the writers' turn, for work that writes outside :meth:`transaction` (schema
        migrations): writers of this process and of others wait until it ends. PostgreSQL:
        nothing (migrations take an advisory lock there)."""
        if self._writers is None:
            yield
            return
        with self._writers.hold(urgent=True):
            yield

    def patient(self, timeout: float, notice: Callable[[], None]) -> None:
        """SQLite: wait up to ``timeout`` seconds for the writers' turn (instead of the busy
        timeout), calling ``notice`` once a wait has lasted a second. For a command line,
        which would rather wait for a running service than fail with ``database is locked``.
        """
        if self._writers is not None:
            self._writers.timeout = timeout
            self._writers.notice = notice

    def dispose(self) -> None:
        self.engine.dispose()
        if self._writers is not None:
            self._writers.close()


def affected(result: object) -> int:
    """Rows an UPDATE or DELETE changed (its cursor's ``rowcount``)."""
    return int(getattr(result, "rowcount", 0) or 0)
