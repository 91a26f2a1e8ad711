"""The failure taxonomy, and the dispatcher on a real local Ray: a worker killed mid-trial and a
trial over its time limit come back as infrastructure failures; config failures do not."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import ray
from ray import exceptions as rx

from experiments.dispatch import RayDispatcher, TaskResources, TrialOutcome
from experiments.dispatch.chaos import should_kill
from experiments.dispatch.failures import classify_ray_error, classify_workload_error
from experiments.dispatch.task import execute_trial


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (rx.WorkerCrashedError(), ("infra", "worker_died")),
        (rx.NodeDiedError("node gone"), ("infra", "node_died")),
        (rx.TaskCancelledError(), ("infra", "cancelled")),
        (rx.GetTimeoutError(), ("infra", "timeout")),
        (rx.OutOfMemoryError("ray killed it"), ("failed", "oom")),
        (rx.RaySystemError("gcs"), ("infra", "ray_error")),
    ],
)
def test_ray_errors_are_classified(exc: BaseException, expected: tuple[str, str]) -> None:
    assert classify_ray_error(exc) == expected


def test_workload_errors_split_into_config_and_infrastructure() -> None:
    assert classify_workload_error(MemoryError()) == ("failed", "oom")
    assert classify_workload_error(ConnectionResetError()) == ("infra", "connection")
    assert classify_workload_error(ValueError("bad shape")) == ("failed", "exception")


def test_execute_trial_reports_oom_as_config_and_lost_connection_as_infra() -> None:
    oom = execute_trial("experiments.dispatch.chaos:raises", {"error": "MemoryError"}, 1, 0, "cpu")
    assert (oom["status"], oom["reason"]) == ("failed", "oom")
    lost = execute_trial(
        "experiments.dispatch.chaos:raises", {"error": "ConnectionError"}, 2, 0, "cpu"
    )
    assert (lost["status"], lost["reason"]) == ("infra", "connection")


def test_kill_selection_is_deterministic_and_about_a_quarter() -> None:
    chosen = [i for i in range(1, 101) if should_kill(i, 4, 1)]
    assert len(chosen) == 25 and chosen[:3] == [1, 5, 9]
    assert not any(should_kill(i, 0) for i in range(10))


def _wait_all(d: RayDispatcher, n: int, timeout: float = 60) -> list[TrialOutcome]:
    out: list[TrialOutcome] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        out += d.wait(timeout=0.5)
    return out


@pytest.mark.slow
def test_worker_killed_mid_trial_is_an_infra_failure_and_the_retry_succeeds(
    ray_local: str, tmp_path: Path
) -> None:
    d = RayDispatcher("experiments.dispatch.chaos:flaky_chinchilla", TaskResources(num_cpus=1))
    d.start()
    params = {
        "n_params": 1e7,
        "tokens": 1e8,
        "learning_rate": 2e-3,
        "chaos_dir": str(tmp_path),
        "kill_every": 1,
        "sleep_s": 0.2,
    }
    d.submit(7, params, seed=0)
    (first,) = _wait_all(d, 1)
    assert (first.trial_id, first.status, first.reason) == (7, "infra", "worker_died")
    assert (tmp_path / "killed-7").exists()
    d.submit(7, params, seed=0)
    (second,) = _wait_all(d, 1)
    assert second.status == "succeeded" and second.loss > 1.8


@pytest.mark.slow
def test_trial_over_its_time_limit_is_cancelled_as_infra_timeout(ray_local: str) -> None:
    d = RayDispatcher("experiments.dispatch.chaos:sleepy", TaskResources(num_cpus=1, timeout_s=1))
    d.start()
    t0 = time.monotonic()
    d.submit(1, {"sleep_s": 60}, seed=0)
    (out,) = _wait_all(d, 1)
    assert (out.status, out.reason) == ("infra", "timeout")
    assert time.monotonic() - t0 < 20 and d.in_flight == []


@pytest.mark.slow
def test_cancel_one_trial_drops_it_without_an_outcome(ray_local: str) -> None:
    d = RayDispatcher("experiments.dispatch.chaos:sleepy", TaskResources(num_cpus=1))
    d.start()
    d.submit(1, {"sleep_s": 60}, seed=0)
    d.submit(2, {"sleep_s": 0.1}, seed=0)
    assert d.cancel(1) and not d.cancel(99)
    assert d.in_flight == [2]
    outs = _wait_all(d, 1)
    assert [(o.trial_id, o.status) for o in outs] == [(2, "succeeded")]
    assert d.capacity() >= 1


@pytest.mark.slow
def test_early_stopping_leaves_a_trial_that_has_returned_to_be_collected(ray_local: str) -> None:
    d = RayDispatcher("experiments.dispatch.chaos:sleepy", TaskResources(num_cpus=1))
    d.start()
    d.submit(1, {"sleep_s": 60}, seed=0)
    d.submit(2, {"sleep_s": 0.0}, seed=0)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until trial 2 has returned, uncollected
        ref = next(r for r, (tid, _) in d._refs.items() if tid == 2)
        if ray.wait([ref], timeout=1.0)[0]:
            break
    assert not d.stop_if_running(2)  # returned: its result stands
    assert d.stop_if_running(1) and not d.stop_if_running(99)
    outs = _wait_all(d, 1)
    assert [(o.trial_id, o.status) for o in outs] == [(2, "succeeded")]
