"""Choose every setting of a large run from small ones, and predict its loss with intervals.

Pipeline (each step bootstrapped as one resample of the trials, rows of weights refitted at
once): frontier L(C) on the Pareto set -> nearness of each run to the frontier -> a law per
scaled parameter fitted on near-frontier runs (not only Pareto points) -> a consistent config
at the target (the size law fixes N, shape laws are matched on the legal grid, tokens are
solved from the budget) -> a conservative learning rate below the fitted divergence cliff.
Loss intervals come from the bootstrap, widened by the backtest error when that is larger.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carbs.scaling import huber as hb
from carbs.scaling import laws
from carbs.scaling.backtest import backtest
from carbs.scaling.consistency import consistent_shape, solve_tokens
from carbs.scaling.frontier import fit_frontier_boot
from carbs.scaling.hplaws import HPLaw, fit_failure, fit_hp_law, nearness_weights
from carbs.scaling.hplaws import inverse as hplaws_inverse
from carbs.scaling.types import TrialPoint
from carbs.space import SearchSpace

LR_NAMES = ("learning_rate", "lr")
TOKEN_NAMES = ("tokens", "train_tokens")
SHAPE_NAMES = ("d_model", "n_layers", "n_heads", "n_kv_heads", "n_experts", "top_k",
               "expert_hidden", "head_dim")  # fmt: skip
MIN_POINTS = 3
FEW_POINTS = 8
LR_CONSERVATISM = 0.5  # pick this many bootstrap sds below the lr law's point estimate


@dataclass
class LargeRunPick:
    """The large run: full config, predicted loss with a 90 % interval, every fit, warnings."""

    params: dict[str, Any]
    predicted_loss: float
    predicted_loss_ci: tuple[float, float]
    target_flops: float
    fits: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": _jsonable(self.params),
            "predicted_loss": float(self.predicted_loss),
            "predicted_loss_ci": [float(v) for v in self.predicted_loss_ci],
            "target_flops": float(self.target_flops),
            "fits": _jsonable(self.fits),
            "warnings": list(self.warnings),
        }


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


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
    seed: int = 0,
    n_bootstrap: int = 200,
    use_curves: bool = False,
) -> LargeRunPick:
    """Pick the config for a run of `target_flops` FLOPs and predict its loss.

    `cost_fn` prices a full config (e.g. models.accounting.training_flops_for_params); with it
    the shape is solved for consistency and tokens from the budget; without it each parameter
    follows its own law vs compute (warned). Needs >= 3 successful trials; < 8 is warned.
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

    # 3. laws per scaled parameter (+ size and tokens per parameter)
    tok_key = next((k for k in TOKEN_NAMES if k in ok[0].params), None)
    hp: dict[str, HPLaw] = {}
    for prm in space.params:
        if prm.kind == "categorical":
            continue
        vals = np.array([float(p.params[prm.name]) for p in ok])
        if np.any(vals <= 0) and prm.kind != "logit":
            continue
        hp[prm.name] = fit_hp_law(prm.name, prm, costs, vals, W, x0)
    toks = [_tokens_of(p, tok_key) for p in ok]
    have_tokens = all(t is not None and t > 0 for t in toks)
    if have_tokens:
        tarr = np.array(toks, float)
        n_eff = costs / (6.0 * tarr)
        hp["n_params"] = fit_hp_law("n_params", None, costs, n_eff, W, x0)
        hp["tokens_per_param"] = fit_hp_law("tokens_per_param", None, costs, tarr / n_eff, W, x0)

    # 4. failure model on the learning-rate offset from its law
    lr_key = next((k for k in LR_NAMES if k in hp), None)
    failure = None
    if lr_key is not None:
        law = hp[lr_key]
        z_ok = np.array([math.log(float(p.params[lr_key])) - law.z_at(p.cost)[0] for p in ok])
        z_f = np.array([math.log(float(p.params[lr_key])) - law.z_at(p.cost)[0]
                        for p in failed if lr_key in p.params])  # fmt: skip
        failure = fit_failure(z_ok, z_f)
        if not failure.observed:
            warnings.append(
                "no run diverged, so the divergence cliff is unobserved: the pick "
                "keeps its learning rate no further above the law than any survivor"
            )
    elif failed:
        warnings.append("runs failed but no learning-rate parameter was found to model it")

    # 5. Chinchilla L(N, D) on the Pareto set: its N_opt sets the size (far steadier than a
    # line through noisy sizes), and it predicts the loss of the picked (N, D)
    chin = None
    if have_tokens and n >= 5:
        chin = _chinchilla_fits(costs, loss, np.array(toks, float), counts, fb.masks, target_flops)
    n_target = None
    if chin and "pareto" in chin:
        n_target = chin["pareto"]["n_opt_at_target"]
        lo_n, hi_n = chin["pareto"]["n_opt_at_target_ci90"]
        if not (math.isfinite(n_target) and hi_n / max(lo_n, 1e-300) < 1e3):
            n_target = None
            warnings.append("Chinchilla fit too uncertain for the size; used the size law")

    # 6. the config
    params, lr_info = _assemble(
        ok, space, target_flops, hp, failure, lr_key, tok_key, cost_fn, warnings, n_target
    )

    # 6. predicted loss with bootstrap interval, widened by the backtest
    pred = fb.predict(np.array([target_flops]))[:, 0]
    pred_source = "frontier L(C)"
    if chin and "pareto" in chin and tok_key in params and cost_fn is not None:
        n_pick = target_flops / (6.0 * float(params[tok_key]))
        pred = laws.chinchilla_predict(
            chin["_boot_pareto"], np.array([n_pick]), np.array([float(params[tok_key])])
        )[:, 0]
        pred_source = "Chinchilla L(N, D) at the picked N and tokens"
    point = float(pred[0])
    lo, hi = (
        (float(v) for v in np.quantile(pred[1:], [0.05, 0.95])) if n_bootstrap else (point, point)
    )
    bt = backtest(fc, fl)
    if bt.get("loss_rel_err_mean") is not None:
        e = float(bt["loss_rel_err_max"])
        ext = math.log(target_flops / max_cost) / max(bt["log_extrapolation"], 1e-9)
        widen = e * max(1.0, ext)  # backtest error grows with how far we extrapolate
        lo, hi = min(lo, point * (1 - widen)), max(hi, point * (1 + widen))
    else:
        warnings.append("too few frontier points for a backtest; interval is bootstrap-only")

    fits: dict[str, Any] = {
        "target_flops": target_flops,
        "n_points": n,
        "n_failed": len(failed),
        "frontier_pareto": {
            **laws.FitResult(
                "frontier",
                ("a", "e", "alpha"),
                fb.theta[0],
                0.0,
                int(fb.masks[0].sum()),
                fb.theta[1:],
            ).to_dict(),
            "readable": laws.frontier_readable(fb.theta[0], x0),
            "log_C0": x0,
        },
        "frontier_all": {
            **laws.FitResult(
                "frontier", ("a", "e", "alpha"), fb_all.theta[0], 0.0, len(fc), fb_all.theta[1:]
            ).to_dict(),
            "readable": laws.frontier_readable(fb_all.theta[0], x0),
            "log_C0": x0,
        },
        "frontier_points": {
            "cost": fc.tolist(),
            "loss": fl.tolist(),
            "pareto": fb.masks[0].tolist(),
        },
        "predicted_loss_bootstrap_ci90": [float(v) for v in np.quantile(pred[1:], [0.05, 0.95])]
        if n_bootstrap
        else None,
        "nearness_tau": tau,
        "laws": {k: v.summary(target_flops) for k, v in hp.items()},
        "learning_rate": lr_info,
        "failure": failure.to_dict() if failure else None,
        "backtest": bt,
    }
    grid = np.exp(np.linspace(math.log(costs.min()), math.log(max(target_flops, max_cost)), 40))
    fb_pred = fb.predict(grid)
    fits["frontier_pareto"]["band"] = _band(grid, fb_pred[0], fb_pred[1:])
    for k, law in hp.items():
        z = law.coef[:, :1] + law.coef[:, 1:2] * (np.log(grid)[None, :] - law.x0)
        v = hplaws_inverse(law.param, z)
        fits["laws"][k]["band"] = _band(grid, v[0], v[1:])
        fits["laws"][k]["observed"] = (
            [float(p.params[k]) if k in p.params else None for p in ok]
            if k not in ("n_params", "tokens_per_param")
            else (
                costs / (6.0 * np.array(toks, float))
                if k == "n_params"
                else np.array(toks, float) ** 2 * 6.0 / costs
            ).tolist()
        )
    fits["points"] = {
        "cost": costs.tolist(),
        "loss": loss.tolist(),
        "near_weight": (W[0] / counts[0]).tolist(),
        "failed_cost": [p.cost for p in failed],
    }
    fits["predicted_loss_source"] = pred_source
    if chin:
        chin.pop("_boot_pareto", None)
        chin.pop("_boot_all", None)
        fits["chinchilla"] = chin
    return LargeRunPick(params, point, (lo, hi), target_flops, fits, warnings)


