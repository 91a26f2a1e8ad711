"""Attacks on a live service: code execution through entry points, work bombs, oversized bodies,
secrets and writes by readers. Each must be refused quickly, with the server still answering."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import yaml
from evil_hook import MARK_ENV
from service_helpers import LiveServer, seed_sweep, toy_spec, wait_for
from sqlalchemy import create_engine, func, select

from experiments.store.models import Base
from experiments.store.repository import Store

ENTRY_FIELDS = ("function", "cost_function", "size_function")
# callables that run code when a fit or a worker calls them with the params dict
COUSINS = (
    "logging.config:dictConfig",
    "subprocess:getoutput",
    "os:system",
    "builtins:exec",
    "pickle:loads",
    "evil_hook:run",
)
HANDLER = {"version": 1, "handlers": {"h": {"()": "subprocess.getoutput", "cmd": "touch pwned"}}}


@pytest.fixture
def mark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "evil-mark"
    monkeypatch.setenv(MARK_ENV, str(path))
    sys.modules.pop("evil_hook", None)
    return path


def _spec(name: str, **workload: object) -> str:
    data = yaml.safe_load(toy_spec(name))
    data["workload"].update(workload)
    return yaml.safe_dump(data, sort_keys=False)


def _healthy(srv: LiveServer, n: int = 5) -> None:
    """/api/health answers n times in a row, each within a second."""
    for _ in range(n):
        start = time.monotonic()
        assert httpx.get(srv.url + "/api/health", timeout=5).json()["ok"] is True
        assert time.monotonic() - start < 1.0


@pytest.mark.parametrize("field", ENTRY_FIELDS)
def test_no_entry_point_field_runs_a_strangers_callable(
    live_server: LiveServer, mark: Path, field: str
) -> None:
    refused = 0
    with live_server.client("bob") as c:  # an ordinary, non-admin token holder
        for i, entry in enumerate(COUSINS):
            for with_handler in (False, True):
                extra: dict[str, object] = {field: entry}
                if field == "function":
                    extra["kind"] = "callable"
                if with_handler:
                    extra["fixed"] = HANDLER
                text = _spec(f"evil-{field}-{i}-{int(with_handler)}", **extra)
                start = time.monotonic()
                json_r = c.post("/api/sweeps", json={"spec_yaml": text})
                up_r = c.post("/api/sweeps/upload", files={"spec": ("s.yaml", text.encode())})
                assert time.monotonic() - start < 2.0
                for r in (json_r, up_r):
                    assert r.status_code == 422, r.text
                    fields = {e["field"] for e in r.json()["detail"]["errors"]}
                    assert f"workload.{field}" in fields or "workload.fixed.handlers.h" in fields
                    refused += 1
    assert refused == len(COUSINS) * 2 * 2
    assert not mark.exists() and "evil_hook" not in sys.modules  # never imported, never called
    with live_server.client() as c:
        assert c.get("/api/sweeps").json() == []  # nothing was stored
    _healthy(live_server)


def test_a_stored_sweep_naming_an_unlisted_size_function_is_not_fitted(
    live_server: LiveServer, mark: Path
) -> None:
    """A sweep written to the shared store by some other path (the CLI): an anonymous GET of
    its fit must not import the size function it names."""
    seed_sweep(live_server.storage, "cli-sweep", None)
    store = Store(live_server.storage)
    with store.session() as s, s.begin():
        from experiments.store.models import Sweep

        sw = s.scalar(select(Sweep).where(Sweep.name == "cli-sweep"))
        assert sw is not None
        sw.spec = {**sw.spec, "workload": {**sw.spec["workload"], "size_function": "evil_hook:run"}}
    store.dispose()
    with live_server.client() as c:
        r = c.get("/api/sweeps/cli-sweep/fit")
        e = c.get("/api/sweeps/cli-sweep/export/yaml")
    assert r.status_code == 409 and "evil_hook:run' is not allowed" in r.json()["detail"]
    assert e.status_code == 409
    assert not mark.exists() and "evil_hook" not in sys.modules


@pytest.mark.slow
def test_the_scheduler_refuses_to_run_an_unlisted_workload_found_in_the_store(
    running_server: LiveServer, mark: Path
) -> None:
    seed_sweep(running_server.storage, "planted", "alice", n=0)
    store = Store(running_server.storage)
    from experiments.store.models import Sweep

    with store.session() as s, s.begin():
        sw = s.scalar(select(Sweep).where(Sweep.name == "planted"))
        assert sw is not None
        sw.spec = {**sw.spec, "workload": {**sw.spec["workload"], "function": "evil_hook:run"}}
        sw.status = "queued"
    store.dispose()
    with running_server.client() as c:
        wait_for(lambda: c.get("/api/sweeps/planted").json()["status"] == "error", timeout=90)
        live = c.get("/api/sweeps/planted").json()["live"]
    assert "evil_hook:run' is not allowed" in live["error"]
    assert not mark.exists()


def test_work_bombs_are_refused_fast_and_the_server_keeps_answering(
    live_server: LiveServer,
) -> None:
    tower = yaml.safe_load(toy_spec("tower"))
    tower["constraints"] = ["9**9**9 > n_params"]
    laughs = "".join(
        f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n"
        for i in range(9)
    )
    bomb = toy_spec("bomb").replace("workload:\n", "workload:\n  fixed:\n" + laughs, 1)
    deep = toy_spec("deep").replace("seed: 0", "seed: 0\nx: " + "[" * 2000 + "]" * 2000)
    with live_server.client("alice") as c:
        for text, says in (
            (yaml.safe_dump(tower), "exponent"),
            (bomb, "expands to more than"),
            (deep, "nest"),
        ):
            start = time.monotonic()
            r = c.post("/api/sweeps", json={"spec_yaml": text})
            assert time.monotonic() - start < 2.0
            assert r.status_code == 422 and says in r.text
            _healthy(live_server, n=2)
    _healthy(live_server)


def _raw_post(
    url: str, path: str, headers: dict[str, str], body_prefix: bytes
) -> tuple[int, float]:
    """Send headers and the first bytes of a body, then read the status line: (status, s)."""
    u = urlparse(url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {u.hostname}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        start = time.monotonic()
        sock.sendall(head.encode() + b"\r\n" + body_prefix)
        status = sock.recv(4096).split(b"\r\n", 1)[0]
        return int(status.split()[1]), time.monotonic() - start


def test_an_oversized_upload_is_answered_from_its_headers(live_server: LiveServer) -> None:
    huge = {"Content-Type": "multipart/form-data; boundary=b", "Content-Length": str(200 * 2**20)}
    status, took = _raw_post(live_server.url, "/api/sweeps/upload", huge, b"--b\r\n" + b"x" * 1000)
    assert status == 401 and took < 2.0  # anonymous: refused before a byte more is read
    authed = {**huge, "Authorization": f"Bearer {live_server.tokens['alice']}"}
    status, took = _raw_post(live_server.url, "/api/sweeps/upload", authed, b"--b\r\n")
    assert status == 413 and took < 2.0  # a token, but a body over the limit
    chunked = {
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
        "Authorization": f"Bearer {live_server.tokens['alice']}",
    }
    chunk = b"x" * 65536
    body = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * 12  # 768 KB, no length given
    status, _ = _raw_post(live_server.url, "/api/sweeps", chunked, body)
    assert status == 413
    _healthy(live_server)


def test_pages_and_api_send_security_headers(live_server: LiveServer) -> None:
    seed_sweep(live_server.storage, "hdr", "alice", n=3)
    with live_server.client() as c:
        for path in ("/", "/sweeps/hdr", "/api/health", "/api/sweeps/nope", "/static/plot.js"):
            h = c.get(path).headers
            assert "default-src 'self'" in h["content-security-policy"], path
            assert "script-src 'self'" in h["content-security-policy"]
            assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"
        page = c.get("/").text
    assert "<script>" not in page  # no inline script, so the policy can forbid them


def test_credentials_in_a_spec_are_never_stored_or_shown(live_server: LiveServer) -> None:
    data = yaml.safe_load(toy_spec("secret"))
    data["storage"] = "postgresql+psycopg://bob:hunter2@db.internal:5432/x"
    data["description"] = "mirror at https://ci:s3cret-token@example.org/repo?token=abc123"
    with live_server.client("alice") as c:
        assert c.post("/api/sweeps", json={"spec_yaml": yaml.safe_dump(data)}).status_code == 201
        shown = c.get("/api/sweeps/secret").text + c.get("/sweeps/secret").text
    engine = create_engine(live_server.storage)
    with engine.connect() as conn:
        from experiments.store.models import Sweep

        spec, spec_yaml = conn.execute(select(Sweep.spec, Sweep.spec_yaml)).one()
    engine.dispose()
    stored = f"{spec} {spec_yaml}"  # (a Row's repr shortens long values)
    for secret in ("hunter2", "s3cret-token", "abc123"):
        assert secret not in shown and secret not in str(stored)
    assert "bob:***@db.internal" in str(stored)


def _row_counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        counts = {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in Base.metadata.sorted_tables
        }
    engine.dispose()
    return counts


def test_anonymous_reads_write_nothing(live_server: LiveServer) -> None:
    seed_sweep(live_server.storage, "ro", "alice")
    before = _row_counts(live_server.storage)
    with live_server.client() as c:
        for path in (
            "/api/sweeps",
            "/api/sweeps/ro",
            "/api/sweeps/ro/trials",
            "/api/sweeps/ro/fit",
            "/api/sweeps/ro/predict?flops=1e18",
            "/api/sweeps/ro/export/yaml",
            "/api/sweeps/ro/exports",
            "/api/sweeps/ro/plots/frontier.png",
            "/api/sweeps/ro/plots/scaling",
            "/",
            "/sweeps/ro",
        ):
            assert c.get(path).status_code == 200, path
    assert _row_counts(live_server.storage) == before
