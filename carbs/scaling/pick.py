"""Choose every setting of a large run from small ones, and predict its loss with intervals.

Pipeline (each step bootstrapped as one resample of the trials, rows of weights refitted at
once): frontier L(C) on the Pareto set -> nearness of each run to the frontier -> a law per
scaled parameter vs compute on near-frontier runs (shape) -> a joint response model
L(N, D, settings) on all runs, whose Chinchilla part sets the size N_opt at the target and whose
size-conditioned optima set the learning rate, batch size, ... at the picked N -> a consistent
config (shape matched to N_opt on the valid grid, beyond the search range where the large run
needs it, tokens from the budget) -> a learning rate on the conservative side of its optimum and
outside the divergence boundary fitted on the failed runs. The loss is predicted by the joint
model at the picked config; intervals come from the bootstrap, widened by the backtest error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from carbs.scaling import huber as hb
from carbs.scaling import laws
from carbs.scaling.assemble import assemble_shape, base_config, range_warnings, solve_budget
from carbs.scaling.backtest import backtest
from carbs.scaling.combine import combine_predictions
from carbs.scaling.covariates import (
    ASPECT,
    default_follows,
    fit_joint,
    log_aspect,
    max_settings,
    predictor_errors,
    scale_vars,
    setting_var,
)
from carbs.scaling.divergence import Cliff, fit_cliff
from carbs.scaling.frontier import fit_frontier_boot
from carbs.scaling.hpchoice import choose_settings, lr_cliff, space_settings
from carbs.scaling.hplaws import HPLaw, fit_hp_law, nearness_weights, transform
from carbs.scaling.pickfits import chinchilla_fits as _chinchilla_fits
from carbs.scaling.pickfits import fits_dict as _fits_dict
from carbs.scaling.pickfits import pareto_rows as _pareto_rows
from carbs.scaling.pickfits import with_curves as _with_curves
from carbs.scaling.plausible import plausible_loss
from carbs.scaling.response import LR_NAMES, ResponseFit
from carbs.scaling.result import LargeRunPick, jsonable
from carbs.scaling.size import (
    flops_size_fn,
    overhead_ratio,
    run_sizes,
    sane_size,
    size_at_target,
)
from carbs.scaling.types import TrialPoint
from carbs.space import SearchSpace

__all__ = ["LargeRunPick", "pick_large_run", "jsonable"]

TOKEN_NAMES = ("tokens", "train_tokens")
MIN_POINTS = 3
FEW_POINTS = 8
RESP_TAU = 3.0  # the joint model weights runs by nearness, over a wider band than the laws
RESP_FLOOR = 0.05
SHAPE_VS_SIZE = True
MIN_SPREAD = 0.02  # sd (log or logit) below which the runs cannot locate an optimum


def _tokens_of(p: TrialPoint, key: str | None) -> float | None:
    if key and key in p.params:
        return float(p.params[key])
    t = p.metrics.get("tokens")
    return float(t) if t is not None else None


def pick_large_run(
    points: Sequence[TrialPoint],
    space: SearchSpace,
    target_flops: float,
    *,
    cost_fn: Callable[[dict[str, Any]], float] | None = None,
    size_fn: Callable[[dict[str, Any]], float] | None = None,
    seed: int = 0,
    n_bootstrap: int = 200,
    use_curves: bool = False,
) -> LargeRunPick:
    """Pick the config for a run of `target_flops` FLOPs and predict its loss.

    `cost_fn` prices a full config (e.g. models.accounting.training_flops_for_params); with it
    the shape is solved for consistency and tokens from the budget; without it each parameter
    follows its own law vs compute (warned). `size_fn` counts the parameters the loss scales
    with (active, non-embedding: models.accounting.active_params_for_params); without it the
    size is FLOPs per token / 6, which counts attention and the output head as parameters and
    so bends the size law at small scale. Needs >= 3 successful trials; < 8 is warned.
    Failed trials (diverged runs) shape the learning-rate boundary.
    """
    if not (target_flops > 0):
        raise ValueError(f"target_flops must be positive, got {target_flops!r}")
    ok = [p for p in points if not p.failed and p.loss is not None
          and math.isfinite(p.loss) and p.loss > 0]  # fmt: skip
    failed = [p for p in points if p.failed]
    if len(ok) < MIN_POINTS:
        raise ValueError(
            f"pick_large_run needs at least {MIN_POINTS} successful trials, got {len(ok)}: "
            "run more of the sweep first"
        )
    warnings: list[str] = []
    if len(ok) < FEW_POINTS:
        warnings.append(
            f"only {len(ok)} successful trials: laws are weakly determined and the "
            "intervals are wide; treat the pick as a rough guide"
        )
    rng = np.random.default_rng(seed)
    costs = np.array([p.cost for p in ok], float)
    loss = np.array([p.loss for p in ok], float)
    n = len(ok)
    counts = np.vstack([np.ones((1, n)), hb.bootstrap_weights(n, n_bootstrap, rng)])
    max_cost = float(costs.max())
    if target_flops > 1e3 * max_cost:
        warnings.append(
            f"target is {target_flops / max_cost:.0f}x the costliest trial: "
            "extrapolation beyond ~100x is unreliable"
        )

    # 1. frontier (optionally with learning-curve points of each run, resampled with it)
    fc, fl, fcounts = costs, loss, counts
    if use_curves:
        fc, fl, fcounts = _with_curves(ok, costs, loss, counts)
    fb = fit_frontier_boot(fc, fl, fcounts)
    fb_all = fit_frontier_boot(fc, fl, fcounts, pareto=False)
    x0 = fb.x0

    # 2. nearness of each run to its replicate's frontier
    excess = np.log(loss)[None, :] - np.log(laws.frontier_predict(fb.theta, costs, x0))
    on = fb.masks[0, : len(ok)] if not use_curves else _pareto_rows(costs, loss)
    sd = float(np.sqrt(np.mean(excess[0, on] ** 2))) if on.any() else 0.02
    tau = float(np.clip(1.5 * sd, 0.01, 0.05))
    W = counts * nearness_weights(excess, tau)
    W_wide = counts * np.maximum(nearness_weights(excess, RESP_TAU * tau), RESP_FLOOR)

    # 3. laws per parameter vs compute (shape; fallbacks; plots) + size and tokens per param
    tok_key = next((k for k in TOKEN_NAMES if k in ok[0].params), None)
    hp: dict[str, HPLaw] = {}
    for prm in space.params:
        if prm.kind == "categorical":
            continue
        vals = np.array([float(p.params[prm.name]) for p in ok])
        if np.any(vals <= 0) and prm.kind != "logit":
            continue
        # a setting with a shallow penalty barely changes which runs are near the frontier:
        # the narrow band keeps few runs and mostly noise, so it takes the wider band
        wide = not prm.scales_cost and prm.name not in LR_NAMES
        hp[prm.name] = fit_hp_law(prm.name, prm, costs, vals, W_wide if wide else W, x0)
    toks = [_tokens_of(p, tok_key) for p in ok]
    have_tokens = all(t is not None and t > 0 for t in toks)
    tarr = np.array(toks, float) if have_tokens else None
    n_eff = run_sizes(ok, costs, tarr, size_fn) if tarr is not None else None
    ratio = overhead_ratio(costs, tarr, n_eff)
    r_runs = float(ratio[int(np.argmax(costs))]) if ratio is not None else 1.0
    hp_size: dict[str, HPLaw] | None = None
    if tarr is not None and n_eff is not None:
        # shape vs size, read at the picked size (consistent with it whatever law set it)
        xn = float(np.average(np.log(n_eff), weights=W[0] + 1e-12))
        hp_size = {k: fit_hp_law(k, law.param, n_eff, np.array([float(p.params[k]) for p in ok]),
                                 W, xn) for k, law in hp.items()
                   if law.param is not None and law.param.scales_cost}  # fmt: skip
        hp["n_params"] = fit_hp_law("n_params", None, costs, n_eff, W, x0)
        hp["tokens_per_param"] = fit_hp_law("tokens_per_param", None, costs, tarr / n_eff, W, x0)

    # 4. Chinchilla L(N, D) on the Pareto set (a start for the joint model, and reported)
    chin = None
    if tarr is not None and n >= 5:
        chin = _chinchilla_fits(costs, loss, tarr, counts, fb.masks, target_flops / r_runs, n_eff)

    # 5. the joint response model: size, data and size-conditioned optima of the settings
    resp: ResponseFit | None = None
    pred_bt: dict[str, float] | None = None
    settings_names = _settings(space, ok, tok_key)
    if tarr is not None and n_eff is not None and chin and "all" in chin:
        # the shape's aspect ratio is modelled like a setting (its optimum follows log N): a
        # run too wide or too deep for its size learns slower, and left out of the model that
        # excess was read as size and data terms (space-filling trials of the scaling world:
        # the joint model's prediction at 100x 4-6 % off on seeds 0, 2, 8, ~1-2 % with the
        # world's aspect penalty switched off)
        aspects = [log_aspect(p.params) for p in ok]
        fit_names = settings_names + ([ASPECT] if _varies(aspects) else [])
        fit_names = fit_names[: max_settings(n)]
        settings_names = [s for s in fit_names if s != ASPECT]
        Z = np.array([[float(transform(space.param(s), np.array(p.params[s]))) if s != ASPECT
                       else float(a) for s in fit_names] for p, a in zip(ok, aspects, strict=True)]
                     ).reshape(n, len(fit_names))  # fmt: skip
        start = np.array(list(chin["all"]["params"].values()), float)
        w_fit = W_wide
        cov = _cov_rows(ok, costs, tarr, settings_names, space, size_fn)
        follows = default_follows(fit_names, cov)
        resp = fit_joint(n_eff, tarr, loss, Z, fit_names, w_fit, W[0], start, cov, follows)
        pred_bt = predictor_errors(n_eff, tarr, loss, costs, Z, fit_names, cov, W[0], start,
                                   follows)  # fmt: skip

    # 6. the size at the target
    # the near-frontier runs' own size trend: its bootstrap spread says how well the sweep
    # pins N's growth (a Chinchilla fit over a narrow N range can be falsely sure of it)
    law_sd = float(np.std(hp["n_params"].coef[1:, 1])) if "n_params" in hp else 0.0
    law_at_max = hp["n_params"].value_at(max_cost) if "n_params" in hp else None
    lr_key = next((k for k in LR_NAMES if k in hp), None)
    skip = {lr_key} | set(resp.hp_names if resp else ())
    measure = _size_measure(cost_fn, size_fn, tok_key)
    # the Chinchilla optimum trades N against D at C = 6 N D; where the size counts parameters
    # only, a run also spends FLOPs on attention and the output head (ratio r = C / 6 N D), so
    # the law is solved at C / r: r first from the costliest run, then from the picked config
    r_target = r_runs
    for _ in range(2):
        notes: list[str] = []
        n_target = size_at_target(resp, chin, target_flops / r_target, notes, max_cost / r_runs,
                                  law_sd, law_at_max)  # fmt: skip
        n_target = sane_size(n_target, costs, n_eff, target_flops, max_cost, notes)

        # 7. the config: shape and tokens, then settings at the picked size, then the budget
        cfg = base_config(ok, space, target_flops, hp, skip)
        cfg = assemble_shape(cfg, ok, space, target_flops, hp, tok_key, cost_fn, n_target, notes,
                             hp_size if SHAPE_VS_SIZE else None, measure)  # fmt: skip
        if measure is None or tok_key not in cfg:
            break
        r_new = target_flops / (6.0 * float(cfg[tok_key]) * measure(cfg))
        if abs(math.log(r_new / r_target)) < 0.01:
            break
        r_target = r_new
    warnings.extend(notes)
    if measure is not None and tok_key in cfg:
        n_pick = measure(cfg)
    else:
        n_pick = n_target or (float(hp["n_params"].value_at(target_flops)[0]) if "n_params" in hp
                              else target_flops)  # fmt: skip
    cliff = _cliff(resp, lr_key, space, ok, failed, costs, tarr, tok_key, hp, warnings, size_fn)
    size_for_cliff = n_pick if resp is not None else target_flops
    tok_pick = float(cfg[tok_key]) if tok_key in cfg else target_flops / (6.0 * n_pick)
    settings = choose_settings(cfg, space, resp, hp, size_for_cliff, target_flops, lr_key, cliff,
                               warnings, scale_vars(n_pick, tok_pick, target_flops, cfg))  # fmt: skip
    if cost_fn is not None and tok_key is not None and tok_key in cfg:
        solve_budget(cfg, space, cost_fn, target_flops, tok_key)
        n_pick = measure(cfg) if measure is not None else n_pick
    searched = {k: cfg[k] for k in space.names if k in cfg}
    if not space.is_feasible(searched):
        warnings.append("the picked config violates a space constraint; check the laws")
    warnings.extend(range_warnings(cfg, space))

    # 8. predicted loss with bootstrap interval, widened by the backtest
    pred = fb.predict(np.array([target_flops]))[:, 0]
    pred_source = "frontier L(C)"
    alone: tuple[str, np.ndarray] | None = None  # the one Chinchilla-form law behind `pred`
    parts: dict[str, float] = {"frontier": float(pred[0])}
    if resp is not None and tok_key in cfg:
        z = {
            s: float(transform(space.param(s), np.array(cfg[s])))
            for s in space_settings(resp, space)
        }
        aspect_pick = log_aspect(cfg)
        if ASPECT in resp.hp_names and aspect_pick is not None:
            z[ASPECT] = aspect_pick
        # settings with a shallow penalty were picked where their near-frontier law puts the
        # optimum, not where the joint model does (choose_settings): predicting them with the
        # joint's penalty around its own optimum charged the pick for a location it rejected
        # (+3.5 % mean bias on CARBS' trials of the scaling world); they count as optimal
        # (the aspect is charged: the shape is not set where the joint model puts its optimum,
        # but the runs show what being off it costs; 1.82 % vs 2.02 % on the space-filling trials)
        z_pen = {s: v for s, v in z.items() if s == lr_key or s not in hp}
        pred = resp.predict(n_pick, float(cfg[tok_key]), z_pen, _cov_at(resp, n_pick, cfg, tok_key,
                                                                       target_flops, z))  # fmt: skip
        pred_source = "joint response model at the picked N, tokens and settings"
        alone = ("joint", resp.chin()[0])
    elif chin and "pareto" in chin and tok_key in cfg and cost_fn is not None:
        pred = laws.chinchilla_predict(
            chin["_boot_pareto"], np.array([n_pick]), np.array([float(cfg[tok_key])])
        )[:, 0]
        pred_source = "Chinchilla L(N, D) at the picked N and tokens"
        alone = ("pareto_chinchilla", chin["_boot_pareto"][0])
    typ = ((float(loss.min()), float(np.exp(np.mean(np.log(n_eff)))),
            float(np.exp(np.mean(np.log(tarr))))) if n_eff is not None and tarr is not None
           else (float(loss.min()), None, None))  # fmt: skip
    degenerate: str | None = None  # why every loss law the prediction used is degenerate
    if resp is not None and chin and "pareto" in chin and tok_key in cfg:
        # two structurally different fits (all runs with setting penalties; Pareto set only)
        # disagree most where the space has shape effects N does not capture: average them
        # in log and let the interval cover both
        alt = laws.chinchilla_predict(chin["_boot_pareto"], np.array([n_pick]),
                                      np.array([float(cfg[tok_key])]))[:, 0]  # fmt: skip
        parts.update({"joint": float(pred[0]), "pareto_chinchilla": float(alt[0])})
        bad = {"joint": laws.chinchilla_implausible(resp.chin()[0], *typ),
               "pareto_chinchilla": laws.chinchilla_implausible(chin["_boot_pareto"][0], *typ)}  # fmt: skip
        fits_plausible = {k2: v or "plausible" for k2, v in bad.items()}
        if all(bad.values()):
            degenerate = "; ".join(f"{k2}: {v}" for k2, v in bad.items())
        pred, sj, why = combine_predictions(pred, alt, pred_bt, bad)
        pred_source += (f" ({sj:.0%}) combined in log with Chinchilla L(N, D) on the Pareto set "
                        f"({1 - sj:.0%}), {why}")  # fmt: skip
        cover = (
            min(parts["joint"], parts["pareto_chinchilla"]),
            max(parts["joint"], parts["pareto_chinchilla"]),
        )
    else:
        cover = None
        fits_plausible = None
        if alone is not None:  # one law alone: it must be determined to be trusted
            degenerate = laws.chinchilla_implausible(alone[1], *typ)
            fits_plausible = {alone[0]: degenerate or "plausible"}
    point = float(pred[0])
    boot_ci = [float(v) for v in np.quantile(pred[1:], [0.05, 0.95])] if n_bootstrap else None
    lo, hi = boot_ci if boot_ci else (point, point)
    lo, hi = min(lo, point), max(hi, point)
    if cover is not None:
        lo, hi = min(lo, cover[0]), max(hi, cover[1])
    bt = backtest(fc, fl)
    if bt.get("loss_rel_err_mean") is not None:
        e = float(bt["loss_rel_err_max"])
        if pred_bt is not None:
            # the picked loss comes from the joint/Chinchilla predictors, not the frontier L(C):
            # their own held-out RMS error on the costlier runs is the base, inflated by the
            # small-sample t factor for the few runs scored (t_0.95,k-1 / z_0.95)
            k = max(int(pred_bt["n_scored"]), 2)
            e = max(pred_bt["joint"], pred_bt["pareto_chinchilla"]) * _t95(k - 1) / 1.645
        ext = math.log(target_flops / max_cost) / max(bt["log_extrapolation"], 1e-9)
        widen = e * max(1.0, ext)  # backtest error grows with how far we extrapolate
        lo, hi = min(lo, point * (1 - widen)), max(hi, point * (1 + widen))
    else:
        warnings.append("too few frontier points for a backtest; interval is bootstrap-only")

    # a loss is never below the irreducible term: floor the interval at E's lower bound (> 0)
    floor = _loss_floor(resp, chin)
    lo = min(max(lo, floor), point)
    # multiplicative widening says nothing past the worst run that trained at all: a run of the
    # picked shape with 100x the compute is not expected to end above it
    hi = max(min(hi, float(loss.max())), point)
    point, lo, hi, fallback = plausible_loss(point, lo, hi, costs, loss, target_flops, warnings,
                                              degenerate)  # fmt: skip
    if fallback is not None:
        parts["fitted"] = float(pred[0])
        pred_source = fallback
    warnings = [w for w in warnings if not w.lstrip().upper().startswith("DEBUG")]

    fits = _fits_dict(fb, fb_all, fc, fl, x0, hp, ok, costs, loss, counts, W, toks, failed,
                      target_flops, max_cost, n, tau, bt, n_eff)  # fmt: skip
    fits["predicted_loss_bootstrap_ci90"] = boot_ci
    fits["predicted_loss_source"] = pred_source
    fits["predicted_loss_parts"] = parts
    fits["predictor_backtest"] = pred_bt
    fits["predictor_plausibility"] = fits_plausible
    fits["learning_rate"] = settings.get(lr_key, {}) if lr_key else {}
    fits["settings"] = settings
    fits["failure"] = cliff.to_dict() if cliff else None
    fits["size"] = {
        "n_target": n_target,
        "n_picked": n_pick,
        "measure": "size_fn (parameter count)" if size_fn else "cost / (6 tokens)",
        "flops_overhead_at_target": r_target,
    }
    if resp is not None:
        fits["response"] = resp.summary()
    if chin:
        chin.pop("_boot_pareto", None)
        chin.pop("_boot_all", None)
        fits["chinchilla"] = chin
    return LargeRunPick(cfg, point, (lo, hi), target_flops, fits, warnings)


def _varies(values: Sequence[float | None]) -> bool:
    """True when every run has the value and it varies enough to locate an optimum."""
    if not values or any(v is None for v in values):
        return False
    return float(np.std(np.array(values, float))) > MIN_SPREAD


def _t95(dof: int) -> float:
    """One-sided 95 % quantile of Student's t."""
    from scipy.stats import t

    return float(t.ppf(0.95, dof))


