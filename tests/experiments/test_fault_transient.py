"""Which database errors are retried, and how: lock contention and server restarts are; a
schema or constraint error is a bug and surfaces at once."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from experiments.store.repository import Store
from experiments.store.transient import call_with_retry, is_transient


def _wrap(orig: Exception) -> OperationalError:
    return OperationalError("UPDATE trials ...", {}, orig)


def test_lock_contention_and_server_restarts_are_transient() -> None:
    assert is_transient(_wrap(sqlite3.OperationalError("database is locked")))
    assert is_transient(_wrap(psycopg.errors.AdminShutdown("terminating connection")))
    assert is_transient(_wrap(psycopg.errors.CannotConnectNow("the database system is starting")))
    assert is_transient(_wrap(psycopg.errors.DeadlockDetected("deadlock detected")))
    assert is_transient(_wrap(psycopg.OperationalError("connection failed: Connection refused")))


def test_schema_and_constraint_errors_are_not_transient() -> None:
    assert not is_transient(_wrap(sqlite3.OperationalError("no such table: trials")))
    assert not is_transient(_wrap(psycopg.errors.UndefinedTable("relation does not exist")))
    assert not is_transient(IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE")))
    assert not is_transient(ValueError("database is locked"))


def test_retry_runs_the_unit_of_work_again_until_it_succeeds() -> None:
    calls: list[float] = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise _wrap(sqlite3.OperationalError("database is locked"))
        return "done"

    assert call_with_retry(flaky, retry_s=5) == "done" and len(calls) == 3


def test_retry_gives_up_after_its_window_and_never_retries_bugs() -> None:
    calls = 0

    def down() -> None:
        nonlocal calls
        calls += 1
        raise _wrap(psycopg.errors.AdminShutdown("terminating connection"))

    t0 = time.monotonic()
    with pytest.raises(OperationalError):
        call_with_retry(down, retry_s=0.5)
    assert 0.2 < time.monotonic() - t0 < 3 and calls > 2

    def bug() -> None:
        nonlocal calls
        calls += 1
        raise _wrap(sqlite3.OperationalError("no such column: x"))

    calls = 0
    with pytest.raises(OperationalError):
        call_with_retry(bug, retry_s=5)
    assert calls == 1


def test_store_waits_out_a_writer_holding_the_sqlite_lock(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = Store(f"sqlite:///{path}")
    sweep, _ = store.get_or_create_sweep("s", {"search_space": {}}, "yaml")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process is writing
    other.execute("UPDATE sweeps SET status = 'busy'")
    released = time.monotonic() + 1.0
    threading.Timer(1.0, lambda: other.execute("COMMIT")).start()
    (t,) = store.create_trials(sweep.id, [({"x": 1.0}, None)])
    assert time.monotonic() >= released - 0.05 and t.number == 0
    other.close()
