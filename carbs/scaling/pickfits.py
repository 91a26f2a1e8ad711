"""Pieces of the large-run pick that only gather data: curves, Chinchilla fits, the fits report.

Split from `pick.py` to keep that module to the pipeline itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from carbs.scaling import huber as hb
from carbs.scaling import laws
from carbs.scaling.backtest import widen_past_data
from carbs.scaling.hplaws import inverse as hplaws_inverse
from carbs.scaling.result import band
from carbs.scaling.types import TrialPoint


def fits_dict(fb, fb_all, fc, fl, x0, hp, ok, costs, loss, counts, W, toks, failed, target,
               max_cost, n, tau, bt, sizes=None) -> dict[str, Any]:  # noqa: ANN001  # fmt: skip
    """Everything fitted, for reports and plots."""
    fits: dict[str, Any] = {
        "target_flops": target,
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
            ).to_dict(),  # fmt: skip
            "readable": laws.frontier_readable(fb.theta[0], x0),
            "log_C0": x0,
        },
        "frontier_all": {
            **laws.FitResult(
                "frontier", ("a", "e", "alpha"), fb_all.theta[0], 0.0, len(fc), fb_all.theta[1:]
            ).to_dict(),  # fmt: skip
            "readable": laws.frontier_readable(fb_all.theta[0], x0),
            "log_C0": x0,
        },
        "frontier_points": {
            "cost": fc.tolist(),
            "loss": fl.tolist(),
            "pareto": fb.masks[0].tolist(),
        },  # fmt: skip
        "nearness_tau": tau,
        "laws": {k: v.summary(target) for k, v in hp.items()},
        "backtest": bt,
    }
    grid = np.exp(np.linspace(math.log(costs.min()), math.log(max(target, max_cost)), 40))
    fb_pred = fb.predict(grid)
    fr_band = band(grid, fb_pred[0], fb_pred[1:])
    lo, hi = widen_past_data(grid, fb_pred[0], np.array(fr_band["lo"]), np.array(fr_band["hi"]),
                             float(costs.max()), bt)  # fmt: skip
    fr_band.update(lo=lo.tolist(), hi=hi.tolist())
    fits["frontier_pareto"]["band"] = fr_band
    t = np.array([v if v is not None else np.nan for v in toks], float)
    for k, law in hp.items():
        z = law.coef[:, :1] + law.coef[:, 1:2] * (np.log(grid)[None, :] - law.x0)
        v = hplaws_inverse(law.param, z)
        fits["laws"][k]["band"] = band(grid, v[0], v[1:])
        if k == "n_params" and k not in ok[0].params:
            obs = sizes.tolist() if sizes is not None else (costs / (6.0 * t)).tolist()
        elif k == "tokens_per_param":
            obs = (t / sizes).tolist() if sizes is not None else (t**2 * 6.0 / costs).tolist()
        else:
            obs = [float(p.params[k]) if k in p.params else None for p in ok]
        fits["laws"][k]["observed"] = obs
    fits["points"] = {
        "cost": costs.tolist(),
        "loss": loss.tolist(),
        "near_weight": (W[0] / counts[0]).tolist(),
        "failed_cost": [p.cost for p in failed],
    }
    return fits


def pareto_rows(costs: np.ndarray, loss: np.ndarray) -> np.ndarray:
    from carbs.pareto import pareto_mask

    return pareto_mask(costs, loss)


def with_curves(
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


def chinchilla_fits(costs, loss, toks, counts, masks, target, n_eff):  # noqa: ANN001
    """Approach 3 on the Pareto set and on all runs, at each run's size N (n_eff).

    `target` is in 6 N D units (the large run's FLOPs over its overhead ratio)."""
    out: dict[str, Any] = {"size_measure": "N as the pick measures it (fits.size.measure)"}
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
