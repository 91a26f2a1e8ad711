"""Pareto sets over (cost, loss): the frontier both the optimizer and the scaling fits use."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

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


def group_by_key(keys: Sequence[Hashable]) -> list[list[int]]:
    """Indices of observations grouped by identical configuration, in first-seen order.

    Why: CARBS resamples Pareto points to average out noise; repeated runs of one configuration
    count as one point whose loss and cost are the group means.
    """
    groups: dict[Hashable, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    return list(groups.values())


def pareto_groups(
    groups: Sequence[Sequence[int]],
    costs: Sequence[float],
    losses: Sequence[float],
    min_cost_fraction: float = 0.2,
    conservative: bool = True,
) -> list[list[int]]:
    """The Pareto frontier over observation groups (lower cost, lower mean loss), cheapest first.

    As in CARBS: the first member is the best group among those at or below the
    `min_cost_fraction` quantile of all costs (so a handful of very cheap, useless runs do not
    anchor the frontier); each later group must beat the running best mean loss. `conservative`
    (CARBS' default) makes a single-sample group beat the *best single sample* of the previous
    member, not just its mean, which damps thrash in noisy regions; resampled groups are
    preferred for the first member.
    """
    if not groups:
        return []
    c = np.asarray(costs, dtype=float)
    y = np.asarray(losses, dtype=float)
    gcost = [float(c[list(g)].mean()) for g in groups]
    gloss = [float(y[list(g)].mean()) for g in groups]
    gmin = [float(y[list(g)].min()) for g in groups]
    threshold = float(np.quantile(c, min_cost_fraction))
    cheap = [i for i in range(len(groups)) if gcost[i] <= threshold]
    if conservative and any(len(groups[i]) > 1 for i in cheap):
        cheap = [i for i in cheap if len(groups[i]) > 1]
    first = min(cheap, key=lambda i: (gloss[i], gcost[i]))
    frontier = [first]
    best, best_single = gloss[first], gmin[first]
    rest = sorted((i for i in range(len(groups)) if gcost[i] > threshold), key=lambda i: gcost[i])
    for i in rest:
        bar = best_single if (conservative and len(groups[i]) == 1) else best
        if gloss[i] < bar:
            frontier.append(i)
            best, best_single = gloss[i], gmin[i]
    return [list(groups[i]) for i in frontier]
