"""Pick every setting of a large run from small ones and predict its loss: a short composition
of the scaling model's stages.

    evidence (runs as arrays) -> ScalingModel (frontier, loss model chosen by backtest, fitted
    with a bootstrap) -> plan (routing, allocation, shape, tokens, settings, prediction)

`LargeRunPick.fits` carries what every reader needs, all read off the same fitted model: the
model's structure and why it was chosen, the optimal-loss curve with its band (plots and the
service's /predict), each setting's optimum along the compute-optimal path, the backtest, the
pick's own stage results, and the searched ranges the pick had to keep to. A figure can therefore
never disagree with the prediction, and can say where the pick leaves a law and why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from carbs.scaling.evidence import from_trials
from carbs.scaling.largerun import LargeRun, bounded, plan, supported
from carbs.scaling.lossmodel import SPARSITY
from carbs.scaling.model import ScalingModel, model_summary
from carbs.scaling.policy import DEFAULT_POLICY, Policy
from carbs.scaling.result import LargeRunPick, jsonable
from carbs.scaling.roles import infer_roles
from carbs.scaling.shape import trend
from carbs.scaling.types import TrialPoint
from carbs.space import SearchSpace

__all__ = [
    "FitOptions",
    "LargeRunPick",
    "Workload",
    "jsonable",
    "pick_from_model",
    "pick_large_run",
]

CURVE_POINTS = 40


@dataclass(frozen=True)
class Workload:
    """What the pick may ask of a config: `cost_fn` its FLOPs (the budget is then met
    exactly), `size_fn` the parameters its loss scales with (else N = FLOPs / (6 tokens)), and
    `roles`, which parameter is the width, depth, learning rate, ... where the names are not
    the usual ones."""

    cost_fn: Callable[[dict[str, Any]], float] | None = None
    size_fn: Callable[[dict[str, Any]], float] | None = None
    roles: Mapping[str, str] | None = None


@dataclass(frozen=True)
class FitOptions:
    seed: int = 0
    n_bootstrap: int = 200
    policy: Policy = DEFAULT_POLICY


def pick_large_run(
    points: Sequence[TrialPoint],
    space: SearchSpace,
    target_flops: float,
    workload: Workload = Workload(),
    options: FitOptions = FitOptions(),
) -> LargeRunPick:
    """The config for a run of `target_flops` FLOPs and its predicted loss (90 % interval)."""
    if not (target_flops > 0 and math.isfinite(target_flops)):
        raise ValueError(f"target_flops must be positive and finite, got {target_flops!r}")
    ev = from_trials(points, space, infer_roles(space, workload.roles), workload.size_fn)
    model = ScalingModel.fit_evidence(ev, options.policy, options.n_bootstrap, options.seed)
    return pick_from_model(model, space, target_flops, workload.cost_fn, workload.size_fn)


def pick_from_model(
    model: ScalingModel,
    space: SearchSpace,
    target: float,
    cost_fn: Callable[[dict[str, Any]], float] | None,
    size_fn: Callable[[dict[str, Any]], float] | None,
) -> LargeRunPick:
    """The pick of an already fitted model."""
    run = plan(model, space, target, cost_fn, size_fn)
    warnings = list(dict.fromkeys([*model.warnings, *run.warnings]))
    if target > 1e3 * model.max_cost:
        warnings.append(
            f"the target is {target / model.max_cost:.0f}x the costliest run: "
            "extrapolation beyond ~100x is unreliable"
        )
    fits = summary(model, run)
    fits["searched"] = searched_ranges(space, [*fits["optima_curves"], *run.config])
    return LargeRunPick(
        run.config, run.prediction.loss, run.prediction.interval, target, jsonable(fits), warnings
    )


def summary(model: ScalingModel, run: LargeRun) -> dict[str, Any]:
    """Everything a reader of the pick needs, from the one fitted model."""
    grid = np.exp(
        np.linspace(
            math.log(float(np.min(model.evidence.cost[model.evidence.ok])) / 2),
            math.log(run.target * 10.0),
            CURVE_POINTS,
        )
    )
    return {
        "model": model_summary(model),
        "optimal_loss_curve": loss_curve(model, grid, run),
        "optima_curves": optima_curves(model, grid, run),
        "runs": runs_table(model),
        "backtest": backtest_table(model),
        "pick": {
            "size": run.size,
            "tokens": run.tokens,
            "compute_optimal_size": run.allocation.size,
            "compute_optimal_size_ci90": list(run.allocation.size_interval()),
            "compute_optimal_tokens": run.allocation.tokens,
            "settings": {
                k: {
                    "optimum": o.value,
                    "sd_log": o.sd,
                    "clamped": o.clamped,
                    "follows": list(o.follows),
                }
                for k, o in run.settings.items()
            },
            "learning_rate": None
            if run.lr is None
            else {
                "picked": run.lr.value,
                "shift_sd": run.lr.shift_sd,
                "p_fail": run.lr.p_fail,
                "reasons": list(run.lr.reasons),
            },
            "prediction": run.prediction.to_dict(),
        },
        "predicted_loss_source": f"loss model ({model.fit.structure.family}) at the picked config",
    }


def searched_ranges(space: SearchSpace, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each searched parameter's range or choices, so a figure can show a law that leaves
    the values the large run may take (a top-k law heading to 3.2 where only 1 and 2 exist)."""
    out: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(names):
        if name not in space.names:
            continue
        p = space.param(name)
        out[name] = {
            "kind": str(p.kind),
            "min": p.min,
            "max": p.max,
            "choices": list(p.choices),
            "integer": p.is_integer,
            "multiple_of": p.multiple_of,
        }
    return out


