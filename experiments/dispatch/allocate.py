"""Hand out trials to whoever runs them: requeued trials first, then new suggestions within the
budget, each claimed atomically under the caller's lease.

Why one function for the Ray driver and for ask/tell workers: both must obey the same rules
(no trial handed out twice, the budget never overshot by concurrent callers, the optimizer
rebuilt from the rows), so they share this code instead of two copies that drift apart.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

from experiments.rebuild import rebuild_optimizer, told_as_bound
from experiments.spec import SweepSpec
from experiments.store.models import Trial, TrialStatus
from experiments.store.repository import Store


def spent(trials: Sequence[Trial]) -> float:
    """FLOPs actually spent: trials that ran to an outcome (skipped over-limit ones cost nothing;
    a decay branch cost only its cool-down, `metrics.spent_flops`)."""
    return float(
        sum(
            float((t.metrics or {}).get("spent_flops", t.cost_flops or 0.0))
            for t in trials
            if t.status in TrialStatus.FINISHED and t.failure_reason != "over_cost_limit"
        )
    )


def budget_left(spec: SweepSpec, trials: Sequence[Trial]) -> int:
    """How many more trials may be created (cancelled trials do not count)."""
    live = [t for t in trials if t.status != TrialStatus.CANCELLED and t.parent_id is None]
    left = spec.budget.max_trials - len(live)
    if spec.budget.max_total_cost is not None and spent(trials) >= spec.budget.max_total_cost:
        return 0
    return max(left, 0)


def stopped_trials(opt: object, pruned: Sequence[Trial]) -> dict[str, object]:
    """What `suggest` is told of the stopped trials not observed as bounds, where it takes it:
    their configs (never rerun, not in flight) and what they spent (the budget paid it)."""
    if not pruned:
        return {}
    takes = inspect.signature(opt.suggest).parameters  # type: ignore[attr-defined]
    extra: dict[str, object] = {}
    if "tried" in takes:
        extra["tried"] = [t.params for t in pruned]
        if "tried_spent" in takes:
            extra["tried_spent"] = float(sum(t.cost_flops or 0.0 for t in pruned))
    return extra


@dataclass
class Allocation:
    trials: list[Trial]  # claimed for the caller: RUNNING under its lease
    exhausted: bool  # nothing pending, and no new trial could be made (budget, optimizer)


def allocate_trials(
    store: Store, spec: SweepSpec, sweep_id: int, owner: str, n: int, lease_s: float
) -> Allocation:
    """Claim up to `n` trials for `owner`: pending ones first, then fresh suggestions."""
    if n <= 0:
        return Allocation([], exhausted=False)
    claimed = store.claim_trials(sweep_id, owner, n, lease_s)
    if len(claimed) == n:
        return Allocation(claimed, exhausted=False)
    trials = store.trials(sweep_id)
    n_new = min(n - len(claimed), budget_left(spec, trials))
    if n_new <= 0:
        return Allocation(claimed, exhausted=not claimed)
    opt = rebuild_optimizer(spec, trials)
    busy = [t.params for t in trials if t.status in (TrialStatus.PENDING, TrialStatus.RUNNING)]
    # a stopped (pruned) config is neither a result nor to be rerun, nor in flight
    pruned = [t for t in trials if t.status == TrialStatus.PRUNED and not told_as_bound(t)]
    extra = stopped_trials(opt, pruned)
    suggestions = opt.suggest(n_new, pending=busy, **extra)
    made = store.create_trials(
        sweep_id,
        [(s.params, s.suggestion_id) for s in suggestions],
        max_trials=spec.budget.max_trials,
    )
    claimed += store.claim_trials(sweep_id, owner, n - len(claimed), lease_s)
    return Allocation(claimed, exhausted=not claimed and not made)
