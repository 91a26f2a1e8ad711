"""Cost-aware early stopping: the rule on synthetic curves, and a real sweep through local Ray in
which hopeless trials are stopped from their streamed curves, recorded as `pruned`, never retried
and shown to the optimizer only as bounds (their optimistic final loss), never as results."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from experiments.dispatch import RayDispatcher, TaskResources
from experiments.dispatch.allocate import spent
from experiments.progress import PlainProgress
from experiments.pruning import FinishedCurve, decide, extrapolate
from experiments.rebuild import rebuild_optimizer
from experiments.runner import SweepRunner
from experiments.spec import parse_spec
from experiments.store.models import TrialStatus
from experiments.store.repository import Store
from experiments.toy_objectives import chinchilla_toy, chinchilla_toy_cost


def power_curve(final_flops: float, e: float, a: float, n: int = 10) -> list[tuple[float, float]]:
    return [(final_flops * k / n, e + a * (final_flops * k / n) ** -0.3) for k in range(1, n + 1)]


def finished(e: float, cost: float) -> FinishedCurve:
    pts = power_curve(cost, e, 50.0)
    return FinishedCurve(pts, pts[-1][1], cost)


def test_extrapolation_is_linear_in_log_flops_and_never_rises() -> None:
    assert extrapolate([(1.0, 3.0), (10.0, 2.0)], 100.0) == pytest.approx(1.0)
    assert extrapolate([(1.0, 2.0), (10.0, 2.5)], 100.0) == pytest.approx(2.5)  # held flat
    assert extrapolate([(1.0, 2.0)], 100.0) is None


def test_a_curve_far_above_the_frontier_is_stopped_and_a_close_one_kept() -> None:
    done = [finished(2.0, 1e12), finished(2.05, 2e12), finished(2.1, 4e12)]
    bad = power_curve(1e12, 2.6, 50.0)[:4]  # 40 % of the way, heading to 2.6 + ...
    d = decide(bad, 1e12, done, min_evals=3)
    assert d.prune and d.optimistic_loss > d.frontier_loss
    close = power_curve(1e12, 1.99, 50.0)[:4]  # would end just below the frontier
    assert not decide(close, 1e12, done, min_evals=3).prune
    assert not decide(bad[:2], 1e12, done, min_evals=3).prune  # too few evaluations
    assert not decide(bad, 1e12, done[:2], min_evals=3).prune  # too little to calibrate on
    assert not decide(bad, 1e11, done, min_evals=3).prune  # nothing finished as cheap as it


def test_the_calibration_learns_a_late_drop_from_the_finished_curves() -> None:
    """A WSD-like schedule: every finished curve drops 10 % in its last fifth. A running curve
    2 % below the frontier run's, mid-run still 5 % above the frontier's final loss, is kept
    (it ends below it); one 35 % above is stopped."""

    def wsd(cost: float, e: float) -> list[tuple[float, float]]:
        pts = power_curve(cost, e, 50.0)
        return [(f, y * (0.9 if k >= 8 else 1.0)) for k, (f, y) in enumerate(pts)]

    done = [FinishedCurve(wsd(c, e), wsd(c, e)[-1][1], c) for c, e in
            [(1e12, 2.0), (2e12, 2.0), (4e12, 2.0)]]  # fmt: skip
    frontier = done[0].final_loss  # the only finished run at no more than 1e12
    cut = lambda pts: pts[:5]  # noqa: E731 - half-way, before the drop
    near = [(f, y * 0.98) for f, y in cut(wsd(1e12, 2.0))]
    far = [(f, y * 1.35) for f, y in cut(wsd(1e12, 2.0))]
    assert near[-1][1] > 1.05 * frontier  # a rule on the current loss would stop it
    assert not decide(near, 1e12, done, 3).prune
    far_d = decide(far, 1e12, done, 3)
    assert far_d.prune and far_d.frontier_loss == pytest.approx(frontier)


TOY = """
name: prune
seed: 5
storage: {url}
workload:
  kind: callable
  function: experiments.toy_objectives:reporting_toy
  cost_function: experiments.toy_objectives:chinchilla_toy_cost
  fixed: {{points: 10, step_s: 0.15}}
search_space:
  n_params:      {{kind: log, min: 1.0e+6, max: 1.0e+7, scales_cost: true}}
  tokens:        {{kind: log, min: 1.0e+8, max: 1.0e+9, scales_cost: true}}
  learning_rate: {{kind: log, min: 1.0e-5, max: 1.0e-2}}
budget: {{max_trials: 24, parallel_trials: 2}}
pruning: {{enabled: true, min_evals: 3, every_s: 0.3}}
target: {{flops: 1.0e+20}}
optimizer: {{name: random}}
"""


@pytest.mark.slow
def test_a_sweep_stops_hopeless_trials_never_retries_them_and_tells_them_as_bounds(
    ray_local: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'prune.db'}"
    store = Store(url)
    text = TOY.format(url=url)
    spec = parse_spec(text, "prune.yaml")
    dispatcher = RayDispatcher(spec.workload.entrypoint, TaskResources(num_cpus=1))
    dispatcher.start()
    summary = SweepRunner(spec, text, store, dispatcher, PlainProgress()).run()
    trials = store.trials(summary.sweep_id, with_curves=True)
    assert len(trials) == 24 and all(t.status in TrialStatus.FINISHED for t in trials)
    pruned = [t for t in trials if t.status == TrialStatus.PRUNED]
    ok = [t for t in trials if t.status == TrialStatus.SUCCEEDED]
    assert pruned, "random lr over three decades gives hopeless trials; none was stopped"
    fixed = {"points": 10, "step_s": 0.0}
    for t in pruned:
        assert t.attempts == 1 and t.failure_reason == "pruned" and t.failure_kind is None
        steps = sorted(p.step for p in t.curve)
        assert 3 <= len(steps) < 10 and steps == list(range(1, len(steps) + 1))
        planned = chinchilla_toy_cost(t.params)
        assert 0 < t.cost_flops < planned  # it is charged what it spent, not its full run
        # and it was right to stop: its true final loss is worse than a finished run's at no
        # more than its cost
        true_final = chinchilla_toy({**t.params, **fixed})["loss"]
        best = min(o.loss for o in ok if o.cost_flops <= planned * (1 + 1e-9))
        assert true_final > best, (true_final, best)
    # pruned trials are not results for the optimizer but bounds (their optimistic final loss,
    # above the frontier when stopped, at their planned cost), and the budget paid what they spent
    opt = rebuild_optimizer(spec, trials)
    observed = [t for t in trials if t.status in TrialStatus.OBSERVED]
    bounds = [o for o in opt.observations if o.bound]
    assert len(opt.observations) == len(observed) + len(bounds) and len(bounds) == len(pruned)
    for t in pruned:
        m = t.metrics
        assert m["optimistic_final_loss"] > m["frontier_loss_at_cost"]
        assert m["planned_flops"] == pytest.approx(chinchilla_toy_cost(t.params))
    assert math.isclose(spent(trials), sum(t.cost_flops or 0.0 for t in trials if
                        t.status in TrialStatus.FINISHED), rel_tol=1e-9)  # fmt: skip
