"""Which Pareto member, if any, is worth running again.

Why: CARBS re-runs the least-sampled Pareto member every `resample_frequency` successes, fixed.
On a deterministic workload every such repeat is wasted (19 % of trials measured); on a noisy
one the repeats belong where noise could have put a config on the frontier by luck. So the
noise is estimated from the data (spread of repeated configs, else a GP's noise on log loss), and a
member is re-run only where its lead over every cheaper config is within two noise standard
errors; `resample_frequency` stays the upper limit on how often.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z_UNCERTAIN = 2.0  # a lead under this many standard errors leaves a member's place in doubt
DETERMINISTIC_REL_SD = 1e-9  # repeats this close are the same number: no noise to average
GP_NOISE_FLOOR_RATIO = 10.0  # GP noise within this factor of the likelihood's floor: "no noise"
NOISE_FIT_POINTS_PER_DIM = 4  # successes per (search dimension + 1) before a GP's noise counts


def repeat_noise(groups: Sequence[Sequence[int]], log_losses: np.ndarray) -> tuple[float, int]:
    """Pooled standard deviation of log loss within repeated configs, and its degrees of
    freedom (0 when nothing was repeated)."""
    ss, dof = 0.0, 0
    for g in groups:
        if len(g) > 1:
            v = log_losses[list(g)]
            ss += float(((v - v.mean()) ** 2).sum())
            dof += len(g) - 1
    return (math.sqrt(ss / dof) if dof else 0.0), dof


def noise_sd(
    groups: Sequence[Sequence[int]], log_losses: np.ndarray, gp_rel_sd: float | None
) -> float:
    """The relative (log-loss) noise of one trial: repeats where there are any (identical
    repeats mean a deterministic workload: 0), else the loss GP's noise (None: negligible)."""
    rep, dof = repeat_noise(groups, log_losses)
    if dof and rep <= DETERMINISTIC_REL_SD:
        return 0.0
    if gp_rel_sd is None:
        return rep
    if not dof:
        return gp_rel_sd
    prior_dof = 2  # the GP's estimate counts as two repeats' worth of evidence
    return math.sqrt((dof * rep**2 + prior_dof * gp_rel_sd**2) / (dof + prior_dof))


def uncertain_member(
    groups: Sequence[Sequence[int]],
    frontier: Sequence[Sequence[int]],
    costs: np.ndarray,
    log_losses: np.ndarray,
    sd: float,
    pending_counts: dict[int, int],
) -> int | None:
    """Index (into the successes) of the frontier member whose lead is least certain, or None
    when every member's lead over the configs no costlier than it exceeds `Z_UNCERTAIN` standard
    errors. pending_counts: in-flight repeats per frontier member (by its first index)."""
    if sd <= 0 or not frontier:
        return None
    stats = [
        (float(costs[list(g)].mean()), float(log_losses[list(g)].mean()), len(g)) for g in groups
    ]
    best_i, best_z = None, Z_UNCERTAIN
    for member in frontier:
        gi = next(i for i, g in enumerate(groups) if g[0] == member[0])
        cost, mean, n = stats[gi]
        n += pending_counts.get(member[0], 0)
        rivals = [(m, k) for j, (c, m, k) in enumerate(stats) if j != gi and c <= cost]
        if not rivals:
            continue
        rival_mean, rival_n = min(rivals)
        z = (rival_mean - mean) / (sd * math.sqrt(1.0 / n + 1.0 / rival_n))
        if z < best_z:
            best_i, best_z = member[0], z
    return best_i
