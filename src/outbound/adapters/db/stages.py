"""What the database work of each stage of a message costs: statements, transactions, CPU.

A stage is a name held in a context variable while the work of one step runs: ``accept`` (a
send request), ``claim`` and ``record`` (the dispatcher taking due messages and writing what
the provider answered), ``dispatch`` (the rest of the dispatcher's work: send contexts, sending
slots, consent checks, housekeeping), ``report`` (delivery reports), ``inbound`` (customers'
messages), and ``other``. Context variables follow the work into ``asyncio.to_thread``, so
database calls made in a worker thread count for the stage that asked for them.

Counted per process, for the benchmark and for operators (``/metrics``):

- statements the database runs (``BEGIN`` and ``COMMIT`` left out): an ``executemany`` runs
  its statement once per parameter set, and counts that many (a multi-row ``INSERT`` that
  SQLAlchemy batches from one, once per batch);
- transactions begun (read sessions included: each read is one on both databases);
- CPU seconds of the threads while they were inside a session of the stage: the work of the
  ORM, of the driver and of the code between statements, not the database server's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.engine.interfaces import ExecuteStyle

__all__ = ["STAGES", "StageCounters", "current_stage", "in_stage", "run_in_stage", "stage"]

STAGES = ("accept", "claim", "record", "dispatch", "report", "inbound", "other")

_stage: ContextVar[str] = ContextVar("outbound_database_stage", default="other")
_P = ParamSpec("_P")
_R = TypeVar("_R")


def current_stage() -> str:
    return _stage.get()


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Count the database work done inside as ``name``'s."""
    token = _stage.set(name)
    try:
        yield
    finally:
        _stage.reset(token)


async def run_in_stage(name: str, awaitable: Awaitable[_R]) -> _R:
    """Await ``awaitable`` with its database work (and that of the tasks it starts) counted
    as ``name``'s."""
    with stage(name):
        return await awaitable


def in_stage(name: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorate a synchronous function whose database work is ``name``'s."""

    def decorate(function: Callable[_P, _R]) -> Callable[_P, _R]:
        @wraps(function)
        def staged(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            with stage(name):
                return function(*args, **kwargs)

        return staged

    return decorate


class StageCounters:
    """Statements, transactions and CPU seconds by stage, for one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.statements = dict.fromkeys(STAGES, 0)
        self.transactions = dict.fromkeys(STAGES, 0)
        self.cpu_seconds = dict.fromkeys(STAGES, 0.0)

    def watch(self, engine: Engine) -> None:
        """Count the statements and transactions of ``engine`` (and of engines made from it
        with other execution options)."""

        @event.listens_for(engine, "after_cursor_execute")
        def _statement(
            _conn: Any, _cursor: Any, statement: str, params: Any, context: Any, many: bool
        ) -> None:
            if statement.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
                return
            # One batch of "insertmanyvalues" is a single statement, its parameters flattened.
            runs = (
                len(params)
                if many and context.execute_style is not ExecuteStyle.INSERTMANYVALUES
                else 1
            )
            name = _stage.get()
            with self._lock:
                self.statements[name] = self.statements.get(name, 0) + runs

        @event.listens_for(engine, "begin")
        def _begin(_conn: Any) -> None:
            name = _stage.get()
            with self._lock:
                self.transactions[name] = self.transactions.get(name, 0) + 1

    @contextmanager
    def timed(self) -> Iterator[None]:
        """Add the CPU time this thread spends inside to the current stage."""
        began = time.thread_time()
        try:
            yield
        finally:
            spent = time.thread_time() - began
            name = _stage.get()
            with self._lock:
                self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + spent

    def snapshot(self) -> dict[str, tuple[int, int, float]]:
        """``{stage: (statements, transactions, cpu seconds)}``."""
        with self._lock:
            return {
                name: (
                    self.statements.get(name, 0),
                    self.transactions.get(name, 0),
                    self.cpu_seconds.get(name, 0.0),
                )
                for name in {*self.statements, *self.transactions, *self.cpu_seconds}
            }
