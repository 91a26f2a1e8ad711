"""The synthetic scaling world: costs, optima, divergence and noise behave as documented."""

from __future__ import annotations

import math

import numpy as np
import pytest

from carbs.testing.scaling_world import ScalingWorld


@pytest.fixture(scope="module")
def world() -> ScalingWorld:
    return ScalingWorld(seed=0, noise=0.01)


def test_optimal_config_spends_exactly_the_budget_and_is_legal(world: ScalingWorld) -> None:
    cfg = world.optimal_config(1e18)
    assert world.cost(cfg) == pytest.approx(1e18, rel=1e-9)
    space = world.space()
    searched = {n: cfg[n] for n in space.names}
    assert space.is_feasible(searched)
    assert cfg["d_model"] % 64 == 0
    assert world.true_loss(cfg) == pytest.approx(world.optimal_loss(1e18))


def test_optimum_beats_perturbed_configs_at_the_same_budget(world: ScalingWorld) -> None:
    C = 1e18
    best = world.optimal_loss(C)
    cfg = world.optimal_config(C)
    rng = np.random.default_rng(0)
    for _ in range(50):
        q = dict(cfg)
        q["d_model"] = (
            world.space().param("d_model").clamp(cfg["d_model"] * math.exp(rng.normal(0, 0.4)))
        )
        q["n_layers"] = (
            world.space().param("n_layers").clamp(cfg["n_layers"] * math.exp(rng.normal(0, 0.4)))
        )
        q["learning_rate"] = cfg["learning_rate"] * math.exp(rng.normal(0, 0.5))
        q["tokens"] = C / world.flops_per_token(q)
        assert world.true_loss(q) >= best - 1e-9


def test_frontier_falls_with_compute_and_optimal_lr_shrinks(world: ScalingWorld) -> None:
    losses = world.frontier_loss([1e16, 1e18, 1e20])
    assert np.all(np.diff(losses) < 0)
    assert world.optimal_config(1e20)["learning_rate"] < world.optimal_config(1e16)["learning_rate"]
    assert world.optimal_config(1e20)["d_model"] > world.optimal_config(1e16)["d_model"]


def test_too_high_learning_rate_diverges(world: ScalingWorld) -> None:
    cfg = world.optimal_config(1e18)
    bad = {**cfg, "learning_rate": cfg["learning_rate"] * 10}
    assert world.true_loss(bad) == math.inf
    loss, cost = world.evaluate(bad, np.random.default_rng(0))
    assert loss is None and cost == pytest.approx(world.cost(bad))


def test_observation_noise_has_the_requested_scale(world: ScalingWorld) -> None:
    cfg = world.optimal_config(1e17)
    rng = np.random.default_rng(1)
    obs = np.array([world.evaluate(cfg, rng)[0] for _ in range(400)])
    rel = np.log(obs / world.true_loss(cfg))
    assert abs(rel.std() - 0.01) < 0.002


def test_seeds_give_different_worlds() -> None:
    a, b = ScalingWorld(seed=1), ScalingWorld(seed=2)
    assert a.optimal_loss(1e18) != pytest.approx(b.optimal_loss(1e18), rel=1e-3)