def overhead_at(model: ScalingModel, run: LargeRun, compute: float) -> float:
    """C / (6 N D) along the compute path: the top runs' below the costliest run, the pick's
    at its target, log-linear between (bigger models spend relatively less on attention)."""
    start, end = model.overhead(), run.target / (6.0 * run.size * run.tokens)
    span = math.log(run.target / model.max_cost)
    if span <= 0:
        return end
    t = min(max(math.log(compute / model.max_cost) / span, 0.0), 1.0)
    return math.exp((1 - t) * math.log(start) + t * math.log(end))


def loss_curve(model: ScalingModel, grid: np.ndarray, run: LargeRun) -> dict[str, list[float]]:
    """The compute-optimal loss at each compute, with its 90 % interval bounded, at the size
    the pick would use there (`supported`: weighed with the runs', or theirs where the law's
    leaves what they support; the loss at the law's own optimum drew a curve 74 % below a
    demo's pick): the frontier the model extrapolates (what the service's /predict answers),
    at the pick's routing."""
    mid, lo, hi, size, tokens, prior = [], [], [], [], [], []
    for c in grid:
        alloc = supported(
            model, model.allocation(float(c), run.sparsity, overhead_at(model, run, float(c)))
        )
        rows = alloc.log_loss_rows
        if alloc.size_source != "law":  # the loss at the size the pick would use there
            extra = {} if run.sparsity is None else {SPARSITY: run.sparsity}
            rows = model.log_loss_rows(alloc.size, alloc.tokens, {}, extra)
        pred = bounded(model, model.predict_rows(rows, float(c)), float(c))
        mid.append(pred.loss)
        lo.append(pred.interval[0])
        hi.append(pred.interval[1])
        size.append(alloc.size)
        tokens.append(alloc.tokens)
        prior.append(alloc.size_source == "runs")
    return {
        "compute": grid.tolist(),
        "loss": mid,
        "lo": lo,
        "hi": hi,
        "size": size,
        "tokens": tokens,
        "size_from_prior": prior,  # the fitted size left what the runs support (`supported`)
    }


def optima_curves(
    model: ScalingModel, grid: np.ndarray, run: LargeRun
) -> dict[str, dict[str, list[float]]]:
    """Each setting's optimum along the compute-optimal path (the width read off the runs'
    trend with size, for optima that follow it)."""
    width = model.evidence.roles.get("width")
    out: dict[str, dict[str, list[float]]] = {}
    for c in grid:
        alloc = supported(
            model, model.allocation(float(c), run.sparsity, overhead_at(model, run, float(c)))
        )
        extra = {} if run.sparsity is None else {SPARSITY: run.sparsity}
        if width and all(width in p for p in model.evidence.params):
            extra["log width"] = math.log(
                trend(model.evidence, model.frontier.weight, width, math.log(alloc.size))
            )
        for name, opt in model.optima(alloc.size, alloc.tokens, extra).items():
            ax = model.axes.get(name)
            curve = out.setdefault(name, {"compute": [], "value": [], "lo": [], "hi": []})
            curve["compute"].append(float(c))
            curve["value"].append(opt.value)
            lo, hi = opt.z - 1.645 * opt.sd, opt.z + 1.645 * opt.sd
            curve["lo"].append(ax.from_z(lo) if ax else lo)
            curve["hi"].append(ax.from_z(hi) if ax else hi)
    return out


def runs_table(model: ScalingModel) -> dict[str, Any]:
    ev = model.evidence
    ok = ev.ok
    settings = {
        k: [model.axes[k].from_z(float(z)) for z in v]
        for k, v in model.data.z.items()
        if k in model.axes
    }
    return {
        "cost": ev.cost[ok].tolist(),
        "loss": ev.loss[ok].tolist(),
        "size": ev.size[ok].tolist(),
        "tokens": ev.tokens[ok].tolist(),
        "pareto": model.frontier.pareto.tolist(),
        "weight": model.frontier.weight.tolist(),
        "settings": settings,
        "failed_cost": ev.cost[ev.failed].tolist(),
    }


def backtest_table(model: ScalingModel) -> dict[str, Any]:
    """The chosen structure's held-out predictions, fold by fold."""
    sel = model.selection
    scored = next((s for s in sel.tried if s.structure == sel.structure), None)
    cost, loss = model.evidence.cost[model.evidence.ok], model.evidence.loss[model.evidence.ok]
    if scored is None or not sel.folds:
        return {"folds": [], "rms_log_error": None, "reason": "too few runs for a backtest"}
    folds = []
    for fold, resid, err in zip(sel.folds, scored.residuals, scored.errors, strict=True):
        folds.append(
            {
                "cutoff_cost": fold.cutoff_cost,
                "test_cost": cost[fold.test].tolist(),
                "test_loss": loss[fold.test].tolist(),
                "test_pred": (loss[fold.test] * np.exp(resid)).tolist(),
                "rms_log_error": err,
            }
        )
    return {"folds": folds, "rms_log_error": scored.score}
