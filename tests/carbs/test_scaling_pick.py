"""The large-run pick: consistent, legal, conservative, honest about few points."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from carbs.scaling.pick import pick_large_run
from carbs.scaling.types import TrialPoint
from carbs.space import Constraint, Param, SearchSpace
from carbs.testing.scaling_world import ScalingWorld


def _trials(world: ScalingWorld, n: int, seed: int = 0, spread: float = 0.5) -> list[TrialPoint]:
    rng = np.random.default_rng(seed)
    sp = world.space()
    out = []
    for C in np.exp(np.linspace(np.log(1e16), np.log(1e18), n)):
        cfg = dict(world.optimal_config(float(C)))
        for nm in ("d_model", "n_layers", "n_experts", "learning_rate", "batch_size"):
            cfg[nm] = sp.param(nm).clamp(cfg[nm] * math.exp(rng.uniform(-spread, spread)))
        cfg["top_k"] = min(cfg["top_k"], cfg["n_experts"])
        cfg["tokens"] = float(C) / world.flops_per_token(cfg)
        loss, cost = world.evaluate(cfg, rng)
        out.append(TrialPoint(cfg, cost, loss, loss is None))
    return out


@pytest.fixture(scope="module")
def world() -> ScalingWorld:
    return ScalingWorld(seed=0)


def test_pick_spends_the_budget_and_is_legal(world: ScalingWorld) -> None:
    pts = _trials(world, 16)
    target = 100 * max(p.cost for p in pts)
    pick = pick_large_run(pts, world.space(), target, cost_fn=world.cost, n_bootstrap=100)
    assert world.cost(pick.params) == pytest.approx(target, rel=1e-6)
    assert world.space().is_feasible({k: pick.params[k] for k in world.space().names})
    assert pick.params["d_model"] % 64 == 0
    lo, hi = pick.predicted_loss_ci
    assert lo <= pick.predicted_loss <= hi
    assert math.isfinite(world.true_loss(pick.params))
    json.dumps(pick.to_dict())  # serialisable, no NaN objects


def test_pick_is_close_to_the_true_optimum(world: ScalingWorld) -> None:
    pts = _trials(world, 20, seed=1)
    target = 100 * max(p.cost for p in pts)
    pick = pick_large_run(pts, world.space(), target, cost_fn=world.cost, n_bootstrap=100)
    regret = world.true_loss(pick.params) / world.optimal_loss(target) - 1
    assert regret < 0.08
    assert abs(pick.predicted_loss / world.true_loss(pick.params) - 1) < 0.1


def test_learning_rate_stays_below_an_observed_cliff(world: ScalingWorld) -> None:
    pts = _trials(world, 14, seed=2)
    rng = np.random.default_rng(5)
    for p in list(pts)[:8]:  # the same configs at much higher lr diverge
        bad = {**p.params, "learning_rate": p.params["learning_rate"] * 8}
        loss, cost = world.evaluate(bad, rng)
        pts.append(TrialPoint(bad, cost, loss, loss is None))
    assert any(p.failed for p in pts)
    target = 100 * max(p.cost for p in pts)
    pick = pick_large_run(pts, world.space(), target, cost_fn=world.cost, n_bootstrap=50)
    assert not world.diverges(pick.params)
    assert pick.fits["failure"]["cliff_observed"]
    assert pick.fits["learning_rate"]["p_fail_at_pick"] < 0.05


def test_few_points_give_warnings_and_wide_intervals(world: ScalingWorld) -> None:
    few = _trials(world, 6, seed=3)
    pick = pick_large_run(few, world.space(), 1e20, cost_fn=world.cost, n_bootstrap=50)
    assert any("only 6 successful" in w for w in pick.warnings)
    lo, hi = pick.predicted_loss_ci
    assert hi > lo


def test_too_few_points_is_a_clear_error(world: ScalingWorld) -> None:
    with pytest.raises(ValueError, match="at least 3 successful"):
        pick_large_run(_trials(world, 2), world.space(), 1e20)


def test_generic_workload_without_cost_fn_follows_each_law() -> None:
    space = SearchSpace(
        params=(
            Param("width", "log", 8, 4096, integer=True, scales_cost=True),
            Param("lr", "log", 1e-5, 1.0),
            Param("opt", "categorical", choices=("a", "b")),
        ),
        constraints=(Constraint("width >= 8"),),
    )
    rng = np.random.default_rng(0)
    pts = []
    for i in range(12):
        w = int(16 * 2 ** (i / 2))
        cost = float(w**2 * 1e6)
        lr = 0.1 / w * math.exp(rng.normal(0, 0.05))
        loss = 2 + 50 * cost**-0.15 * math.exp(rng.normal(0, 0.003))
        pts.append(TrialPoint({"width": w, "lr": lr, "opt": "b"}, cost, loss))
    pick = pick_large_run(pts, space, 100 * pts[-1].cost, n_bootstrap=50)
    assert any("no cost_fn" in w for w in pick.warnings)
    assert pick.params["opt"] == "b"
    assert pick.params["width"] > pts[-1].params["width"]
    assert pick.params["lr"] < pts[-1].params["lr"]


def test_valid_value_lets_cost_scaling_params_pass_the_search_max() -> None:
    from carbs.scaling.consistency import valid_value

    d = Param("d_model", "log", 64, 1024, multiple_of=64, scales_cost=True)
    assert valid_value(d, 5000.0) == 4992  # past max, still a multiple of 64
    assert valid_value(d, 10.0) == 64  # the lower bound is a validity limit
    frac = Param("warmup", "logit", 0.01, 0.2)
    assert 0 < valid_value(frac, 1.5) < 1


def test_divergence_boundary_is_fitted_between_survivors_and_failures() -> None:
    from carbs.scaling.divergence import fit_cliff

    rng = np.random.default_rng(0)
    n_ok, n_f = rng.uniform(14, 18, 30), rng.uniform(14, 18, 6)
    u_ok, u_f = rng.uniform(-1.5, 1.8, 30), rng.uniform(2.2, 3.0, 6)
    cliff = fit_cliff(u_ok, n_ok, u_f, n_f)
    assert cliff.observed and 1.7 < cliff.boundary(16.0) < 2.3
    assert cliff.safe_offset(16.0) < cliff.boundary(16.0)
    assert cliff.boundary(25.0) <= cliff.boundary(16.0) + 1e-12  # tilt never loosens it
    none = fit_cliff(u_ok, n_ok, np.array([]), np.array([]))
    assert not none.observed and none.safe_offset(20.0) == 0.0


def test_size_can_be_a_parameter_count(world: ScalingWorld) -> None:
    """With size_fn, N is the parameter count, not FLOPs / 6D (which counts attention too);
    the pick still spends exactly the budget, and its N is the count of the picked shape."""
    pts = _trials(world, 16)
    target = 100 * max(p.cost for p in pts)
    pick = pick_large_run(pts, world.space(), target, cost_fn=world.cost,
                          size_fn=world.param_count, n_bootstrap=30)  # fmt: skip
    size = pick.fits["size"]
    assert "parameter count" in size["measure"]
    assert size["n_picked"] == pytest.approx(world.param_count(pick.params), rel=1e-9)
    # attention FLOPs are outside the count: the picked run spends a few % more than 6 N D
    assert 1.0 < size["flops_overhead_at_target"] < 1.2
    assert world.cost(pick.params) == pytest.approx(target, rel=1e-6)
    flops = pick_large_run(pts, world.space(), target, cost_fn=world.cost, n_bootstrap=30)
    assert flops.fits["size"]["flops_overhead_at_target"] == pytest.approx(1.0, abs=1e-3)


def test_a_size_fn_that_cannot_count_is_named(world: ScalingWorld) -> None:
    pts = _trials(world, 10)
    with pytest.raises(ValueError, match=r"size_fn gave 0.0 for run 0"):
        pick_large_run(pts, world.space(), 1e20, cost_fn=world.cost, size_fn=lambda p: 0.0)