def _loss_floor(resp: ResponseFit | None, chin: dict[str, Any] | None) -> float:
    """The 5 % bootstrap quantile of the fitted irreducible loss E (0 without a fit)."""
    rows = [resp.chin()] if resp is not None else []
    if chin and "_boot_pareto" in chin:
        rows.append(np.asarray(chin["_boot_pareto"]))
    vals = [np.exp(r[:, 2]) for r in rows if len(r)]
    if not vals:
        return 0.0
    e = np.concatenate(vals)
    e = e[np.isfinite(e)]
    return float(max(np.quantile(e, 0.05), 0.0)) if len(e) else 0.0


def _settings(space: SearchSpace, ok: Sequence[TrialPoint], tok_key: str | None) -> list[str]:
    """Numeric settings that do not scale cost and vary across runs, learning rate first."""
    out = []
    for p in space.params:
        if p.kind == "categorical" or p.scales_cost or p.name == tok_key:
            continue
        vals = np.array([float(q.params.get(p.name, np.nan)) for q in ok])
        if not np.all(np.isfinite(vals)) or (p.kind != "logit" and np.any(vals <= 0)):
            continue
        if _varies(list(transform(p, vals))):
            out.append(p.name)
    return sorted(out, key=lambda s: (s not in LR_NAMES, "batch" not in s))


