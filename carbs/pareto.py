"""Pareto sets over (cost, loss): the frontier both the optimizer and the scaling fits use."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pareto_mask(costs: Sequence[float], losses: Sequence[float]) -> np.ndarray:
    """Boolean mask of points not dominated in (lower cost, lower loss).

    A point is on the frontier when no other point is at most as costly and strictly better, or
    strictly cheaper and at most as lossy. Ties in both keep the first. O(n log n).

    >>> pareto_mask([1, 2, 3], [3, 1, 2]).tolist()
    [True, True, False]
    """
    c = np.asarray(costs, dtype=float)
    y = np.asarray(losses, dtype=float)
    mask = np.zeros(len(c), dtype=bool)
    best = np.inf
    for i in np.lexsort((y, c)):  # by cost, then loss
        if y[i] < best:
            mask[i] = True
            best = y[i]
    return mask
