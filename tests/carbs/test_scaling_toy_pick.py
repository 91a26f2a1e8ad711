"""Regression: the toy Chinchilla sweep's pick (integration found it clamped N to the search max
and chose a learning rate 16x the optimum for that size, which diverges)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from carbs.errors import ConfigFailure
from carbs.scaling.pick import pick_large_run
from carbs.scaling.types import TrialPoint
from carbs.space import Param, SearchSpace
from experiments.toy_objectives import chinchilla_toy, chinchilla_toy_cost

SPACE = SearchSpace(
    params=(
        Param("n_params", "log", 1e6, 1e8, center=1e7, scales_cost=True),
        Param("tokens", "log", 1e7, 1e9, center=1e8, scales_cost=True),
        Param("learning_rate", "log", 1e-4, 3e-2, center=2e-3),
    )
)


def _lr_opt(n: float) -> float:
    return 3e-3 * (n / 1e6) ** -0.25


def _true_optimum(flops: float) -> tuple[float, float]:
    """(loss, N) of the best config costing `flops` (lr at its optimum), found numerically."""

    def f(x: float) -> float:
        n = math.exp(x)
        return chinchilla_toy({"n_params": n, "tokens": flops / (6 * n),
                               "learning_rate": _lr_opt(n)})["loss"]  # fmt: skip

    r = minimize_scalar(f, bounds=(math.log(1e5), math.log(1e14)), method="bounded")
    return float(r.fun), math.exp(float(r.x))


def _trials(seed: int, n: int = 36) -> list[TrialPoint]:
    """A local design around the frontier: N within e^+-1 of optimal, lr from 0.2x to 11x lr*."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        c = math.exp(rng.uniform(math.log(1e14), math.log(3.6e16)))
        n_p = SPACE.param("n_params").clamp(_true_optimum(c)[1] * math.exp(rng.uniform(-1, 1)))
        p = {
            "n_params": n_p,
            "tokens": SPACE.param("tokens").clamp(c / (6 * n_p)),
            "learning_rate": _lr_opt(n_p) * math.exp(rng.uniform(-1.6, 2.4)),
        }
        try:
            out.append(TrialPoint(p, chinchilla_toy_cost(p), chinchilla_toy(p)["loss"]))
        except ConfigFailure:
            out.append(TrialPoint(p, chinchilla_toy_cost(p), None, failed=True))
    return out


@pytest.mark.parametrize("seed", [0, 2])
def test_toy_pick_does_not_diverge_and_is_near_the_true_optimum(seed: int) -> None:
    pts = _trials(seed)
    assert any(p.failed for p in pts)  # the design reaches the divergence cliff
    target = 100 * max(p.cost for p in pts)
    pick = pick_large_run(pts, SPACE, target, cost_fn=chinchilla_toy_cost, n_bootstrap=60)
    params = pick.params
    assert chinchilla_toy_cost(params) == pytest.approx(target, rel=1e-6)
    loss = chinchilla_toy(params)["loss"]  # raises ConfigFailure if the pick diverges
    assert params["learning_rate"] < 2.0 * _lr_opt(params["n_params"])
    best, n_best = _true_optimum(target)
    assert loss / best - 1 < 0.03
    assert params["n_params"] > SPACE.param("n_params").max  # extrapolated past the range
    assert abs(math.log(params["n_params"] / n_best)) < math.log(1.5)
    assert abs(pick.predicted_loss / loss - 1) < 0.1
    assert pick.fits["failure"]["cliff_observed"]
    assert any("n_params" in w and "outside the search range" in w for w in pick.warnings)


def test_toy_pick_without_failures_stays_at_or_below_the_lr_optimum() -> None:
    pts = [p for p in _trials(1) if not p.failed]
    pts = [p for p in pts if p.params["learning_rate"] < 3 * _lr_opt(p.params["n_params"])]
    target = 100 * max(p.cost for p in pts)
    pick = pick_large_run(pts, SPACE, target, cost_fn=chinchilla_toy_cost, n_bootstrap=60)
    lr_info = pick.fits["learning_rate"]
    assert not pick.fits["failure"]["cliff_observed"]
    assert pick.params["learning_rate"] <= lr_info["centre"] * (1 + 1e-9)
    assert chinchilla_toy(pick.params)["loss"] / _true_optimum(target)[0] - 1 < 0.03


def test_interval_from_few_runs_is_wide_but_bounded_by_what_was_observed() -> None:
    pts = [p for p in _trials(3, n=12) if not p.failed]
    target = 100 * max(p.cost for p in pts)
    pick = pick_large_run(pts, SPACE, target, cost_fn=chinchilla_toy_cost, n_bootstrap=40)
    lo, hi = pick.predicted_loss_ci
    worst = max(p.loss for p in pts)
    assert 0 < lo <= pick.predicted_loss <= hi <= worst
