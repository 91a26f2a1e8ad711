"""Run the service inside the current process, on a free localhost port, and stop it cleanly.

Why: tests and notebooks want a real HTTP server (real sockets, real lifespan: scheduler start and
shutdown) without a subprocess, so it can share the caller's Ray and be torn down deterministically.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from experiments.service.app import create_app
from experiments.service.context import ServiceSettings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalService:
    """`with LocalService(settings) as svc: httpx.get(svc.url + "/api/health")`."""

    def __init__(self, settings: ServiceSettings, port: int | None = None) -> None:
        self.app = create_app(settings)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
            )
        )
        self._thread = threading.Thread(target=self._server.run, name="carbs-local", daemon=True)

    def start(self, timeout: float = 30.0) -> LocalService:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the carbs service did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Graceful shutdown: running sweeps are requeued, the scheduler joins, the port closes."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError("the carbs service did not shut down in time")

    def __enter__(self) -> LocalService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
