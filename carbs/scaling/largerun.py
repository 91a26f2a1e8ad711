"""The large run at a target compute: its size and tokens, shape, settings, and predicted loss.

Stages, each reading the fitted `ScalingModel`: routing (experts per token where the model
puts it, in the searched range) -> allocation (the compute-optimal size and tokens) -> shape
(width, depth and the other cost-scaling parameters for that size) -> tokens (the budget,
priced with the cost function) -> settings (each at its optimum for the picked size and data;
the learning rate on its conservative side, below the divergence boundary) -> prediction (the
model's loss at the picked config, with its interval). The allocation is solved again when the
picked shape spends a different share of FLOPs beyond 6 N D than the runs did.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from carbs.scaling.grid import solve_tokens, valid_value
from carbs.scaling.lossmodel import SPARSITY
from carbs.scaling.lrpick import LrChoice, choose_lr, fit_lr_cliff
from carbs.scaling.model import ASPECT, ScalingModel
from carbs.scaling.optima import Allocation, SettingOptimum, by_precision
from carbs.scaling.prediction import Prediction, with_expected_regret
from carbs.scaling.shape import (
    ROUTING_ROLES,
    Shape,
    ShapeTarget,
    log_trend,
    reference_run,
    solve_shape,
)
from carbs.space import SearchSpace

CostFn = Callable[[dict[str, Any]], float]
ALLOCATION_ROUNDS = 3


@dataclass(frozen=True)
class LargeRun:
    """Everything the pick decided, stage by stage."""

    config: dict[str, Any]
    target: float
    size: float
    tokens: float
    allocation: Allocation
    shape: Shape | None
    settings: Mapping[str, SettingOptimum]
    lr: LrChoice | None
    prediction: Prediction
    sparsity: float | None = None  # log experts per token the pick routes at
    warnings: tuple[str, ...] = field(default_factory=tuple)


def flops_size(cost_fn: CostFn, tokens: str) -> Callable[[dict[str, Any]], float]:
    """A config's size as FLOPs per token / 6: N where no parameter counter is given."""

    def size(c: dict[str, Any]) -> float:
        return cost_fn({**c, tokens: 1e9}) / 6e9

    return size


def choose_sparsity(model: ScalingModel, compute: float) -> float | None:
    """Experts per token (log) minimising the model's loss at the budget, within the runs'."""
    fit = model.fit
    if not fit.structure.sparsity or fit.sparsity_range is None:
        return None
    grid = np.linspace(*fit.sparsity_range, 41)
    losses = [float(model.allocation(compute, sparsity=float(u)).log_loss_rows[0]) for u in grid]
    return float(grid[int(np.argmin(losses))])


def routing_values(
    model: ScalingModel, u: float | None, ref: Mapping[str, Any]
) -> dict[str, float]:
    """The routing parameters for log experts per token `u` (top-k held where the runs were)."""
    roles = model.evidence.roles
    if u is None:
        return {}
    if roles.get("experts_per_token"):
        return {roles.get("experts_per_token"): math.exp(u)}  # type: ignore[dict-item]
    experts, top_k = roles.get("experts"), roles.get("top_k")
    if experts is None:
        return {}
    k = float(ref.get(top_k, 1.0)) if top_k else 1.0
    return {experts: math.exp(u) * k}


@dataclass(frozen=True)
class Draft:
    """The pick before its settings: allocation, shape, size, tokens, routing, reference run."""

    allocation: Allocation
    shape: Shape | None
    size: float
    tokens: float
    sparsity: float | None
    reference: Mapping[str, Any]
    notes: tuple[str, ...]


def plan(
    model: ScalingModel,
    space: SearchSpace,
    target: float,
    cost_fn: CostFn | None,
    size_fn: Callable[[dict[str, Any]], float] | None,
) -> LargeRun:
    """The large run of `target` FLOPs: its size and shape first, then its settings."""
    return settle(model, space, target, draft(model, space, target, cost_fn, size_fn))


