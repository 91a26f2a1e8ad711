"""`carbs token`, `carbs submit --server` and `carbs remote` against a real server; `carbs serve`
as a real process that shuts down cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from service_helpers import LiveServer, free_port, seed_sweep, toy_spec

from experiments.cli import main
from experiments.service.auth import verify_token
from experiments.store.repository import Store


def test_token_create_prints_a_working_token(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'tok.db'}"
    assert main(["token", "create", "erin", "--admin", "--storage", url]) == 0
    token = capsys.readouterr().out.strip()
    store = Store(url)
    who = verify_token(store.session, token)
    assert who is not None and who.name == "erin" and who.is_admin
    assert main(["token", "list", "--storage", url]) == 0
    assert "erin (admin): 1 live token(s)" in capsys.readouterr().out
    assert main(["token", "revoke", "erin", "--storage", url]) == 0
    assert verify_token(store.session, token) is None
    store.dispose()


def test_submit_uses_the_token_from_the_environment(
    live_server: LiveServer, tmp_path: Path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "s.yaml"
    spec.write_text(toy_spec("from-cli"))
    monkeypatch.setenv("CARBS_TOKEN", live_server.tokens["bob"])
    assert main(["submit", str(spec), "--server", live_server.url]) == 0
    out = capsys.readouterr().out
    assert "submitted sweep 'from-cli' (owner bob): queued" in out
    assert f"{live_server.url}/sweeps/from-cli" in out
    assert main(["remote", "list", "--server", live_server.url]) == 0
    assert "from-cli: queued (owner bob)" in capsys.readouterr().out
    assert main(["remote", "cancel", "from-cli", "--server", live_server.url]) == 0
    assert "cancelled" in capsys.readouterr().out


def test_submit_reads_the_token_file_and_reports_spec_errors(
    live_server: LiveServer, tmp_path: Path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("CARBS_TOKEN", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    (tmp_path / "cfg" / "carbs").mkdir(parents=True)
    (tmp_path / "cfg" / "carbs" / "token").write_text(live_server.tokens["alice"] + "\n")
    spec = tmp_path / "bad.yaml"
    spec.write_text(toy_spec("bad-cli").replace("max_trials: 12", "max_trials: -3"))
    assert main(["submit", str(spec), "--server", live_server.url]) == 2
    assert "budget.max_trials: Input should be greater than 0" in capsys.readouterr().err


def test_submit_without_token_or_server_says_how_to_fix_it(
    live_server: LiveServer, tmp_path: Path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("CARBS_TOKEN", raising=False)
    monkeypatch.delenv("CARBS_SERVER", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty"))
    spec = tmp_path / "s.yaml"
    spec.write_text(toy_spec("x"))
    assert main(["submit", str(spec), "--server", live_server.url]) == 2
    assert "CARBS_TOKEN" in capsys.readouterr().err
    assert main(["submit", str(spec)]) == 2
    assert "--server" in capsys.readouterr().err


def test_remote_status_of_someone_elses_sweep_needs_no_token(
    live_server: LiveServer, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    seed_sweep(live_server.storage, "public", "alice", n=3)
    monkeypatch.delenv("CARBS_TOKEN", raising=False)
    assert main(["remote", "status", "public", "--server", live_server.url]) == 0
    assert capsys.readouterr().out.startswith("public: finished (owner alice)")


@pytest.mark.slow
def test_carbs_serve_process_answers_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    cmd = [sys.executable, "-m", "experiments.cli", "serve", "--storage", url]
    cmd += ["--port", str(port), "--no-scheduler"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ)
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stdout.read()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "carbs serve did not come up"
                time.sleep(0.3)
        health = r.json()
        assert health["ok"] is True and health["running"] == []
        assert health["ray"]["mode"] == "local"  # its own Ray, started when a sweep needs it
        assert "Sweeps" in httpx.get(f"http://127.0.0.1:{port}/").text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    # uvicorn re-raises the signal after its graceful shutdown, so -SIGTERM is a clean exit
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert "Application shutdown complete" in out
