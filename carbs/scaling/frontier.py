"""Frontier fits with a bootstrap that resamples the whole pipeline (Pareto set included).

Why resample the Pareto set: which runs are on the frontier is itself noisy; refitting only
the chosen frontier points would understate the uncertainty of the extrapolation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carbs.pareto import pareto_mask
from carbs.scaling import huber as hb
from carbs.scaling import laws


@dataclass
class FrontierBoot:
    """Row 0 is the fit on the data as observed; rows 1.. are bootstrap replicates."""

    theta: np.ndarray  # [B+1, 3]
    masks: np.ndarray  # [B+1, n] Pareto membership per replicate
    counts: np.ndarray  # [B+1, n] multiplicities per replicate
    x0: float

    def predict(self, costs: np.ndarray) -> np.ndarray:
        """Losses [B+1, len(costs)]."""
        return laws.frontier_predict(self.theta, np.atleast_1d(costs), self.x0)


def pareto_masks(costs: np.ndarray, loss: np.ndarray, counts: np.ndarray) -> np.ndarray:
    masks = np.zeros(counts.shape, dtype=bool)
    for b in range(len(counts)):
        idx = np.flatnonzero(counts[b] > 0)
        m = pareto_mask(costs[idx], loss[idx])
        masks[b, idx[m]] = True
    return masks


def fit_frontier_boot(
    costs: np.ndarray,
    loss: np.ndarray,
    counts: np.ndarray,
    *,
    pareto: bool = True,
    delta: float = 1e-3,
) -> FrontierBoot:
    """Fit L(C) = E + A C^-alpha on each replicate's Pareto set (or all its points)."""
    x0 = float(np.mean(np.log(costs)))
    masks = pareto_masks(costs, loss, counts) if pareto else counts > 0
    w = counts * masks
    first = laws.fit_frontier(costs, loss, x0=x0, delta=delta, weights=w[0])
    resid = laws.frontier_resid(np.log(costs) - x0, np.log(loss))
    t0, _ = hb.polish(resid, first.theta, delta, weights=w[0])
    starts = np.repeat(t0[None, :], len(counts), axis=0)
    th, _ = hb.batched_fit(resid, starts, w, delta, (laws.FR_LO, laws.FR_HI), iters=150)
    th[0] = t0
    return FrontierBoot(th, masks, counts, x0)
