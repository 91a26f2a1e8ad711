"""Submitted sweeps run on a real local Ray through the service's scheduler, and stop cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_helpers import LiveServer, start_server, toy_spec, wait_for

from experiments.store.models import TrialStatus
from experiments.store.repository import Store

pytestmark = pytest.mark.slow


def _status(c, name: str) -> str:  # type: ignore[no-untyped-def]
    return c.get(f"/api/sweeps/{name}").json()["status"]


def test_a_submitted_sweep_runs_to_its_budget(running_server: LiveServer) -> None:
    with running_server.client("alice") as c:
        r = c.post("/api/sweeps", json={"spec_yaml": toy_spec("svc-run", max_trials=8)})
        assert r.status_code == 201
        wait_for(lambda: _status(c, "svc-run") == "finished", timeout=90)
        detail = c.get("/api/sweeps/svc-run").json()
        fr = c.get("/api/sweeps/svc-run/frontier").json()
    assert sum(detail["counts"].values()) == 8
    assert detail["counts"].get("succeeded", 0) + detail["counts"].get("failed", 0) == 8
    assert detail["owner"] == "alice"
    assert any(p["frontier"] for p in fr["points"])
    assert running_server.ctx.scheduler.wait_idle("svc-run", timeout=30)  # its driver exits
    assert running_server.ctx.scheduler.running() == []


def test_cancel_stops_a_running_sweep_and_cancels_its_trials(running_server: LiveServer) -> None:
    spec = toy_spec("svc-cancel", max_trials=400, parallel=2)
    with running_server.client("alice") as c, running_server.client("bob") as bob:
        assert c.post("/api/sweeps", json={"spec_yaml": spec}).status_code == 201
        wait_for(lambda: c.get("/api/sweeps/svc-cancel").json()["n_trials"] >= 4, timeout=60)
        assert bob.post("/api/sweeps/svc-cancel/cancel").status_code == 403
        r = c.post("/api/sweeps/svc-cancel/cancel")
        assert r.status_code == 200 and r.json()["status"] in ("cancelled", "cancel_requested")
        wait_for(lambda: _status(c, "svc-cancel") == "cancelled", timeout=60)
        counts = c.get("/api/sweeps/svc-cancel").json()["counts"]
    assert counts.get(TrialStatus.PENDING, 0) == 0 and counts.get(TrialStatus.RUNNING, 0) == 0
    assert sum(counts.values()) < 400
    assert running_server.ctx.scheduler.wait_idle("svc-cancel", timeout=30)


def test_shutdown_requeues_a_running_sweep_and_a_restart_resumes_it(
    ray_local: str, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'restart.db'}"
    th, srv = start_server(storage, tmp_path, ray_address=ray_local)
    with srv.client("alice") as c:
        c.post("/api/sweeps", json={"spec_yaml": toy_spec("svc-restart", max_trials=300)})
        wait_for(lambda: c.get("/api/sweeps/svc-restart").json()["n_trials"] >= 3, timeout=60)
    th.stop()  # the lifespan shutdown stops the runner thread
    store = Store(storage)
    sweep = store.require_sweep("svc-restart")
    counts = store.status_counts(sweep.id)
    done_before = counts.get(TrialStatus.SUCCEEDED, 0) + counts.get(TrialStatus.FAILED, 0)
    assert sweep.status == "queued"
    assert counts.get(TrialStatus.RUNNING, 0) == 0  # in-flight trials went back to pending
    store.dispose()

    th2, srv2 = start_server(storage, tmp_path / "again", ray_address=ray_local)
    try:
        with srv2.client("alice") as c:
            wait_for(
                lambda: (
                    sum(
                        v
                        for k, v in c.get("/api/sweeps/svc-restart").json()["counts"].items()
                        if k in TrialStatus.OBSERVED
                    )
                    > done_before
                ),
                timeout=60,
            )
            c.post("/api/sweeps/svc-restart/cancel")
    finally:
        th2.stop()
