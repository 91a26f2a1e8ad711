"""Rebuild an optimizer from stored trials: its state is a pure function of the rows.

Why: the driver may die at any moment; whoever picks the sweep up (the same CLI again, another
driver, the service) replays the observed trials in the order they finished and gets the same
optimizer, with no pickled state to go stale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from carbs.optimizer import Observation, Optimizer
from carbs.registry import build_optimizer
from experiments.dispatch.recorder import load_price
from experiments.spec import SweepSpec
from experiments.store.models import Trial, TrialStatus


def observation_order(trials: Sequence[Trial]) -> list[Trial]:
    """Observed trials in the order their results were written (ties by trial number); a
    stopped trial is observed as a bound where its stop recorded one."""
    done = [t for t in trials if t.status in TrialStatus.OBSERVED or told_as_bound(t)]
    return sorted(done, key=lambda t: (t.finished_at is None, t.finished_at, t.number))


def told_as_bound(trial: Trial) -> bool:
    """Whether a pruned trial carries what its bound needs: its optimistic final loss and the
    planned run's cost (trials stopped before these were recorded are only configs tried)."""
    m = trial.metrics or {}
    loss, planned = m.get("optimistic_final_loss"), m.get("planned_flops")
    return (
        trial.status == TrialStatus.PRUNED
        and isinstance(loss, int | float)
        and isinstance(planned, int | float)
        and math.isfinite(loss)
        and planned > 0
    )


def bound_observation(trial: Trial) -> Observation:
    """A stopped trial as the optimizer sees it: at its planned cost, its most optimistic final
    loss (a lower bound, above the frontier when it was stopped), what it spent."""
    m = trial.metrics or {}
    return Observation(
        params=dict(trial.params),
        cost=float(m["planned_flops"]),
        loss=float(m["optimistic_final_loss"]),
        suggestion_id=trial.suggestion_id,
        spent=trial.cost_flops or 0.0,
        bound=True,
    )


def to_observation(trial: Trial, fallback_cost: float = 1.0) -> Observation:
    """A failure that never measured its cost (crashed before the first step, no price
    function) is observed at `fallback_cost`, the typical cost so far."""
    if told_as_bound(trial):
        return bound_observation(trial)
    failed = trial.status == TrialStatus.FAILED
    cost = trial.cost_flops if trial.cost_flops and trial.cost_flops > 0 else fallback_cost
    return Observation(
        params=dict(trial.params),
        cost=cost,
        loss=None if failed else trial.loss,
        failed=failed,
        suggestion_id=trial.suggestion_id,
        spent=(trial.metrics or {}).get("spent_flops"),
        derived=trial.parent_id is not None,  # a decay branch: not a trial of its own
    )


def rebuild_optimizer(spec: SweepSpec, trials: Sequence[Trial]) -> Optimizer:
    """A fresh optimizer for `spec` with every observed trial replayed into it."""
    opt = build_optimizer(
        spec.space(), seed=spec.seed, name=spec.optimizer.name, settings=_settings(spec)
    )
    ordered = [t for t in observation_order(trials) if _in_space(spec, t)]
    costs = [t.cost_flops for t in ordered if t.cost_flops and t.cost_flops > 0]
    fallback = math.exp(sum(math.log(c) for c in costs) / len(costs)) if costs else 1.0
    for t in ordered:
        opt.observe(to_observation(t, fallback))
    return opt


def _in_space(spec: SweepSpec, trial: Trial) -> bool:
    """Whether the optimizer can be told this trial as it ran. A decay branch is a run at its
    own token count: told only where `tokens` is searched and its count inside the range (a
    clamped count would tell the optimizer a loss for a run that never happened)."""
    if trial.parent_id is None:
        return True
    names = spec.space().names
    if "tokens" not in names:
        return False
    p = spec.space().param("tokens")
    t = float(trial.params.get("tokens", math.nan))
    return (p.min is None or t >= p.min) and (p.max is None or t <= p.max)


def _settings(spec: SweepSpec) -> dict:
    settings = dict(spec.optimizer.settings)
    if spec.budget.max_total_cost and _takes(spec, "max_total_cost"):
        settings.setdefault("max_total_cost", spec.budget.max_total_cost)
    if _takes(spec, "max_trials"):
        settings.setdefault("max_trials", spec.budget.max_trials)
    if spec.budget.max_cost_per_trial and _takes(spec, "max_cost"):
        settings.setdefault("max_cost", spec.budget.max_cost_per_trial)
        price = load_price(spec)
        if price is not None and _takes(spec, "price"):
            settings.setdefault("price", price)
    return settings


def _takes(spec: SweepSpec, key: str) -> bool:
    from carbs import registry

    return registry.accepts(spec.optimizer.name, key)
