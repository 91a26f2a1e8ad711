"""`budget.reproducible`: results handed to the optimizer in the order trials started, so the
same spec gives the same sweep whatever order its parallel trials finish in."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.dispatch import RayDispatcher, TaskResources, TrialOutcome
from experiments.dispatch.in_order import InOrderRelease
from experiments.progress import PlainProgress
from experiments.runner import RunnerOptions, SweepRunner
from experiments.spec import parse_spec
from experiments.store.models import TrialStatus
from experiments.store.repository import Store

SPEC = """
name: ordered
seed: 3
storage: {url}
workload:
  kind: callable
  function: tests.experiments.order_workload:parity_delayed
  fixed: {{order_dir: "{order_dir}", slow_s: 2.5, slow_parity: {parity}}}
search_space:
  n_params:      {{kind: log, min: 1.0e+6, max: 1.0e+8, scales_cost: true}}
  tokens:        {{kind: log, min: 1.0e+7, max: 1.0e+9, scales_cost: true}}
  learning_rate: {{kind: log, min: 1.0e-4, max: 1.0e-2}}
budget: {{max_trials: 7, parallel_trials: 2, reproducible: true}}
target: {{flops: 1.0e+20}}
"""


def _outcome(trial_id: int) -> TrialOutcome:
    return TrialOutcome(trial_id, "ok", loss=1.0, cost=1.0)


def test_a_result_waits_for_every_trial_submitted_before_it() -> None:
    order = InOrderRelease()
    for t in (1, 2, 3):
        order.submitted(t)
    order.hold([_outcome(3), _outcome(2)])
    assert order.next_ready(in_flight=[1]) is None and order.held_ids == [3, 2]
    order.hold([_outcome(1)])
    assert [order.next_ready(in_flight=[]).trial_id for _ in range(3)] == [1, 2, 3]
    assert order.next_ready(in_flight=[]) is None and order.held_ids == []


def test_a_trial_stopped_without_a_result_does_not_block_the_next() -> None:
    order = InOrderRelease()
    for t in (1, 2):
        order.submitted(t)
    order.hold([_outcome(2)])
    assert order.next_ready(in_flight=[1]) is None
    got = order.next_ready(in_flight=[])  # trial 1 was stopped early: nothing to wait for
    assert got is not None and got.trial_id == 2


def test_drain_returns_every_held_result_oldest_first() -> None:
    order = InOrderRelease()
    for t in (1, 2, 3):
        order.submitted(t)
    order.hold([_outcome(3), _outcome(2)])
    assert [o.trial_id for o in order.drain()] == [2, 3] and order.held_ids == []


def _sweep(tmp_path: Path, parity: int) -> tuple[list[dict], list[int]]:
    store = Store(f"sqlite:///{tmp_path / f'run{parity}.db'}")
    order_dir = tmp_path / f"order{parity}"
    text = SPEC.format(url=store.url, order_dir=order_dir, parity=parity)
    spec = parse_spec(text, "ordered.yaml")
    dispatcher = RayDispatcher(spec.workload.entrypoint, TaskResources(num_cpus=1))
    dispatcher.start()
    # a 2 s lease: the driver looks for orphaned claims every second, while trials wait
    runner = SweepRunner(spec, text, store, dispatcher, PlainProgress(), RunnerOptions(lease_s=2))
    summary = runner.run()
    assert not summary.interrupted and not summary.cancelled
    trials = sorted(store.trials(runner.sweep.id), key=lambda t: t.number)
    assert [t.status for t in trials] == [TrialStatus.SUCCEEDED] * 7
    finished = [int(x) for x in (order_dir / "finished").read_text().split()]
    # each trial ran once: a finished trial waiting for an earlier one is neither requeued as an
    # orphan nor run again
    assert int((order_dir / "started").read_text()) == 7 and len(finished) == 7
    return [t.params for t in trials], finished


@pytest.mark.slow
def test_the_same_spec_makes_the_same_sweep_whatever_order_trials_finish_in(
    ray_local: str, tmp_path: Path
) -> None:
    params_a, finished_a = _sweep(tmp_path, parity=0)
    params_b, finished_b = _sweep(tmp_path, parity=1)
    # the runs' trials did finish in different orders (even-started ones slow in one, odd in
    # the other), so only the ordering can have made their suggestions agree
    assert finished_a != finished_b
    assert finished_a != sorted(finished_a) or finished_b != sorted(finished_b)
    assert params_a == params_b
