"""Cost bands: make some suggestions land at a chosen cost, so the frontier spans decades.

Why: CARBS' EI against a clamped Pareto value pushes a search to higher cost only as fast as
the loss model sees compute paying off. On noisy small trainings that signal is weaker than
the noise, and a sweep stays near the cost it started at; the scaling laws downstream then
have nothing to extrapolate from. A share of suggestions is therefore asked to land in a cost
band (half of them up to a few times past the costliest run, half over the frontier's span and
just below it) and takes the best acquisition value among candidates predicted to cost that.
"""

from __future__ import annotations

import math

import numpy as np

from carbs.bayes.encoding import SpaceEncoder

BAND_HALF_WIDTH = math.log(1.5)  # a candidate is "in the band" within 1.5x of its target cost
BAND_LOW_FACTOR = 0.5  # bands reach down to half the cheapest frontier member's cost
BAND_PRIOR_WIDENING = 2.0  # band picks may stray this many radii further from the frontier


def band_target(
    lo_cost: float,
    hi_cost: float,
    rng: np.random.Generator,
    fraction: float,
    growth: float,
    cost_cap: float | None,
) -> float | None:
    """A target cost for this suggestion, or None when it is an ordinary (unbanded) one.

    Half the bands extend the search upward (log-uniform from `hi_cost`, the costliest run, to
    `growth` times that, capped), half cover the span and just below (from half `lo_cost`);
    ordinary picks already refine the interior, so the bands lean outward.
    """
    if fraction <= 0 or rng.random() >= fraction:
        return None
    top = hi_cost * growth
    if cost_cap is not None:
        top = min(top, cost_cap)
    bottom = lo_cost * BAND_LOW_FACTOR
    if not (top > bottom > 0):
        return None
    upward = rng.random() < 0.5 and top > hi_cost
    lo, hi = (hi_cost, top) if upward else (bottom, min(hi_cost, top))
    return float(math.exp(rng.uniform(math.log(lo), math.log(max(hi, lo)))))


def frontier_origin_costs(costs: np.ndarray, frontier: list[list[int]]) -> np.ndarray:
    """(k,) mean cost of each frontier group, in the order of the optimizer's origins."""
    return np.array([float(np.mean(costs[g])) for g in frontier])


def cost_directed_samples(
    encoder: SpaceEncoder,
    origins: np.ndarray,
    origin_costs: np.ndarray,
    target: float,
    n: int,
    rng: np.random.Generator,
    scales: tuple[float, ...],
) -> np.ndarray:
    """(n, dim) candidates aimed at cost `target`: local steps around the frontier member
    nearest that cost, plus a shift of every cost-scaling coordinate sized to close the gap.

    The shift, ln(target / origin cost) split evenly over the cost-scaling parameters and
    scaled by a random factor in [0.5, 1.5] (a parameter's cost elasticity is unknown here:
    width enters squared, depth and tokens linearly), brackets the target; the caller keeps
    the candidates whose predicted cost lands in the band.
    """
    i = int(np.argmin(np.abs(np.log(origin_costs) - math.log(target))))
    z = encoder.sample(origins[i : i + 1], n, rng, scales)
    cols = [
        sl.start
        for p, sl in zip(encoder.space.params, encoder.columns, strict=True)
        if p.scales_cost and p.kind != "categorical"
    ]
    if not cols or n == 0:
        return z
    gap = math.log(target / float(origin_costs[i]))
    shift = gap * rng.uniform(0.5, 1.5, size=n) / len(cols)
    for j in cols:
        z[:, j] = np.clip(z[:, j] + shift, encoder.lower[j], encoder.upper[j])
    return z


def in_band(predicted_cost: np.ndarray, target: float) -> np.ndarray:
    """(n,) True where a candidate's predicted cost is within the band around `target`."""
    return np.abs(np.log(np.maximum(predicted_cost, 1e-300)) - math.log(target)) <= BAND_HALF_WIDTH
