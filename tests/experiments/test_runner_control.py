"""The sweep loop run from background threads, as the service runs it: cancel through the store,
stop from another thread, and two drivers sharing one sweep without running a trial twice."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from experiments.dispatch import RayDispatcher, TaskResources
from experiments.progress import PlainProgress
from experiments.runner import RunnerOptions, SweepRunner, SweepSummary
from experiments.spec import parse_spec
from experiments.store.models import TrialStatus
from experiments.store.repository import Store, SweepStatus

SPEC = """
name: {name}
seed: 1
storage: {url}
workload:
  kind: callable
  function: experiments.dispatch.chaos:flaky_chinchilla
  fixed: {{chaos_dir: "{chaos_dir}", kill_every: 0, sleep_s: {sleep_s}}}
search_space:
  n_params:      {{kind: log, min: 1.0e+6, max: 1.0e+8, scales_cost: true}}
  tokens:        {{kind: log, min: 1.0e+7, max: 1.0e+9, scales_cost: true}}
  learning_rate: {{kind: log, min: 1.0e-4, max: 1.0e-2}}
optimizer: {{name: local}}
budget: {{max_trials: {n}, parallel_trials: 2}}
target: {{flops: 1.0e+20}}
"""


def _runner(tmp_path: Path, store: Store, name: str, n: int, sleep_s: float) -> SweepRunner:
    text = SPEC.format(name=name, url=store.url, chaos_dir=tmp_path, sleep_s=sleep_s, n=n)
    spec = parse_spec(text, f"{name}.yaml")
    dispatcher = RayDispatcher(spec.workload.entrypoint, TaskResources(num_cpus=1))
    dispatcher.start()
    return SweepRunner(spec, text, store, dispatcher, PlainProgress(), RunnerOptions(lease_s=5))


def _in_thread(runner: SweepRunner) -> tuple[threading.Thread, list[SweepSummary]]:
    out: list[SweepSummary] = []
    th = threading.Thread(target=lambda: out.append(runner.run()), daemon=True)
    th.start()
    return th, out


def _until(cond: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _running(store: Store, sweep_id: int) -> bool:
    return store.status_counts(sweep_id).get(TrialStatus.RUNNING, 0) > 0


@pytest.mark.slow
def test_cancel_requested_in_the_store_stops_a_runner_thread(
    ray_local: str, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    runner = _runner(tmp_path, store, "cancel-me", n=20, sleep_s=30)
    th, out = _in_thread(runner)
    _until(lambda: _running(store, runner.sweep.id))
    assert store.request_cancel("cancel-me")
    th.join(timeout=30)
    assert not th.is_alive() and out[0].cancelled and not out[0].interrupted
    assert store.sweep_status(runner.sweep.id) == SweepStatus.CANCELLED
    counts = store.status_counts(runner.sweep.id)
    assert set(counts) == {TrialStatus.CANCELLED} and counts[TrialStatus.CANCELLED] <= 4
    assert runner.dispatcher.in_flight == []


@pytest.mark.slow
def test_request_stop_from_another_thread_requeues_in_flight_trials(
    ray_local: str, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    runner = _runner(tmp_path, store, "stop-me", n=20, sleep_s=30)
    th, out = _in_thread(runner)
    _until(lambda: _running(store, runner.sweep.id))
    runner.request_stop()
    th.join(timeout=30)
    assert not th.is_alive() and out[0].interrupted
    assert store.sweep_status(runner.sweep.id) == SweepStatus.INTERRUPTED
    rows = store.trials(runner.sweep.id)
    assert rows and all(t.status == TrialStatus.PENDING and t.lease_owner is None for t in rows)


@pytest.mark.slow
def test_a_pending_cancel_is_honoured_at_start_and_a_later_run_continues_the_sweep(
    ray_local: str, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    first = _runner(tmp_path, store, "late", n=2, sleep_s=0.05)
    store.create_trials(first.sweep.id, [({"n_params": 1e7, "tokens": 1e8}, None)])
    assert store.request_cancel("late")
    summary = first.run()
    assert summary.cancelled and store.sweep_status(first.sweep.id) == SweepStatus.CANCELLED
    assert store.status_counts(first.sweep.id) == {TrialStatus.CANCELLED: 1}
    # running it again on purpose resumes it: cancelled trials do not use up the budget
    again = _runner(tmp_path, store, "late", n=2, sleep_s=0.05).run()
    assert not again.cancelled and again.trials_finished == 2
    assert store.sweep_status(first.sweep.id) == SweepStatus.FINISHED


@pytest.mark.slow
def test_two_drivers_share_a_sweep_and_run_every_trial_exactly_once(
    ray_local: str, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    a = _runner(tmp_path, store, "shared", n=12, sleep_s=0.3)
    b = _runner(tmp_path, store, "shared", n=12, sleep_s=0.3)
    assert a.driver != b.driver
    threads = [_in_thread(a), _in_thread(b)]
    for th, _ in threads:
        th.join(timeout=120)
    summaries = [out[0] for _, out in threads]
    rows = store.trials(a.sweep.id)
    assert len(rows) == 12 and all(t.status in TrialStatus.OBSERVED for t in rows)
    assert all(t.attempts == 1 for t in rows)
    journal = [json.loads(x) for x in (tmp_path / "journal.jsonl").read_text().splitlines()]
    starts = Counter(e["trial"] for e in journal if e["event"] == "start")
    assert sorted(starts) == sorted(t.id for t in rows) and set(starts.values()) == {1}
    assert all(s.requeued == 0 and s.lost_leases == 0 for s in summaries)
    assert sum(s.results_written for s in summaries) == 12
    assert all(s.results_written > 0 for s in summaries)  # the work really was shared
