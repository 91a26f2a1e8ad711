"""Learning curves streamed to the store while a trial runs: visible within seconds, on SQLite and
PostgreSQL, through a real local Ray worker; idempotent with the final result; a retried attempt
replaces what the earlier one streamed; a store that is down never fails the trial."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from experiments.dispatch import RayDispatcher, TaskResources
from experiments.dispatch.curve_stream import CurveStream, absolute_store_url
from experiments.store.models import TrialStatus
from experiments.store.repository import Store
from experiments.store.trial_result import TrialResult

SPEC = {"search_space": {"x": {"kind": "log"}}, "constraints": [], "workload": {"kind": "callable"}}


def _trial(store: Store, name: str) -> int:
    sweep, _ = store.get_or_create_sweep(name, SPEC, "yaml")
    (t,) = store.create_trials(sweep.id, [({"x": 1.0}, None)])
    return t.id


def _steps(store: Store, trial_id: int) -> list[int]:
    t = store.get_trial(trial_id)
    assert t is not None
    return sorted(p.step for p in t.curve)


def _wait_for(predicate, timeout_s: float = 15.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if predicate():
            return time.monotonic() - t0
        time.sleep(0.1)
    raise AssertionError(f"not true within {timeout_s} s")


def test_points_reach_the_store_while_the_trial_runs_and_the_result_adds_no_duplicates(
    store_url: str,
) -> None:
    store = Store(store_url)
    tid = _trial(store, "stream-1")
    stream = CurveStream(store_url, tid, interval_s=0.2)
    try:
        for step in (1, 2, 3):
            stream({"step": step, "tokens": 100.0 * step, "train_loss": 5.0 - step})
        waited = _wait_for(lambda: _steps(store, tid) == [1, 2, 3])
        assert waited < 5.0
        stream({"step": 4, "tokens": 400.0, "train_loss": 1.0, "val_loss": 1.1})
    finally:
        stream.close()
    assert _steps(store, tid) == [1, 2, 3, 4]
    full = [{"step": s, "tokens": 100.0 * s, "train_loss": 5.0 - s} for s in (1, 2, 3, 4)]
    assert store.finish_trial(
        tid, TrialResult(TrialStatus.SUCCEEDED, loss=1.1, cost_flops=1.0, curve=full)
    )
    assert _steps(store, tid) == [1, 2, 3, 4]  # the result's curve did not duplicate a step


def test_a_retried_attempt_replaces_the_earlier_attempts_points(store_url: str) -> None:
    store = Store(store_url)
    tid = _trial(store, "stream-2")
    first = CurveStream(store_url, tid, interval_s=0.1)
    for step in (1, 2, 3, 4, 5):
        first({"step": step, "train_loss": 9.0})
    first.close()  # the worker died after step 5
    assert _steps(store, tid) == [1, 2, 3, 4, 5]
    second = CurveStream(store_url, tid, interval_s=0.1)
    second({"step": 1, "train_loss": 4.0})
    second.close()
    t = store.get_trial(tid)
    assert t is not None and [(p.step, p.train_loss) for p in t.curve] == [(1, 4.0)]


def test_a_store_that_is_down_costs_the_points_not_the_trial(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing/nowhere.db"  # create=False: never made
    stream = CurveStream(url, 1, interval_s=0.05)
    stream({"step": 1, "train_loss": 3.0})
    time.sleep(0.3)
    stream.close()
    assert stream.failures >= 1 and stream.written == 0
    assert not (tmp_path / "missing").exists()


def test_relative_sqlite_paths_are_made_absolute_for_workers(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert absolute_store_url("sqlite:///runs/x.db") == f"sqlite:///{tmp_path}/runs/x.db"
    assert absolute_store_url("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    pg = "postgresql+psycopg://u:pw@h:5432/db"
    assert absolute_store_url(pg) == pg


@pytest.mark.slow
def test_a_running_ray_trials_curve_is_in_the_store_before_it_ends(
    ray_local: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/live.db"
    store = Store(url)
    tid = _trial(store, "stream-ray")
    d = RayDispatcher("experiments.toy_objectives:reporting_toy", TaskResources(num_cpus=1))
    d.start()
    d.stream_curves_to(url)
    params = {"n_params": 1e7, "tokens": 1e9, "learning_rate": 2e-3, "points": 20, "step_s": 0.5}
    d.submit(tid, params, seed=0)
    _wait_for(lambda: len(_steps(store, tid)) >= 3, timeout_s=30.0)
    assert d.in_flight == [tid]  # still running: the points came while it trained
    seen_running = len(_steps(store, tid))
    out = []
    t0 = time.monotonic()
    while not out and time.monotonic() - t0 < 60:
        out = d.wait(timeout=1.0)
    (o,) = out
    assert o.status == "succeeded" and len(o.curve) == 20
    assert 3 <= seen_running < 20
    assert _steps(store, tid) == list(range(1, 21))  # the rest landed by the end, once each
