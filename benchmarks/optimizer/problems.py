"""Cost-aware benchmark problems with known frontiers.

Each problem gives a search space, a noisy `evaluate(params, rng) -> (loss | None, cost)`, the
noise-free `true_loss(params)`, the true frontier `frontier(cost)` and the reference budgets at
which a run must come within 1 % of that frontier.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from botorch.test_functions.synthetic import Branin, Hartmann

from carbs.space import Param, SearchSpace
from carbs.testing.scaling_world import ScalingWorld


@dataclass
class Problem:
    name: str
    space: SearchSpace
    evaluate: Callable[[Mapping[str, Any], np.random.Generator], tuple[float | None, float]]
    true_loss: Callable[[Mapping[str, Any]], float]
    frontier: Callable[[float], float]
    budgets: tuple[float, ...]


def scaling_world(seed: int) -> Problem:
    """The scaling engineer's synthetic MoE world (FLOPs cost, divergence cliff, noise)."""
    world = ScalingWorld(seed=seed)
    return Problem(
        name="scaling_world",
        space=world.space(),
        evaluate=world.evaluate,
        true_loss=lambda p: float("inf") if world.diverges(p) else world.true_loss(p),
        frontier=world.optimal_loss,
        budgets=(1e17, 1e18),
    )


def synthetic(name: str, seed: int, noise: float = 0.003) -> Problem:
    """A BoTorch test function made cost-aware with a `size` parameter.

    loss = 1 + f_norm(x - shift(size)) + 2 / sqrt(size), cost = size; f_norm is the function
    scaled to [0, ~1] with minimum 0, and its optimum moves with log(size) (a compute-dependent
    optimum), so the frontier is 1 + 2 / sqrt(cost) exactly.
    """
    fn = {"hartmann6": Hartmann(dim=6), "branin": Branin()}[name]
    dim = fn.dim
    bounds = fn.bounds.numpy()
    fmin = float(fn.optimal_value)
    span = {"hartmann6": 3.32237, "branin": 50.0}[name]
    direction = np.where(np.arange(dim) % 2 == 0, 1.0, -1.0) * (bounds[1] - bounds[0]) * 0.04
    params = tuple(
        Param(
            f"x{i}",
            "linear",
            float(bounds[0, i]),
            float(bounds[1, i]),
            center=float(bounds[:, i].mean()),
            scale=float(bounds[1, i] - bounds[0, i]) / 4,
        )
        for i in range(dim)
    ) + (Param("size", "log", 1.0, 1000.0, center=10.0),)
    space = SearchSpace(params)

    def true_loss(p: Mapping[str, Any]) -> float:
        s = float(p["size"])
        x = np.array([p[f"x{i}"] for i in range(dim)]) - direction * (math.log10(s) - 1.5)
        x = np.clip(x, bounds[0], bounds[1])  # the shifted optimum stays inside the box
        f = float(fn.evaluate_true(torch.tensor(x).unsqueeze(0)).item())
        return 1.0 + (f - fmin) / span + 2.0 / math.sqrt(s)

    def evaluate(p: Mapping[str, Any], rng: np.random.Generator) -> tuple[float | None, float]:
        return true_loss(p) * math.exp(rng.normal(0, noise)), float(p["size"])

    return Problem(
        name=name,
        space=space,
        evaluate=evaluate,
        true_loss=true_loss,
        frontier=lambda c: 1.0 + 2.0 / math.sqrt(c),
        budgets=(10.0, 100.0),
    )


def make(name: str, seed: int) -> Problem:
    return scaling_world(seed) if name == "scaling_world" else synthetic(name, seed)