def _cliff(resp, lr_key, space, ok, failed, costs, tarr, tok_key, hp, warnings,  # noqa: ANN001
           size_fn) -> Cliff | None:  # fmt: skip
    """The divergence boundary: vs the joint model's lr optimum and log N, else vs log C."""
    if lr_key is None:
        if failed:
            warnings.append("runs failed but no learning-rate parameter was found to model it")
        return None
    fails = [p for p in failed if lr_key in p.params]
    if resp is not None and lr_key in resp.hp_names and tarr is not None:
        names = space_settings(resp, space)
        fails = [p for p in fails if _tokens_of(p, tok_key)
                 and all(s in p.params for s in names)]  # fmt: skip
        ft = np.array([float(_tokens_of(p, tok_key)) for p in fails], float)
        fc = np.array([p.cost for p in fails], float)
        cov_ok = _cov_rows(ok, costs, tarr, names, space, size_fn)
        cov_f = _cov_rows(fails, fc, ft, names, space, size_fn) if fails else {}
        return lr_cliff(resp, lr_key, space, [p.params for p in ok], cov_ok,
                        [p.params for p in fails], cov_f)  # fmt: skip
    if lr_key not in hp:
        return None
    law = hp[lr_key]
    u_ok = np.array([math.log(float(p.params[lr_key])) - law.z_at(p.cost)[0] for p in ok])
    u_f = np.array([math.log(float(p.params[lr_key])) - law.z_at(p.cost)[0] for p in fails])
    return fit_cliff(u_ok, np.log([p.cost for p in ok]), u_f, np.log([p.cost for p in fails]))


