"""`carbs serve` with its own local Ray: it runs sweep after sweep and keeps answering, and when
its Ray dies mid-sweep it starts a new one, requeues the in-flight trials and finishes the sweep
without losing or repeating a trial. The API answers throughout."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import yaml
from service_helpers import LiveServer, start_server, toy_spec, wait_for

from experiments.store.models import TrialStatus

pytestmark = pytest.mark.slow


class HealthWatch:
    """Polls /api/health twice a second in a thread; counts answers and misses (>2 s or not ok)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ok = 0
        self.missed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            start = time.monotonic()
            try:
                r = httpx.get(self.url + "/api/health", timeout=2.0)
                assert r.status_code == 200 and r.json()["ok"] is True
                self.ok += 1
            except Exception as exc:  # noqa: BLE001 - recorded, asserted on at the end
                self.missed.append(f"{time.monotonic() - start:.1f}s {type(exc).__name__}: {exc}")

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def own_ray_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A service with no Ray address: it starts and owns a local Ray of 2 CPUs."""
    th, srv = start_server(
        f"sqlite:///{tmp_path / 'own.db'}", tmp_path, max_running=1, ray_num_cpus=2
    )
    try:
        yield srv
    finally:
        th.stop()


def _spec(name: str, trials: int, delay_s: float = 0.0) -> str:
    data = yaml.safe_load(toy_spec(name, max_trials=trials, parallel=2))
    data["workload"]["fixed"] = {"delay_s": delay_s}
    return yaml.safe_dump(data, sort_keys=False)


def _finished(c: httpx.Client, name: str) -> bool:
    return c.get(f"/api/sweeps/{name}").json()["status"] == "finished"


def test_five_sweeps_in_a_row_and_a_dead_ray_leave_the_service_up(
    own_ray_server: LiveServer,
) -> None:
    srv = own_ray_server
    with HealthWatch(srv.url) as watch, srv.client("alice") as c:
        started = time.monotonic()
        first_done = None
        for i in range(5):
            assert (
                c.post("/api/sweeps", json={"spec_yaml": _spec(f"seq-{i}", 6)}).status_code == 201
            )
            wait_for(lambda i=i: _finished(c, f"seq-{i}"), timeout=180)
            first_done = first_done or time.monotonic()
        # the old failure: the service exited ~60 s after its first sweep finished
        while time.monotonic() - first_done < 70:
            time.sleep(1)
        assert srv.ctx.scheduler.ray_status()["alive"]

        # kill the service's Ray under a sweep with trials in flight
        assert (
            c.post("/api/sweeps", json={"spec_yaml": _spec("survivor", 12, 1.5)}).status_code == 201
        )
        wait_for(
            lambda: c.get("/api/sweeps/survivor").json()["counts"].get("succeeded", 0) >= 2, 120
        )
        wait_for(lambda: c.get("/api/sweeps/survivor").json()["counts"].get("running", 0) >= 1, 60)
        head = psutil.Process(srv.ctx.scheduler.ray_head.pid)
        gcs = [p for p in head.children(recursive=True) if "gcs_server" in p.name()]
        assert gcs, "no GCS process under the service's Ray keeper"
        gcs[0].kill()
        wait_for(lambda: _finished(c, "survivor"), timeout=300)
        counts = c.get("/api/sweeps/survivor").json()["counts"]
        numbers = [t["number"] for t in c.get("/api/sweeps/survivor/trials").json()]
        uptime = time.monotonic() - started
    status = srv.ctx.scheduler.ray_status()
    observed = counts.get(TrialStatus.SUCCEEDED, 0) + counts.get(TrialStatus.FAILED, 0)
    assert observed == 12 and sorted(numbers) == list(range(12))  # none lost, none repeated
    assert status["restarts_after_failure"] >= 1 and status["alive"]
    assert watch.missed == [], watch.missed[:5]
    assert watch.ok >= uptime  # about two answers a second, all of them in time
    print(
        f"\nown-Ray service: up {uptime:.0f} s, {watch.ok} health checks answered, 0 missed; "
        f"Ray starts {status['starts']}, restarts after failure {status['restarts_after_failure']}"
    )
