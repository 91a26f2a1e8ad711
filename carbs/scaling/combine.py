"""Combine the two loss predictors at the pick: the joint model and Chinchilla on the Pareto set.

Why two: they fail differently (the joint model through its setting penalties and sparsity
terms, the Pareto fit through having few runs), so their log-average beats either alone when
each is weighted by how wrong it may be at the pick. That is two things: its bootstrap spread
there (the extrapolation: a fit of five constants to the ten-odd Pareto runs can put a run 100x
away anywhere along its (E, exponent) ridge) and its held-out RMS error on the costlier runs
(misfit the bootstrap cannot see). Weighted by the held-out error alone, which is only ~0.5x
away in compute, the Pareto fit got half the say on CARBS' trials of the scaling world while
erring 8-26 % at the pick, and the combination (3.33 % mean error) did worse than the joint
model alone (2.18 %). A fit at the end of its ridge (`laws.chinchilla_implausible`) gives way to
the other.
"""

from __future__ import annotations

import numpy as np

BT_FLOOR = 0.005  # no predictor is trusted to better than 0.5 % held-out error


def predictor_variance(rows: np.ndarray, backtest_rms: float | None) -> float:
    """Squared error expected of one predictor at the pick, in log loss: the bootstrap variance
    of its prediction (rows 1.., row 0 being the fit itself) plus its held-out error squared."""
    logs = np.log(np.asarray(rows, float))
    spread = float(np.var(logs[1:])) if len(logs) > 2 else 0.0
    held_out = max(backtest_rms if backtest_rms is not None else 0.0, BT_FLOOR)
    return spread + held_out**2


def combine_predictions(
    joint: np.ndarray,
    pareto: np.ndarray,
    backtest: dict[str, float] | None,
    degenerate: dict[str, str | None],
) -> tuple[np.ndarray, float, str]:
    """Rows of the combined prediction, the joint model's share, and why that share.

    `joint` and `pareto` are rows of predicted loss (row 0 the fit, then bootstrap replicates);
    `backtest` holds each predictor's held-out RMS log error; `degenerate` maps "joint" /
    "pareto_chinchilla" to the reason a fit is implausible, or None."""
    m = min(len(joint), len(pareto))
    bt = backtest or {}
    vj = predictor_variance(joint[:m], bt.get("joint"))
    vp = predictor_variance(pareto[:m], bt.get("pareto_chinchilla"))
    share = vp / (vj + vp)  # inverse-variance weight of the joint model
    why = (f"weighted by expected error at the pick (bootstrap and held-out): "
           f"joint {np.sqrt(vj):.1%}, Pareto {np.sqrt(vp):.1%}")  # fmt: skip
    bad_joint, bad_pareto = degenerate.get("joint"), degenerate.get("pareto_chinchilla")
    if bool(bad_joint) != bool(bad_pareto):
        share = 0.0 if bad_joint else 1.0
        why = f"the other fit is degenerate: {bad_joint or bad_pareto}"
    combined = np.exp(share * np.log(joint[:m]) + (1 - share) * np.log(pareto[:m]))
    return combined, float(share), why
