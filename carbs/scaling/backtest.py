"""Backtest: refit the frontier on the cheaper runs and score it on the costlier frontier.

Why: bootstrap intervals only cover noise under the assumed law; extrapolation error from a
wrong functional form shows up only when the law is asked about compute it has not seen.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from carbs.pareto import pareto_mask
from carbs.scaling import laws


def backtest(costs: np.ndarray, loss: np.ndarray, train_frac: float = 0.6) -> dict[str, Any]:
    """Fit on runs below a cost split (holding ~train_frac of the Pareto set), predict the rest.

    Returns errors of the predicted frontier at the held-out Pareto points (relative, signed
    and absolute), or a dict with `loss_rel_err_mean` None when there are too few points.
    """
    mask = pareto_mask(costs, loss)
    pc = np.sort(costs[mask])
    out: dict[str, Any] = {"train_frac": train_frac, "loss_rel_err_mean": None}
    if len(pc) < 5:
        out["reason"] = f"{len(pc)} Pareto points; need >= 5"
        return out
    k = max(3, min(len(pc) - 1, int(round(train_frac * len(pc)))))
    split = 0.5 * (pc[k - 1] + pc[k])
    train = costs < split
    x0 = float(np.mean(np.log(costs[train])))
    tm = pareto_mask(costs[train], loss[train])
    fit = laws.fit_frontier(costs[train][tm], loss[train][tm], x0=x0)
    test = mask & (costs > split)
    pred = laws.frontier_predict(fit.theta, costs[test], x0)[0]
    rel = pred / loss[test] - 1.0
    out.update(
        {
            "split_cost": float(split),
            "n_train": int(train.sum()),
            "n_test_pareto": int(test.sum()),
            "log_extrapolation": float(math.log(costs[test].max() / costs[train].max())),
            "loss_rel_err_mean": float(np.mean(np.abs(rel))),
            "loss_rel_err_max": float(np.max(np.abs(rel))),
            "loss_rel_err_signed": rel.tolist(),
            "test_cost": costs[test].tolist(),
            "test_loss": loss[test].tolist(),
            "test_pred": pred.tolist(),
            "train_fit": laws.frontier_readable(fit.theta, x0),
        }
    )
    return out


def widen_past_data(
    costs: np.ndarray,
    mid: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    max_cost: float,
    bt: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    """Widen a bootstrap band beyond `max_cost` by the backtest's error, grown with distance.

    Why: a bootstrap band assumes the law's form is right; past the data it is not known to be.
    On a real CPU sweep the frontier L(C) fitted on the cheaper half missed runs 3-9x costlier by
    11-20 % while its bootstrap band claimed 5-10 %. At cost C the band is at least
    mid x (1 +- err x ln(C / max_cost) / ln(backtest extrapolation)), err the backtest's largest
    relative error (the same rule as the pick's interval).
    """
    if bt.get("loss_rel_err_mean") is None:
        return lo, hi
    err = float(bt["loss_rel_err_max"])
    span = max(float(bt["log_extrapolation"]), 1e-9)
    ext = np.maximum(np.log(np.asarray(costs, float) / max_cost), 0.0) / span
    return np.minimum(lo, mid * (1.0 - err * ext)), np.maximum(hi, mid * (1.0 + err * ext))