def draft(
    model: ScalingModel,
    space: SearchSpace,
    target: float,
    cost_fn: CostFn | None,
    size_fn: Callable[[dict[str, Any]], float] | None,
) -> Draft:
    """Routing, the compute-optimal size, a shape of that size and the tokens of the budget;
    the size solved again where the shape spends another share of FLOPs than the runs did."""
    ev, roles = model.evidence, model.evidence.roles
    measure = size_fn or (flops_size(cost_fn, roles.tokens) if cost_fn and roles.tokens else None)
    u = choose_sparsity(model, target)
    ref = reference_run(ev, model.frontier.weight)
    overhead = model.overhead()
    for _ in range(ALLOCATION_ROUNDS):
        alloc = supported(model, model.allocation(target, sparsity=u, overhead=overhead))
        if measure is None:
            return Draft(
                alloc, None, alloc.size, alloc.tokens, u, ref, (alloc.note,) if alloc.note else ()
            )
        goal = ShapeTarget(
            alloc.size,
            _aspect_target(model, alloc, u),
            routing_values(model, u, ref),
            model.policy.clamp_routing,
        )
        shape = solve_shape(ev, model.frontier.weight, space, goal, measure)
        tokens = _tokens(shape, space, target, cost_fn, roles.tokens, overhead)
        new = target / (6.0 * shape.size * tokens)
        if abs(math.log(new / overhead)) < 0.01:
            break
        overhead = new
    notes = (*shape.notes, alloc.note) if alloc.note else shape.notes
    return Draft(alloc, shape, shape.size, tokens, u, ref, notes)


def top_frontier_sizes(model: ScalingModel) -> np.ndarray:
    """Sizes of the model's top runs: where the compute-optimal size is at the costliest."""
    return np.exp(model.data.log_n[model.top_runs()])


# published exponents of the compute-optimal size, N_opt ~ C^a: Kaplan et al. 2020 0.73,
# Hoffmann et al. 2022 0.50, Porian et al. 2024 0.5-0.87 by recipe; the range 0.3-0.75 read as
# +-2 sd about Hoffmann's 0.5 is the prior on how the runs' sizes grow past them
SIZE_EXPONENT_RANGE = (0.3, 0.75)
SIZE_EXPONENT_PRIOR = 0.5
SIZE_EXPONENT_SD = (SIZE_EXPONENT_RANGE[1] - SIZE_EXPONENT_RANGE[0]) / 4
SIZE_NOTE_SHIFT = math.log(1.1)  # a size moved further than this from the law's is said


def runs_size_prior(model: ScalingModel, compute: float) -> tuple[float, float]:
    """(mean, sd) of log N_opt at `compute` from the top near-frontier runs alone: each one's
    size grown from its own cost at the prior exponent; the sd is the exponent's over the
    reach and the runs' spread about their mean."""
    top = model.top_runs()
    log_n, log_c = model.data.log_n[top], model.data.cov["log C"][top]
    w = model.frontier.weight[top] + 1e-12
    grown = log_n + SIZE_EXPONENT_PRIOR * (math.log(compute) - log_c)
    mean = float(np.average(grown, weights=w))
    spread2 = float(np.average((grown - mean) ** 2, weights=w)) / max(len(grown) - 1, 1)
    reach = max(math.log(compute / model.max_cost), 0.0)
    return mean, math.sqrt((SIZE_EXPONENT_SD * reach) ** 2 + spread2)


