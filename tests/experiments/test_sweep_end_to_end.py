"""A whole sweep of a cheap Python objective through a real local Ray and a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.dispatch import RayDispatcher, TaskResources
from experiments.progress import PlainProgress
from experiments.runner import SweepRunner
from experiments.spec import parse_spec
from experiments.store.models import TrialStatus
from experiments.store.repository import Store

TOY = """
name: {name}
seed: 3
storage: {url}
workload: {{kind: callable, function: "{function}"}}
search_space:
  n_params:      {{kind: log, min: 1.0e+6, max: 1.0e+8, scales_cost: true}}
  tokens:        {{kind: log, min: 1.0e+7, max: 1.0e+9, scales_cost: true}}
  learning_rate: {{kind: log, min: 1.0e-4, max: 3.0e-2}}
budget: {{max_trials: {n}, parallel_trials: 2}}
target: {{flops: 1.0e+20}}
optimizer: {{name: local}}  # the pipeline, not the optimizer, is under test here: keep it quick
"""


def _run(text: str, store: Store) -> tuple[SweepRunner, object]:
    spec = parse_spec(text, "toy.yaml")
    dispatcher = RayDispatcher(spec.workload.entrypoint, TaskResources(num_cpus=1))
    dispatcher.start()
    runner = SweepRunner(spec, text, store, dispatcher, PlainProgress())
    return runner, runner.run()


@pytest.mark.slow
def test_toy_sweep_runs_through_ray_and_resumes_without_repeating(
    ray_local: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'sweep.db'}"
    store = Store(url)
    text = TOY.format(
        name="toy", url=url, function="experiments.toy_objectives:chinchilla_toy", n=10
    )
    _, summary = _run(text, store)
    assert summary.trials_finished == 10 and summary.succeeded + summary.failed == 10
    trials = store.trials(summary.sweep_id)
    ok = [t for t in trials if t.status == TrialStatus.SUCCEEDED]
    assert ok and all(t.cost_flops > 0 and t.loss > 1.8 for t in ok)
    assert len({t.suggestion_id for t in trials}) == 10
    # second run of the same spec with a larger budget continues: old trials untouched, 5 new
    before = {t.id: (t.params, t.loss) for t in trials}
    _, again = _run(text.replace("max_trials: 10", "max_trials: 15"), store)
    assert again.resumed and again.trials_finished == 15
    after = store.trials(summary.sweep_id)
    assert {t.id: (t.params, t.loss) for t in after if t.id in before} == before
    # and running it once more with the budget spent starts nothing
    _, third = _run(text.replace("max_trials: 10", "max_trials: 15"), store)
    assert len(store.trials(summary.sweep_id)) == 15 and third.trials_finished == 15


@pytest.mark.slow
def test_failing_workload_is_recorded_not_raised(ray_local: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fail.db'}"
    store = Store(url)
    text = TOY.format(
        name="boom", url=url, function="experiments.toy_objectives:failing_objective", n=3
    )
    _, summary = _run(text, store)
    trials = store.trials(summary.sweep_id)
    assert [t.status for t in trials] == [TrialStatus.FAILED] * 3
    assert all("RuntimeError: boom" in t.error and t.failure_kind == "config" for t in trials)
