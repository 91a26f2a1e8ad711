"""Which observations train the GPs once there are many.

Why: an exact GP costs O(n^3) to fit; at 2,000 observations that is seconds per likelihood
evaluation. Candidates are only ever drawn near Pareto members, so the model must be accurate
there: keep the Pareto set, the points nearest to it, and a stride sample over the whole history
for global trend (the linear kernel and the cost model need it). A pure function of the data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def training_subset(
    z: np.ndarray, anchors: Sequence[int], max_points: int, coverage_fraction: float = 0.25
) -> np.ndarray:
    """Sorted indices (m,) of at most `max_points` rows of `z` (n, d) to train on.

    anchors: row indices that must be kept (Pareto members), capped at half the budget.
    coverage_fraction: share of the budget given to an evenly strided sample of all rows.
    """
    n = len(z)
    if n <= max_points:
        return np.arange(n)
    chosen = np.zeros(n, dtype=bool)
    anchors = np.asarray(sorted(set(int(a) for a in anchors)), dtype=int)[: max_points // 2]
    chosen[anchors] = True
    n_cover = int(max_points * coverage_fraction)
    if n_cover > 0:
        chosen[np.linspace(0, n - 1, n_cover).round().astype(int)] = True
    remaining = max_points - int(chosen.sum())
    if remaining > 0 and len(anchors) > 0:
        d2 = ((z[:, None, :] - z[anchors][None, :, :]) ** 2).sum(-1).min(axis=1)
        d2[chosen] = np.inf
        order = np.argsort(d2, kind="stable")[:remaining]
        chosen[order] = True
    return np.flatnonzero(chosen)