def supported(model: ScalingModel, alloc: Allocation) -> Allocation:
    """The allocation's size kept within what the runs support, and weighed against them.

    Support: the top near-frontier runs' sizes grown with compute at the slow and the fast end
    of published exponents (`SIZE_EXPONENT_RANGE`). Outside it the law is not trusted for the
    size at all: the runs' own (geometric mean) size grown at Hoffmann's 0.5 is used instead
    of the nearer bound (a degenerate law put N_opt at 1e3 parameters on a CPU sweep; at the
    bound the pick was the smallest model, 9 % worse than the sweep's best run). Inside it, the
    law's size (its replicates' spread) and the runs' (`runs_size_prior`) are combined by
    their precisions: where the bootstrap cannot place the optimum, what the sweep found best,
    grown at a published rate, carries the weight it deserves."""
    ratio = alloc.compute / model.max_cost
    sizes = top_frontier_sizes(model)
    slow, fast = SIZE_EXPONENT_RANGE
    lo, hi = float(np.min(sizes)) * ratio**slow, float(np.max(sizes)) * ratio**fast
    if lo <= alloc.size <= hi:
        rows = np.log(np.asarray(alloc.size_rows, dtype=float))
        if len(rows) < 3:
            return alloc
        law_sd = max(float(np.std(rows[1:])), 1e-6)
        mean, sd = runs_size_prior(model, alloc.compute)
        log_size, size_sd = by_precision((math.log(alloc.size), law_sd), (mean, sd))
        size = math.exp(log_size)
        note = None
        if abs(math.log(size / alloc.size)) > SIZE_NOTE_SHIFT:
            note = (
                f"the fitted compute-optimal size ({alloc.size:.3g}) is uncertain (its "
                f"replicates spread x{math.exp(law_sd):.2g}): weighed with the top runs' sizes "
                f"grown as C^{SIZE_EXPONENT_PRIOR} ({math.exp(mean):.3g}), used {size:.3g}"
            )
        return replace(
            alloc,
            size=size,
            tokens=alloc.tokens * alloc.size / size,
            note=note,
            size_source="weighed",
            size_sd_log=size_sd,
        )
    prior = math.exp(float(np.mean(np.log(sizes)))) * ratio**0.5
    size = min(max(prior, lo), hi)
    tokens = alloc.tokens * alloc.size / size
    return Allocation(
        alloc.compute,
        size,
        tokens,
        alloc.overhead,
        alloc.size_rows,
        alloc.log_loss_rows,
        f"the fitted compute-optimal size ({alloc.size:.3g}) is outside what the runs "
        f"support ({lo:.3g}..{hi:.3g}); used {size:.3g}",
        "runs",
        runs_size_prior(model, alloc.compute)[1],
    )


def _aspect_target(model: ScalingModel, alloc: Allocation, u: float | None) -> float | None:
    """The log aspect ratio for the allocation's size and data (None: not modelled): the loss
    model's optimum combined by precision with where the near-frontier runs sit (their trend in
    log N, their spread as its sd). Why both: an aspect penalty is shallow, so the loss model's
    optimum is often barely determined (sd ~1 in log), while the optimizer's best runs show
    where good aspects were found. Kept within the aspects the runs tried."""
    names = [t.name for t in model.fit.structure.settings]
    ev = model.evidence
    if ASPECT not in names or ev.aspect is None:
        return None
    extra = {SPARSITY: u} if u is not None else None
    # the aspect's optimum follows size and data only, so it is known before the shape
    rows = model.fit.optimum_z(ASPECT, model.scale_at(alloc.size, alloc.tokens, extra))
    z_fit, sd_fit = float(rows[0]), max(float(np.std(rows[1:])) if len(rows) > 2 else 0.0, 1e-3)
    ok = ev.ok
    z_runs, sd_runs = log_trend(
        np.log(ev.size[ok]), ev.aspect[ok], model.frontier.weight, math.log(alloc.size)
    )
    z, _ = by_precision((z_fit, sd_fit), (z_runs, sd_runs))
    ax = model.axes[ASPECT]
    return min(max(z, ax.lo), ax.hi)


def _tokens(
    shape: Shape,
    space: SearchSpace,
    target: float,
    cost_fn: CostFn | None,
    key: str | None,
    overhead: float,
) -> float:
    """Tokens that make the config cost the target (priced with the cost function)."""
    if cost_fn is None or key is None:
        return target / (6.0 * overhead * shape.size)
    p = space.param(key) if key in space.names else None
    return solve_tokens(shape.params, cost_fn, target, p, key)


