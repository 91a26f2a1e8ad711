"""Combine the two loss predictors at the pick: the joint model and Chinchilla on the Pareto set.

Why two: they fail differently (the joint model through its setting penalties and sparsity
terms, the Pareto fit through having few runs), so their log-average, weighted by each one's
held-out error on the costlier runs, beats either alone. A held-out third of the runs is only
~0.5x away in compute, though, and cannot see a fit at the end of the (E, exponent) ridge,
which predicts a run 100x away 5-19 % off: such a fit gives way to the other.
"""

from __future__ import annotations

import numpy as np

BT_SHRINK = 4.0  # held-out frontier runs worth as much as the even-split prior
BT_FLOOR = 0.005


def combine_predictions(
    joint: np.ndarray,
    pareto: np.ndarray,
    backtest: dict[str, float] | None,
    degenerate: dict[str, str | None],
) -> tuple[np.ndarray, float, str]:
    """Rows of the combined prediction, the joint model's share, and why that share.

    `backtest` holds each predictor's held-out RMS log error and `n_scored`; `degenerate`
    maps "joint" / "pareto_chinchilla" to the reason a fit is implausible, or None."""
    m = min(len(joint), len(pareto))
    wj = wc = 1.0
    if backtest is not None:
        wj = 1.0 / max(backtest["joint"], BT_FLOOR) ** 2
        wc = 1.0 / max(backtest["pareto_chinchilla"], BT_FLOOR) ** 2
    k = backtest["n_scored"] if backtest is not None else 0.0
    # few held-out frontier runs make the errors noisy: shrink toward an even split
    share = 0.5 + (wj / (wj + wc) - 0.5) * k / (k + BT_SHRINK)
    why = "weighted by backtest error"
    bad_joint, bad_pareto = degenerate.get("joint"), degenerate.get("pareto_chinchilla")
    if bool(bad_joint) != bool(bad_pareto):
        share = 0.0 if bad_joint else 1.0
        why = f"the other fit is degenerate: {bad_joint or bad_pareto}"
    combined = np.exp(share * np.log(joint[:m]) + (1 - share) * np.log(pareto[:m]))
    return combined, share, why
