"""SQLite's writers queue in arrival order, in one process and across processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from outbound.adapters.db.engine import Database, WriterQueue, create_engine


def _database(path: Path) -> Database:
    db = Database(create_engine(f"sqlite:///{path}"))
    with db.transaction() as session:
        session.execute(sa.text("CREATE TABLE IF NOT EXISTS log (n INTEGER, who TEXT)"))
    return db


def test_writers_of_one_process_go_in_arrival_order(tmp_path: Path) -> None:
    db = _database(tmp_path / "order.db")
    order: list[int] = []
    started = threading.Event()
    release = threading.Event()

    def first() -> None:
        with db.transaction() as session:
            started.set()
            release.wait(5)
            session.execute(sa.text("INSERT INTO log VALUES (0, 'first')"))
            order.append(0)

    def writer(n: int) -> None:
        with db.transaction() as session:
            session.execute(sa.text("INSERT INTO log VALUES (:n, 'next')"), {"n": n})
            order.append(n)

    holder = threading.Thread(target=first)
    holder.start()
    assert started.wait(5)
    threads = []
    for n in range(1, 9):
        thread = threading.Thread(target=writer, args=(n,))
        thread.start()
        threads.append(thread)
        time.sleep(0.02)  # each one queued before the next arrives
    release.set()
    for thread in [holder, *threads]:
        thread.join(10)
    assert order == list(range(9))
    with db.read() as session:
        assert session.execute(sa.text("SELECT count(*) FROM log")).scalar_one() == 9
    db.dispose()


def test_urgent_writers_go_first_but_background_writers_still_get_turns() -> None:
    queue = WriterQueue(None, timeout=30)
    order: list[str] = []
    release = threading.Event()
    held = threading.Event()

    def holder() -> None:
        with queue.hold():
            held.set()
            release.wait(5)

    def writer(name: str, urgent: bool) -> None:
        with queue.hold(urgent=urgent):
            order.append(name)

    first = threading.Thread(target=holder)
    first.start()
    assert held.wait(5)
    names = ["b1", "b2", "u1", "u2", "u3", "u4", "u5"]
    threads = []
    for name in names:
        thread = threading.Thread(target=writer, args=(name, name.startswith("u")))
        thread.start()
        threads.append(thread)
        time.sleep(0.02)
    release.set()
    for thread in [first, *threads]:
        thread.join(10)
    # Three urgent writers, then the oldest background one, then the rest by the same rule.
    assert order == ["u1", "u2", "u3", "b1", "u4", "u5", "b2"]


def test_a_failed_transaction_lets_the_next_writer_in(tmp_path: Path) -> None:
    db = _database(tmp_path / "fail.db")
    with pytest.raises(ValueError), db.transaction() as session:
        session.execute(sa.text("INSERT INTO log VALUES (1, 'rolled back')"))
        raise ValueError("boom")
    with db.transaction() as session:
        session.execute(sa.text("INSERT INTO log VALUES (2, 'kept')"))
    with db.read() as session:
        rows = session.execute(sa.text("SELECT n FROM log")).scalars().all()
    assert rows == [2]
    db.dispose()


def test_a_write_transaction_inside_another_is_refused_at_once(tmp_path: Path) -> None:
    db = _database(tmp_path / "nested.db")
    began = time.monotonic()
    with db.transaction(), pytest.raises(RuntimeError, match="inside another"):
        with db.transaction():
            pass
    assert time.monotonic() - began < 5  # not SQLite's 30 s busy wait
    with db.transaction() as session:  # and the queue is free again
        session.execute(sa.text("INSERT INTO log VALUES (1, 'after')"))
    db.dispose()


def test_a_writer_waiting_past_the_timeout_gets_database_is_locked(tmp_path: Path) -> None:
    queue = WriterQueue(None, timeout=0.2)
    held = threading.Event()
    done = threading.Event()

    def holder() -> None:
        with queue.hold():
            held.set()
            done.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(5)
    with pytest.raises(sa.exc.OperationalError, match="database is locked"), queue.hold():
        pass
    done.set()
    thread.join(5)
    with queue.hold():  # the timed-out waiter left the line
        pass


_OTHER_PROCESS = textwrap.dedent(
    """
    import sys, time
    import sqlalchemy as sa
    from outbound.adapters.db.engine import Database, create_engine

    db = Database(create_engine(f"sqlite:///{sys.argv[1]}"))
    for n in range(int(sys.argv[2])):
        with db.transaction() as session:
            count = session.execute(sa.text("SELECT count(*) FROM log")).scalar_one()
            time.sleep(0.001)  # a read-then-write that only a held lock keeps consistent
            session.execute(
                sa.text("INSERT INTO log VALUES (:n, :who)"), {"n": count, "who": sys.argv[3]}
            )
    db.dispose()
    """
)


def test_writers_of_several_processes_all_get_through_in_turn(tmp_path: Path) -> None:
    # Three processes writing as fast as they can: none fails waiting for the others, and each
    # write sees every earlier one (see the next test for the lock file itself).
    path = tmp_path / "processes.db"
    db = _database(path)
    per_process = 150
    processes = [
        subprocess.Popen([sys.executable, "-c", _OTHER_PROCESS, str(path), str(per_process), who])
        for who in ("a", "b", "c")
    ]
    for process in processes:
        assert process.wait(120) == 0
    with db.read() as session:
        rows = session.execute(sa.text("SELECT n, who FROM log ORDER BY rowid")).all()
    # Each writer saw every earlier write: the counts it recorded are 0, 1, 2, ... in order.
    assert [n for n, _who in rows] == list(range(3 * per_process))
    assert {who for _n, who in rows} == {"a", "b", "c"}
    db.dispose()


_WRITE_ONCE = textwrap.dedent(
    """
    import sys, time
    import sqlalchemy as sa
    from outbound.adapters.db.engine import Database, create_engine

    db = Database(create_engine(f"sqlite:///{sys.argv[1]}"))
    print("ready", flush=True)
    with db.transaction() as session:
        session.execute(sa.text("INSERT INTO log VALUES (1, 'other')"))
    print(time.time(), flush=True)
    db.dispose()
    """
)


def test_another_process_waits_for_the_writer_lock_file(tmp_path: Path) -> None:
    path = tmp_path / "file-lock.db"
    db = _database(path)
    queue = WriterQueue(f"{path}-writer", timeout=30)
    with queue.hold():  # the file lock alone: SQLite itself is not locked
        process = subprocess.Popen(
            [sys.executable, "-c", _WRITE_ONCE, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        released_at = time.time()
    queue.close()
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    committed_at = float(rest.split()[0])
    assert committed_at >= released_at
    with db.read() as session:
        assert session.execute(sa.text("SELECT count(*) FROM log")).scalar_one() == 1
    db.dispose()


def test_without_a_lock_file_writers_still_take_turns_in_process(tmp_path: Path) -> None:
    queue = WriterQueue(str(tmp_path / "no-such-directory" / "db-writer"), timeout=5)
    with queue.hold():  # the lock file cannot be made: in-process turns only, no error
        pass
    order: list[int] = []
    threads = [
        threading.Thread(target=lambda n=n: _hold_and_log(queue, order, n)) for n in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(order) == list(range(5))
    queue.close()


def _hold_and_log(queue: WriterQueue, order: list[int], n: int) -> None:
    with queue.hold():
        order.append(n)


def test_a_file_system_without_locks_leaves_the_in_process_turns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from outbound.adapters.db import engine

    def no_locks(_fd: int, _op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(engine.fcntl, "flock", no_locks)
    queue = WriterQueue(str(tmp_path / "db-writer"), timeout=5)
    for _ in range(2):  # the first write finds out, the next ones no longer try
        with queue.hold():
            pass
    queue.close()
