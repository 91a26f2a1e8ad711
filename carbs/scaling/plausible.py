"""A last check on the predicted loss: a run with more compute than every trial should not be
predicted to end worse than the best of them.

Why: a sweep whose trials span a narrow range of cost, with seed noise larger than what that
range of compute buys, leaves the laws undetermined; the fits then sit on their bounds (seen on
a 14-trial demo: Chinchilla alpha 3, E ~ 0, frontier alpha 14) and the joint model predicted a
loss of 37.6 at the target, five times the worst trial; refitted, the same collapsed law
(E ~ 0, A ~ 0) predicted a plausible-looking 3.0, right only by luck. Such a prediction, or one
from a law `laws.chinchilla_implausible` calls degenerate, is replaced by the best trial's loss
scaled by a generic compute exponent, with an interval from that exponent's plausible range,
and a warning that says why.
"""

from __future__ import annotations

import math

import numpy as np

GENERIC_EXP = 0.05  # loss vs compute, Kaplan et al. (2020): L(C_min) ~ C^-0.050
GENERIC_EXP_HI = 0.1  # a steep small-model regime; the interval's optimistic end


def plausible_loss(
    point: float,
    lo: float,
    hi: float,
    costs: np.ndarray,
    loss: np.ndarray,
    target: float,
    warnings: list[str],
    degenerate: str | None = None,
) -> tuple[float, float, float, str | None]:
    """(point, lo, hi, new source or None): unchanged when the point beats no trial it should
    and the law behind it is not `degenerate` (why it is, when it is)."""
    i = int(np.argmin(loss))
    best, c_best = float(loss[i]), float(costs[i])
    if math.isfinite(point) and 0.0 < point <= best and degenerate is None:
        return point, lo, hi, None
    ratio = max(target / c_best, 1.0)
    new_point = best * ratio**-GENERIC_EXP
    new_lo = best * ratio**-GENERIC_EXP_HI
    span = float(np.max(costs) / np.min(costs))
    why = (
        f"the fitted laws predict a loss of {point:.4g} at the target, no better than the best "
        f"trial ({best:.4g})"
        if degenerate is None
        else f"the fitted loss law is degenerate ({degenerate})"
    )
    warnings.append(
        f"{why}: the trials (spanning {span:.1f}x in cost) do not determine how loss "
        f"scales. The prediction falls back to the best trial's loss scaled by compute^-"
        f"{GENERIC_EXP} (Kaplan et al.), interval exponents 0..{GENERIC_EXP_HI}; sweep a wider "
        "range of cost (more trials, or a cheaper search centre) before trusting the pick"
    )
    source = (
        f"fallback: best trial's loss x (target / its cost)^-{GENERIC_EXP}; the fitted laws "
        f"predicted {point:.4g}"
    )
    return new_point, new_lo, best, source