def settle(model: ScalingModel, space: SearchSpace, target: float, d: Draft) -> LargeRun:
    """Settings at the picked size and data, the lr's choice, the config and its prediction."""
    ev, roles = model.evidence, model.evidence.roles
    notes = list(d.notes)
    size, tokens = d.size, d.tokens
    cfg = dict(d.reference)
    if d.shape is not None:
        cfg.update(d.shape.params)
    if roles.tokens:
        cfg[roles.tokens] = tokens
    extra = _extra(cfg, roles, d.sparsity)
    optima = model.optima(size, tokens, extra)
    lr = None
    if roles.lr in optima:
        opt = optima[roles.lr]
        ratio = float(model.fit.curvature(roles.lr)[1][0])
        cliff = fit_lr_cliff(model.fit, ev, roles.lr)
        lr = choose_lr(opt, ratio, cliff, math.log(size), model.axes[roles.lr].from_z, model.policy)
        notes.extend(lr.warnings)
        # the settings that follow the lr (weight decay's timescale) read the lr chosen
        optima = {**model.optima(size, tokens, extra, {roles.lr: lr.z}), roles.lr: opt}
    values: dict[str, float] = {}
    for name, opt in optima.items():
        if name == ASPECT:
            continue
        z = lr.z if lr is not None and name == roles.lr else opt.z
        if opt.clamped:
            notes.append(
                f"{name}: its optimum at the target lies outside the searched range; "
                "kept at the bound (the runs show nothing beyond it)"
            )
        values[name] = model.axes[name].from_z(z)
        if name in space.names:
            cfg[name] = valid_value(space.param(name), values[name])
    searched = {k: cfg[k] for k in space.names if k in cfg}
    if not space.is_feasible(searched):
        notes.append("the picked config violates a constraint of the search space")
    picked = {k: float(cfg.get(k, v)) for k, v in values.items()}
    scale = _with_aspect(extra, cfg, roles)
    if ASPECT in optima and "z aspect" in scale:
        picked[ASPECT] = scale["z aspect"]  # charged for the shape's aspect, as the runs were
    rows = model.log_loss_rows(size, tokens, picked, scale)
    pred = with_expected_regret(model.predict_rows(rows, target), rows, d.allocation.log_loss_rows)
    pred = bounded(model, pred, target)
    notes.extend(pred.warnings)
    return LargeRun(
        cfg, target, size, tokens, d.allocation, d.shape, optima, lr, pred, d.sparsity, tuple(notes)
    )


def bounded(model: ScalingModel, pred: Prediction, target: float) -> Prediction:
    """The interval within what is physically so: not below the irreducible loss's 5 %
    bootstrap quantile, and, for a compute-optimal run costlier than every small one, not above
    the best small run's loss (more compute at good settings does not do worse)."""
    ev = model.evidence
    e_lo = float(np.quantile(model.fit.irreducible(), 0.05))
    lo, hi = pred.interval
    lo = min(max(lo, e_lo), pred.loss)
    if target > model.max_cost:
        hi = max(min(hi, float(np.min(ev.loss[ev.ok]))), pred.loss)
    return replace(pred, interval=(lo, hi))


def _extra(cfg: Mapping[str, Any], roles: Any, u: float | None) -> dict[str, float]:
    out: dict[str, float] = {}
    width = roles.get("width")
    if width and cfg.get(width):
        out["log width"] = math.log(float(cfg[width]))
    if u is not None:
        out[SPARSITY] = u
    return out


def _with_aspect(extra: dict[str, float], cfg: Mapping[str, Any], roles: Any) -> dict[str, float]:
    out = dict(extra)
    w, d = roles.get("width"), roles.get("depth")
    if w and d and cfg.get(w) and cfg.get(d):
        out["z aspect"] = math.log(float(cfg[w]) / float(cfg[d]))
    return out


__all__ = ["ROUTING_ROLES", "LargeRun", "plan"]
