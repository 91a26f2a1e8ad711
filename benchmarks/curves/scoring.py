"""Scoring shared by the curves benchmarks: the near-frontier selection and Chinchilla
approach 3's compute-optimal loss (`carbs.scaling.laws`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from carbs.scaling.laws import chinchilla_predict, fit_chinchilla

NEAR = 0.02  # a run is near the frontier within this share of the best at no more cost


def near_frontier(runs: Sequence[dict], near: float = NEAR) -> list[dict]:
    """Runs ({"cost", "loss", ...}) whose loss is within `near` of the best at no more cost."""
    order = sorted(runs, key=lambda r: r["cost"])
    out = []
    for r in order:
        best = min(q["loss"] for q in order if q["cost"] <= r["cost"])  # ties (repeats) too
        if r["loss"] <= (1 + near) * best:
            out.append(r)
    return out


def approach3_optimum(n: np.ndarray, d: np.ndarray, loss: np.ndarray, compute: float) -> float:
    """The compute-optimal loss at `compute` (= 6 N D) of L = E + A/N^a + B/D^b fitted to runs."""
    fit = fit_chinchilla(n, d, loss)
    ns = np.exp(np.linspace(math.log(1e3), math.log(1e13), 4001))
    return float(np.min(chinchilla_predict(fit.theta, ns, compute / (6 * ns))))
