"""Opening the directory database while other connections hold it.

Workers that opened a new database at once failed once in CI with
"database is locked": two connections switching a fresh database to WAL
can each hold what the other needs, and SQLite then answers BUSY at once
instead of calling its busy handler (it would deadlock). The supervisor
now creates the database before any worker starts, and the switch is
retried up to the busy timeout; a switch SQLite declined (it answers the
old mode) is retried too.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from mailyard.directory import store
from mailyard.directory.errors import StorageError
from mailyard.directory.store import Directory


def _reader_holding(path: Path, seconds: float, started: threading.Event) -> None:
    """A rollback-mode reader keeping its shared lock for ``seconds``."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    started.set()
    time.sleep(seconds)
    conn.execute("COMMIT")
    conn.close()


def _fresh_rollback_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()


def test_open_waits_for_a_reader_blocking_the_switch_to_wal(tmp_path: Path) -> None:
    path = tmp_path / "directory.sqlite"
    _fresh_rollback_database(path)
    started = threading.Event()
    holder = threading.Thread(target=_reader_holding, args=(path, 0.3, started))
    holder.start()
    assert started.wait(10)
    began = time.monotonic()
    directory = Directory.open(str(path))
    waited = time.monotonic() - began
    holder.join()
    try:
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
    finally:
        directory.close()
    assert waited >= 0.2  # it waited for the reader instead of failing or staying in rollback mode


class _Contended:
    """A connection whose first answers to the WAL switch are those of a
    contended database: "locked" errors and the old mode."""

    def __init__(self, answers: list[object]) -> None:
        self.answers = answers
        self.calls = 0

    def execute(self, sql: str) -> _Contended:
        assert sql == "PRAGMA journal_mode = WAL"
        self.calls += 1
        answer = self.answers.pop(0) if self.answers else "wal"
        if isinstance(answer, Exception):
            raise answer
        self._row = (answer,)
        return self

    def fetchone(self) -> tuple[object]:
        return self._row


def test_the_switch_is_retried_while_the_database_is_contended() -> None:
    conn = _Contended([sqlite3.OperationalError("database is locked"), "delete",
                       sqlite3.OperationalError("database is locked")])
    store._use_wal(conn)  # type: ignore[arg-type]
    assert conn.calls == 4


def test_other_errors_are_not_retried() -> None:
    conn = _Contended([sqlite3.OperationalError("disk I/O error")])
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        store._use_wal(conn)  # type: ignore[arg-type]
    assert conn.calls == 1


def test_a_contention_past_the_busy_timeout_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "BUSY_TIMEOUT_MS", 50)
    conn = _Contended(["delete"] * 1000)
    with pytest.raises(StorageError, match="journal mode stayed 'delete'"):
        store._use_wal(conn)  # type: ignore[arg-type]


def test_a_lock_held_past_the_busy_timeout_is_reported(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "BUSY_TIMEOUT_MS", 100)
    path = tmp_path / "directory.sqlite"
    _fresh_rollback_database(path)
    started = threading.Event()
    holder = threading.Thread(target=_reader_holding, args=(path, 1.0, started))
    holder.start()
    assert started.wait(10)
    try:
        with pytest.raises(StorageError, match=r"WAL|locked"):
            Directory.open(str(path))
    finally:
        holder.join()


def _open_close(path: str) -> None:
    Directory.open(path).close()


def test_many_processes_create_one_database_at_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for round_ in range(5):
        path = str(tmp_path / f"directory-{round_}.sqlite")
        workers = [context.Process(target=_open_close, args=(path,)) for _ in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert [worker.exitcode for worker in workers] == [0] * 6
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == (
            store.SCHEMA_VERSION)
        conn.close()
