"""A real carbs service on a free localhost port (uvicorn in a thread), with tokens ready.

Why a thread and not a subprocess: the server shares the test session's local Ray (starting a
second cluster costs seconds and CPU), and stopping it runs the app's real shutdown path.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from experiments.service.app import create_app
from experiments.service.auth import create_token
from experiments.service.context import ServiceSettings
from experiments.store.repository import Store

TOY_SPEC = Path(__file__).resolve().parents[2] / "experiments" / "sweeps" / "toy_chinchilla.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    storage: str
    tokens: dict[str, str]
    app: object

    def client(self, user: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60.0)

    @property
    def ctx(self):  # type: ignore[no-untyped-def]
        return self.app.state.ctx  # type: ignore[attr-defined]


class ServerThread:
    """uvicorn.Server in a daemon thread; `stop` runs the lifespan shutdown and joins."""

    def __init__(self, app: object, port: int) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)

    def stop(self, timeout: float = 60.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the test server did not shut down"


def start_server(storage: str, tmp: Path, **settings: object) -> tuple[ServerThread, LiveServer]:
    store = Store(storage)  # migrate and create the users before the server starts
    tokens = {
        "alice": create_token(store.session, "alice"),
        "bob": create_token(store.session, "bob"),
    }
    store.dispose()
    app = create_app(
        ServiceSettings(storage=storage, cache_dir=tmp / "cache", fit_bootstrap=20, **settings)  # type: ignore[arg-type]
    )
    port = free_port()
    th = ServerThread(app, port)
    th.start()
    return th, LiveServer(f"http://127.0.0.1:{port}", storage, tokens, app)


@pytest.fixture
def live_server(store_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server with its scheduler off: for API tests that need no Ray."""
    th, srv = start_server(store_url, tmp_path, run_scheduler=False)
    try:
        yield srv
    finally:
        th.stop()


@pytest.fixture
def running_server(ray_local: None, tmp_path: Path) -> Iterator[LiveServer]:
    """A server whose scheduler runs submitted sweeps on the session's local Ray (SQLite)."""
    th, srv = start_server(f"sqlite:///{tmp_path / 'service.db'}", tmp_path, max_running=2)
    try:
        yield srv
    finally:
        th.stop()


def toy_spec(name: str, max_trials: int = 12, parallel: int = 2) -> str:
    """The toy Chinchilla sweep under another name and a smaller budget."""
    import yaml

    data = yaml.safe_load(TOY_SPEC.read_text())
    data["name"] = name
    data["budget"] = {"max_trials": max_trials, "parallel_trials": parallel}
    return yaml.safe_dump(data, sort_keys=False)


def wait_for(predicate, timeout: float = 60.0, every: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")