def _cov_rows(pts: Sequence[TrialPoint], costs: np.ndarray, toks: np.ndarray,
              names: Sequence[str], space: SearchSpace,
              size_fn: Callable[[dict[str, Any]], float] | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """Scale variables and settings' z of each run, as arrays by name."""
    sizes = run_sizes(pts, costs, toks, size_fn)
    rows = [scale_vars(float(nn), t, c, p.params) for p, c, t, nn in zip(pts, costs, toks, sizes,
                                                                        strict=True)]  # fmt: skip
    keys = [k for k in rows[0] if all(k in r for r in rows)] if rows else []
    out = {k: np.array([r[k] for r in rows], float) for k in keys}
    for s in names:
        out[setting_var(s)] = np.array(
            [float(transform(space.param(s), np.array(float(p.params[s])))) for p in pts], float
        )
    return out


def _size_measure(cost_fn: Callable[[dict[str, Any]], float] | None,
                  size_fn: Callable[[dict[str, Any]], float] | None,
                  tok_key: str | None) -> Callable[[dict[str, Any]], float] | None:  # fmt: skip
    """The size of a config: `size_fn`, else FLOPs per token / 6 from the cost function."""
    if size_fn is not None:
        return size_fn
    if cost_fn is None or tok_key is None:
        return None
    return flops_size_fn(cost_fn, tok_key)


def _cov_at(resp: ResponseFit, n_pick: float, cfg: dict[str, Any], tok_key: str, target: float,
            z: dict[str, float]) -> dict[str, float]:  # fmt: skip
    """The large run's scale variables and settings' z."""
    out = scale_vars(n_pick, float(cfg[tok_key]), target, cfg)
    out.update({setting_var(k): v for k, v in z.items()})
    return out
