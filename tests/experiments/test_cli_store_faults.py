"""Store faults through the CLI: one line naming the store and the fix, a non-zero exit, no
traceback, nothing created by a read-only command, and no minute of retries on a bad URL."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from experiments.cli import main
from experiments.store.engine import describe_store_error
from experiments.store.repository import Store

TOY_SPEC = Path(__file__).resolve().parents[2] / "experiments" / "sweeps" / "toy_chinchilla.yaml"


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_read_only_commands_create_nothing(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    for argv in (["status"], ["report", "s"], ["export", "s"], ["token", "list"], ["cancel", "s"]):
        assert main([*argv, "--storage", f"sqlite:///{missing}"]) == 3
        assert "no store at" in _one_line_error(capsys)
    assert not (tmp_path / "no").exists()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CARBS_STORAGE", raising=False)
    assert main(["status"]) == 3  # the default ./carbs.db is not created either
    assert "run a sweep first" in _one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_a_corrupted_file_and_a_missing_driver_are_named(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(b"this is not a database" * 100)
    assert main(["status", "--storage", f"sqlite:///{bad}"]) == 3
    assert "not a readable SQLite database" in _one_line_error(capsys)
    assert main(["status", "--storage", "mysql://u@h/db"]) == 3
    assert "no database driver for 'mysql'" in _one_line_error(capsys)
    assert main(["status", "--storage", "not a url"]) == 3
    assert "is not a database URL" in _one_line_error(capsys)


def test_an_unreachable_postgres_fails_at_once_without_its_password(capsys) -> None:  # type: ignore[no-untyped-def]
    for argv in (["status"], ["run", str(TOY_SPEC)]):
        start = time.monotonic()
        assert main([*argv, "--storage", "postgresql+psycopg://u:topsecret@127.0.0.1:9/db"]) == 3
        took = time.monotonic() - start
        err = _one_line_error(capsys)
        assert "no database server answers" in err and "topsecret" not in err and "u:***@" in err
        assert took < 3, argv  # one probe: no retry window (it was 11 s), Ray never started


@pytest.mark.postgres
def test_a_wrong_database_role_or_sslmode_on_a_live_server_says_the_fix(capsys) -> None:  # type: ignore[no-untyped-def]
    base = os.environ.get("CARBS_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("needs CARBS_TEST_POSTGRES_URL (a live server to be wrong about)")
    url = make_url(base)
    for wrong, fix in (
        (url.set(database="carbs_no_such_db"), "create it (`createdb carbs_no_such_db`)"),
        (url.set(username="carbs_no_such_role"), "create it (`createuser carbs_no_such_role`)"),
        (url.update_query_dict({"sslmode": "require"}), "the URL disagree on SSL"),
    ):
        start = time.monotonic()
        assert main(["status", "--storage", wrong.render_as_string(hide_password=False)]) == 3
        assert fix in _one_line_error(capsys)
        assert time.monotonic() - start < 3


def test_a_lock_held_by_another_process_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    Store(url).dispose()
    holder = sqlite3.connect(tmp_path / "locked.db")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        waiter = sqlite3.connect(tmp_path / "locked.db", timeout=0.1)
        with pytest.raises(sqlite3.OperationalError) as err:
            waiter.execute("BEGIN EXCLUSIVE")
        waiter.close()
    finally:
        holder.rollback()
        holder.close()
    line = describe_store_error(err.value, url)
    assert "stayed locked by another process" in line and "\n" not in line


def test_ctrl_c_while_opening_the_store_is_one_line_and_exit_130(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import experiments.store.startup

    def interrupted(url: str, *, create: bool = False) -> Store:
        raise KeyboardInterrupt

    monkeypatch.setattr(experiments.store.startup, "open_store", interrupted)
    assert main(["status", "--storage", "sqlite:///x.db"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("interrupted: ") and "\n" not in err and "Traceback" not in err
