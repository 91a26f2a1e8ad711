"""Scaling figures are written as PNG and SVG for a real pick."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from carbs.scaling.pick import FitOptions, Workload, pick_large_run
from carbs.scaling.types import TrialPoint
from carbs.testing.scaling_world import ScalingWorld
from dashboards.scaling_plots import plot_scaling


def test_plot_scaling_writes_png_and_svg(tmp_path: Path) -> None:
    world = ScalingWorld(seed=0)
    rng = np.random.default_rng(0)
    pts = []
    for C in np.exp(np.linspace(np.log(1e16), np.log(1e18), 10)):
        cfg = dict(world.optimal_config(float(C)))
        cfg["learning_rate"] *= math.exp(rng.uniform(-0.5, 0.5))
        loss, cost = world.evaluate(cfg, rng)
        pts.append(TrialPoint(cfg, cost, loss, loss is None))
    pick = pick_large_run(
        pts, world.space(), 1e20, Workload(world.cost), FitOptions(n_bootstrap=30)
    )
    paths = plot_scaling(pts, pick, tmp_path)
    assert {p.suffix for p in paths} == {".png", ".svg"}
    assert len(paths) == 6
    for p in paths:
        assert p.stat().st_size > 1000
