"""Cost bands: make some suggestions land at a chosen cost, so the frontier spans decades.

Why: CARBS' EI against a clamped Pareto value pushes a search to higher cost only as fast as
the loss model sees compute paying off. On noisy small trainings that signal is weaker than
the noise, and a sweep stays near the cost it started at; the scaling laws downstream then
have nothing to extrapolate from. A share of suggestions is therefore asked to land in a cost
band (half of them up to a few times past the costliest run, half over the frontier's span and
just below it) and takes the best acquisition value among candidates predicted to cost that.

Filling (setting `cost_fill_share`, off by default): before any random band, a stratum of the
cost span holding fewer than a share of the fullest stratum's trials is filled first. Why: once
a sweep reaches its per-trial cap, EI keeps choosing trials there (the loss falls most per trial
at the top), and the cheap end of the frontier is left as the climb found it, mistuned by 5-20 %
(seen on the world family: 14 of 55 trials below a tenth of the cap). A scaling law read off
such a frontier is too steep; IsoFLOP designs spend alike at every budget, and cheap strata cost
little to fill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def fill_target(
    costs: np.ndarray, lo_cost: float, hi_cost: float, share: float, rng: np.random.Generator
) -> float | None:
    """The centre of the least-populated cost stratum over [lo_cost, hi_cost] when it holds
    fewer than `share` x the fullest one's count (None: every stratum is filled enough, or the
    span is under two strata). `costs`: the trials counted (successes and in-flight). Why the
    fullest: it is where EI gathers trials (the cap), and a stratum is tuned as well as it is
    sampled; a share of the average let a cap holding 36 of 65 trials leave the rest at 4-13.

    Strata are one band wide (2 x BAND_HALF_WIDTH in log cost); ties go to a random one."""
    if share <= 0 or not (hi_cost > lo_cost > 0):
        return None
    width = 2.0 * BAND_HALF_WIDTH
    n_strata = int(math.floor(math.log(hi_cost / lo_cost) / width))
    if n_strata < 2:
        return None
    edges = np.linspace(math.log(lo_cost), math.log(hi_cost), n_strata + 1)
    counts, _ = np.histogram(np.log(np.maximum(costs, 1e-300)), bins=edges)
    if counts.min() >= share * counts.max():
        return None
    emptiest = np.flatnonzero(counts == counts.min())
    k = int(rng.choice(emptiest))
    return float(math.exp(0.5 * (edges[k] + edges[k + 1])))


def frontier_origin_costs(costs: np.ndarray, frontier: list[list[int]]) -> np.ndarray:
    """(k,) mean cost of each frontier group, in the order of the optimizer's origins."""
    return np.array([float(np.mean(costs[g])) for g in frontier])


@dataclass(frozen=True)
class CostAim:
    """Where band candidates are aimed: the (k,) mean cost of each frontier origin (in the
    order of the optimizer's origins) and the cost they should land at."""

    origin_costs: np.ndarray
    target: float


def cost_directed_samples(
    encoder: SpaceEncoder,
    origins: np.ndarray,
    aim: CostAim,
    n: int,
    rng: np.random.Generator,
    scales: tuple[float, ...],
) -> np.ndarray:
    """(n, dim) candidates aimed at cost `aim.target`: local steps around the frontier member
    nearest that cost, plus a shift of every cost-scaling coordinate sized to close the gap.

    The shift, ln(target / origin cost) split evenly over the cost-scaling parameters and
    scaled by a random factor in [0.5, 1.5] (a parameter's cost elasticity is unknown here:
    width enters squared, depth and tokens linearly), brackets the target; the caller keeps
    the candidates whose predicted cost lands in the band.
    """
    origin_costs, target = aim.origin_costs, aim.target
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
