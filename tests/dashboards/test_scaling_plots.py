"""Scaling figures for a real pick, drawn from the same fits as the prediction: axis labels,
the laws' exponents and intervals in the legends, the target, the pick on its curve or a note
that says why not; and the reasons themselves, from hand-made fits."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from carbs.scaling.pick import FitOptions, LargeRunPick, Workload, pick_large_run
from carbs.scaling.types import TrialPoint
from carbs.testing.scaling_world import ScalingWorld
from dashboards.pick_gaps import at, loss_gap, setting_gap, slope
from dashboards.scaling_laws import law_label, panels
from dashboards.scaling_plots import plot_scaling


@pytest.fixture(scope="module")
def world_pick() -> LargeRunPick:
    world = ScalingWorld(seed=0)
    rng = np.random.default_rng(0)
    pts = []
    for C in np.exp(np.linspace(np.log(1e16), np.log(1e18), 10)):
        cfg = dict(world.optimal_config(float(C)))
        cfg["learning_rate"] *= math.exp(rng.uniform(-0.5, 0.5))
        loss, cost = world.evaluate(cfg, rng)
        pts.append(TrialPoint(cfg, cost, loss, loss is None))
    return pick_large_run(
        pts, world.space(), 1e20, Workload(world.cost), FitOptions(n_bootstrap=30)
    )


def _texts(svg: Path) -> list[str]:
    """The text of an SVG written with svg.fonttype 'none' (text kept as <text>)."""
    raw = re.findall(r"<text[^>]*>([^<]*)</text>", svg.read_text())
    return [t.strip() for t in raw if t.strip()]


def test_figures_label_their_axes_and_laws_and_mark_the_target(
    world_pick: LargeRunPick, tmp_path: Path
) -> None:
    pick = world_pick
    paths = plot_scaling([], pick, tmp_path)
    assert {p.name for p in paths} == {
        f"scaling_{n}.{ext}" for n in ("frontier", "laws", "backtest") for ext in ("png", "svg")
    }
    assert all(p.stat().st_size > 1000 for p in paths)
    front = " | ".join(_texts(tmp_path / "scaling_frontier.svg"))
    m = pick.fits["model"]
    assert "training compute C (FLOPs)" in front and "held-out loss (nats per token)" in front
    assert f"size exp. α {m['size_exponent']:.3g} [" in front  # exponent with its interval
    assert f"target {pick.target_flops:.3g} FLOPs" in front
    lo, hi = pick.predicted_loss_ci
    assert f"the pick: {pick.predicted_loss:.4g} [{lo:.4g}, {hi:.4g}]" in front
    laws = " | ".join(_texts(tmp_path / "scaling_laws.svg"))
    assert "parameters N" in laws and "training tokens D" in laws
    assert "law: N ∝ C^" in laws and "at the target" in laws
    assert "run's weight in the fit" in laws  # the colour bar


def test_the_pick_is_on_the_drawn_curve_and_band_or_the_figure_says_why(
    world_pick: LargeRunPick,
) -> None:
    pick, f = world_pick, world_pick.fits
    curve = f["optimal_loss_curve"]
    law = at(curve["compute"], curve["loss"], pick.target_flops)
    lo = at(curve["compute"], curve["lo"], pick.target_flops)
    hi = at(curve["compute"], curve["hi"], pick.target_flops)
    assert law is not None and lo is not None and hi is not None
    assert lo <= pick.predicted_loss <= hi  # the star inside the drawn band
    why = loss_gap(f, pick.predicted_loss, pick.target_flops)
    assert bool(why) == (abs(pick.predicted_loss / law - 1) > 0.01)
    for p in panels(pick):  # every panel's pick on its law, or its note
        value = at(p.compute, p.law, pick.target_flops)
        if p.picked is not None and value and abs(p.picked / value - 1) > 0.01:
            assert p.notes, p.title


def _fits(**pick: Any) -> dict[str, Any]:
    grid = [1e16, 1e18, 1e20]
    return {
        "optimal_loss_curve": {"compute": grid, "loss": [4.0, 3.0, 2.5], "size": [1e7, 1e8, 1e9]},
        "optima_curves": {"top_k": {"compute": grid, "value": [1.3, 2.0, 3.2]}},
        "searched": {"top_k": {"kind": "int", "min": 1, "max": 2, "choices": [], "integer": True}},
        "pick": {"size": 1e9, "compute_optimal_size": 1e9, "settings": {}, **pick},
    }


def test_a_law_that_leaves_the_searched_range_is_said() -> None:
    fits = _fits(settings={"top_k": {"optimum": 3.1, "clamped": True}})
    notes = setting_gap(fits, "top_k", 3.2, 2.0)
    assert notes[0] == "the law (3.2) leaves the searched range 1..2, whole numbers"
    assert "held at the searched bound" in notes
    assert setting_gap(fits, "top_k", 2.0, 2.0) == []  # on its law, inside the range


def test_the_learning_rate_below_its_law_is_said_to_be_on_its_safe_side() -> None:
    reason = "optimum minus 0.27 bootstrap sd (0.113 in log), the expected-penalty minimum"
    fits = _fits(learning_rate={"picked": 9.5e-4, "reasons": [reason]})
    fits["searched"]["lr"] = {"kind": "log", "min": 1e-5, "max": 0.3, "choices": []}
    notes = setting_gap(fits, "lr", 1.0e-3, 9.5e-4)
    assert notes == ["kept on its safe side: optimum minus 0.27 bootstrap sd (0.113 in log)"]


def test_a_pick_off_the_loss_curve_names_its_reasons() -> None:
    fits = _fits(size=6e8, compute_optimal_size=1e9)
    why = loss_gap(fits, 2.6, 1e20)
    assert why[0] == "the pick +4.0 % from the curve (2.5):"
    assert "its shape has N 6e+08, the law's N 1e+09" in why
    assert loss_gap(fits, 2.5, 1e20) == []


def test_a_pick_raised_by_its_expected_regret_says_so_not_that_it_was_rounded() -> None:
    fits = _fits(prediction={"expected_regret_log": math.log(1.02)})
    why = loss_gap(fits, 2.55, 1e20)
    assert "+2.0 % expected for optima known only within their spread" in why
    assert not any("rounded" in w for w in why)


def test_law_exponent_is_the_slope_from_the_costliest_run_to_the_target() -> None:
    grid = [1e16, 1e18, 1e20]
    assert slope(grid, [1e7, 1e8, 1e9], 1e18, 1e20) == pytest.approx(0.5)
    from dashboards.scaling_laws import Panel

    p = Panel("t", "y", "N", [], grid, [1e7, 1e8, 1e9], interval=(8e8, 1.2e9))
    assert law_label(p, 1e18, 1e20) == "law: N ∝ C^0.50\n1e+09 [8e+08, 1.2e+09] at the target"


def test_a_law_held_by_the_size_prior_is_drawn_apart_and_joined_where_it_changes() -> None:
    from dashboards.scaling_laws import split

    fitted, prior = split([1.0, 2.0, 3.0, 4.0], [True, True, False, False])
    assert [v == v for v in fitted] == [False, False, True, True]  # NaN where not drawn
    assert prior[:2] == [1.0, 2.0] and prior[2] == 3.0 and prior[3] != prior[3]
