"""The driver's side of early stopping: read running trials' streamed curves from the store,
ask `experiments.pruning` about each, stop the hopeless ones and record them as `pruned`.

Why in the driver: only it sees the whole sweep (the frontier, every finished curve) and owns the
running tasks; the worker only reports points.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from experiments.pruning import FinishedCurve, Point, PruneDecision, decide
from experiments.spec import SweepSpec
from experiments.store.models import MetricPoint, Trial, TrialStatus
from experiments.store.repository import Store
from experiments.store.trial_result import TrialResult

log = logging.getLogger(__name__)


def curve_points(
    curve: Sequence[MetricPoint], params: dict[str, Any], planned_cost: float | None
) -> list[Point]:
    """(FLOPs, validation loss) of a trial's evaluations, by step. FLOPs come from the point,
    else from its tokens as a share of the trial's planned `tokens` and cost."""
    out = []
    for m in sorted(curve, key=lambda m: m.step):
        if m.val_loss is None:
            continue
        flops = m.flops
        if flops is None and m.tokens and planned_cost and params.get("tokens"):
            flops = planned_cost * float(m.tokens) / float(params["tokens"])
        if flops is not None and flops > 0:
            out.append((float(flops), float(m.val_loss)))
    return out


def finished_curves(
    trials: Sequence[Trial], price: Callable[[dict[str, Any]], float | None]
) -> list[FinishedCurve]:
    """The succeeded trials' curves with their final loss and cost."""
    out = []
    for t in trials:
        if t.status != TrialStatus.SUCCEEDED or t.loss is None or not t.cost_flops:
            continue
        pts = curve_points(t.curve, t.params, t.cost_flops)
        if pts:
            out.append(FinishedCurve(pts, float(t.loss), float(t.cost_flops)))
    return out


def review_running(
    store: Store,
    spec: SweepSpec,
    sweep_id: int,
    in_flight: Sequence[int],
    price: Callable[[dict[str, Any]], float | None],
) -> list[tuple[Trial, PruneDecision]]:
    """The in-flight trials (of this driver) that should be stopped now, with why."""
    if not in_flight:
        return []
    trials = store.trials(sweep_id, with_curves=True)
    finished = finished_curves(trials, price)
    out = []
    mine = set(in_flight)
    for t in trials:
        if t.id not in mine or t.status != TrialStatus.RUNNING:
            continue
        planned = price(spec.space().full(t.params))
        if not planned:
            continue
        pts = curve_points(t.curve, t.params, planned)
        d = decide(pts, planned, finished, spec.pruning.min_evals, spec.pruning.margin)
        if d.prune:
            out.append((t, d))
    return out


def record_pruned(
    store: Store, trial: Trial, decision: PruneDecision, spent: float, planned: float | None = None
) -> bool:
    """Write the stopped trial as `pruned`: its curve stays, its cost is what it spent; the
    planned run's cost and its optimistic final loss are kept, which the optimizer is told as
    a bound (`experiments.rebuild`)."""
    return store.finish_trial(
        trial.id,
        TrialResult(
            TrialStatus.PRUNED,
            cost_flops=spent,
            failure_reason="pruned",
            error=decision.reason,
            metrics={
                "optimistic_final_loss": decision.optimistic_loss,
                "frontier_loss_at_cost": decision.frontier_loss,
                "planned_flops": planned,
            },
        ),
    )