def _band(grid: np.ndarray, mid: np.ndarray, boot: np.ndarray) -> dict[str, list[float]]:
    if len(boot) >= 2:
        lo, hi = np.nanquantile(boot, [0.05, 0.95], axis=0)
    else:
        lo = hi = mid
    return {"cost": grid.tolist(), "mid": mid.tolist(), "lo": lo.tolist(), "hi": hi.tolist()}


def _pareto_rows(costs: np.ndarray, loss: np.ndarray) -> np.ndarray:
    from carbs.pareto import pareto_mask

    return pareto_mask(costs, loss)


def _with_curves(
    ok: Sequence[TrialPoint], costs: np.ndarray, loss: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Append each run's learning-curve points (flops, val or train loss) to the frontier data."""
    c, y, parent = list(costs), list(loss), list(range(len(ok)))
    for i, p in enumerate(ok):
        for pt in p.curve or []:
            v = pt.get("val_loss", pt.get("train_loss"))
            f = pt.get("flops")
            if v is not None and f and f > 0 and math.isfinite(v) and v > 0 and f < p.cost:
                c.append(float(f))
                y.append(float(v))
                parent.append(i)
    return np.array(c), np.array(y), counts[:, parent]


def _assemble(ok, space, target, hp, failure, lr_key, tok_key, cost_fn, warnings, n_target=None):  # noqa: ANN001
    """Build the full config from the laws at the target (see module docstring)."""
    cfg: dict[str, Any] = dict(space.fixed)
    # categorical params (and anything unlawed): copy from the costliest near-frontier run
    ref = max(ok, key=lambda p: (p.cost, -float(p.loss)))
    best_near = sorted(ok, key=lambda p: p.loss)[0] if ok else ref
    for prm in space.params:
        if prm.name not in hp:
            cfg[prm.name] = ref.params.get(prm.name, best_near.params.get(prm.name))
    for k, v in ref.params.items():
        cfg.setdefault(k, v)
    for prm in space.params:
        if prm.name in hp and prm.name != lr_key:
            cfg[prm.name] = prm.clamp(float(hp[prm.name].value_at(target)[0]))

    lr_info: dict[str, Any] = {}
    if lr_key is not None:
        law = hp[lr_key]
        z = law.z_at(target)
        zsd = float(np.std(z[1:])) if len(z) > 2 else 0.5
        z_pick = float(z[0]) - LR_CONSERVATISM * zsd
        reasons = [f"law minus {LR_CONSERVATISM} bootstrap sd ({zsd:.3f} in log)"]
        if failure is not None:
            cap_off = failure.safe_offset(0.05) if failure.observed else failure.max_ok_offset
            if z_pick > float(z[0]) + cap_off:
                z_pick = float(z[0]) + cap_off
                reasons.append("capped below the divergence cliff")
            lr_info["p_fail_at_pick"] = failure.p_fail(z_pick - float(z[0]))
        if zsd > math.log(2.0) / 1.645:
            warnings.append(
                "learning-rate law is uncertain at the target (90 % interval wider "
                "than 2x either way); picked the conservative side"
            )
        cfg[lr_key] = space.param(lr_key).clamp(math.exp(z_pick))
        lr_info.update(
            {
                "law_value": float(math.exp(z[0])),
                "picked": cfg[lr_key],
                "sd_log": zsd,
                "reason": "; ".join(reasons),
            }
        )

    shape = [p.name for p in space.params if p.name in hp and p.name != tok_key
             and (p.scales_cost or p.name in SHAPE_NAMES)]  # fmt: skip
    if cost_fn is not None and tok_key is not None and "n_params" in hp:
        t_ref = 1e9

        def size_fn(c: dict[str, Any]) -> float:
            return cost_fn({**c, tok_key: t_ref}) / (6.0 * t_ref)

        targets = {}
        for s in shape:
            law = hp[s]
            sd = max(
                law.resid_sd, float(np.std(law.z_at(target)[1:])) if len(law.coef) > 2 else 0.3, 0.1
            )
            targets[s] = (float(law.value_at(target)[0]), sd)
        if n_target is None:
            n_target = float(hp["n_params"].value_at(target)[0])
        cfg, _ = consistent_shape(space, cfg, targets, n_target, 0.03, size_fn)
        _fix_heads(cfg, ok)  # before pricing tokens: heads change the attention FLOPs
        p_tok = space.param(tok_key) if tok_key in space.names else None
        cfg[tok_key] = solve_tokens(cfg, cost_fn, target, p_tok, tok_key)
        if p_tok is not None and not (p_tok.min or 0) <= cfg[tok_key] <= (p_tok.max or math.inf):
            warnings.append(
                f"{tok_key}={cfg[tok_key]:.3g} from the budget lies outside the "
                f"search range [{p_tok.min}, {p_tok.max}] (kept: the budget rules)"
            )
        spent = cost_fn(cfg)
        if abs(spent / target - 1) > 0.02:
            warnings.append(
                f"the picked config costs {spent:.3g} FLOPs, not the target "
                f"{target:.3g}: the space's bounds limit the size"
            )
    else:
        if cost_fn is None:
            warnings.append(
                "no cost_fn: each parameter follows its own law vs compute and the "
                "budget is not enforced by a consistency solve"
            )
    _fix_heads(cfg, ok)
    searched = {k: cfg[k] for k in space.names if k in cfg}
    if not space.is_feasible(searched):
        warnings.append("the picked config violates a space constraint; check the laws")
    return cfg, lr_info


def _fix_heads(cfg: dict[str, Any], ok: Sequence[TrialPoint]) -> None:
    """Keep the trials' head size when n_heads is not searched, and heads dividing d_model."""
    if "d_model" not in cfg or "n_heads" not in cfg:
        return
    d = int(cfg["d_model"])
    if cfg.get("head_dim"):
        return
    hd = [int(p.params["d_model"]) // int(p.params["n_heads"]) for p in ok
          if p.params.get("n_heads")]  # fmt: skip
    head = int(np.median(hd)) if hd else 64
    want = max(1, round(d / head))
    kv = int(cfg.get("n_kv_heads") or 1)
    cands = [h for h in range(1, d + 1) if d % h == 0 and (d // h) % 2 == 0 and h % kv == 0]
    if not cands:
        cands = [h for h in range(1, d + 1) if d % h == 0]
    cfg["n_heads"] = min(cands, key=lambda h: (abs(math.log(h / want)), h))


def _chinchilla_fits(costs, loss, toks, counts, masks, target):  # noqa: ANN001
    """Approach 3 on the Pareto set and on all runs, N = FLOPs / (6 tokens)."""
    n_eff = costs / (6.0 * toks)
    out: dict[str, Any] = {"size_measure": "N = cost / (6 tokens)"}
    for name, w in (("pareto", counts * masks[:, : len(costs)]), ("all", counts)):
        idx = np.flatnonzero(w[0] > 0)
        if len(idx) < 5:
            continue
        fit = laws.fit_chinchilla(n_eff[idx], toks[idx], loss[idx], counts=None, n_starts=16)
        resid = laws.chinchilla_resid(np.log(n_eff), np.log(toks), np.log(loss))
        starts = np.repeat(fit.theta[None], len(w), 0)
        boot, _ = hb.batched_fit(resid, starts, w, 1e-3, laws.CH_LO, laws.CH_HI, iters=100)
        boot[0] = fit.theta
        fit.boot = boot[1:]
        nopt = laws.chinchilla_n_opt(boot, np.array([target]))[:, 0]
        d = fit.to_dict()
        d["readable"] = laws.chinchilla_readable(fit.theta)
        d["n_opt_at_target"] = float(nopt[0])
        d["n_opt_at_target_ci90"] = [float(v) for v in np.quantile(nopt[1:], [0.05, 0.95])]
        out[name] = d
        out[f"_boot_{name}"] = boot
    return out
