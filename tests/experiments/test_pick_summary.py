"""The lines `carbs run` ends on, read off real picks: the searched settings, the interval in
per cent, a plain sentence where the law is not determined or the interval is wide, and a
backtest line whose figures are the stored backtest's own."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from carbs.scaling.pick import FitOptions, Workload, pick_large_run
from carbs.testing.world_family import draw_world, trials_around_optimum
from experiments.pick_summary import pick_lines


def _pick(n: int, lo: float = 1e16, hi: float = 1e18) -> tuple[dict, list[str]]:
    world = draw_world(0)
    budgets = np.exp(np.linspace(math.log(lo), math.log(hi), n))
    points = trials_around_optimum(world, budgets, np.random.default_rng(0))
    pick = pick_large_run(
        points,
        world.space(),
        100 * hi,
        Workload(world.cost, world.active_params),
        FitOptions(n_bootstrap=20),
    )
    return pick.to_dict(), list(world.space().names)


@pytest.fixture(scope="module")
def swept() -> tuple[dict, list[str]]:
    return _pick(40)


def test_the_pick_line_names_searched_settings_and_the_reach(swept) -> None:  # type: ignore[no-untyped-def]
    result, names = swept
    first = pick_lines(result, names)[0]
    assert first.startswith("large run at 1e+20 FLOPs, 100x the costliest trial: ")
    assert f"{names[0]} " in first


def test_the_interval_is_given_in_per_cent_of_the_loss(swept) -> None:  # type: ignore[no-untyped-def]
    result, names = swept
    line = pick_lines(result, names)[1]
    loss, (lo, hi) = result["predicted_loss"], result["predicted_loss_ci"]
    assert f"predicted loss {loss:.4f}" in line
    assert f"{100 * (lo / loss - 1):+.1f} % / {100 * (hi / loss - 1):+.1f} %" in line


def test_the_loss_line_says_how_far_above_the_laws_optimum_the_pick_is_expected(swept) -> None:  # type: ignore[no-untyped-def]
    result, names = swept
    regret = result["fits"]["pick"]["prediction"]["expected_regret_log"]
    assert regret > 0  # the replicates' optima scatter around the pick's
    line = pick_lines(result, names)[1]
    assert f"{100 * math.expm1(regret):.1f} % above the law's optimum" in line


def test_the_backtest_line_reports_the_stored_folds(swept) -> None:  # type: ignore[no-untyped-def]
    result, names = swept
    folds = result["fits"]["backtest"]["folds"]
    (line,) = [x for x in pick_lines(result, names) if x.startswith("backtest: ")]
    assert line.startswith("backtest: fitted on the runs up to ")
    assert f"over {len(folds)} cut-offs" in line
    widest = min(folds, key=lambda f: f["cutoff_cost"])
    assert f"the {len(widest['test_cost'])} costlier ones" in line
    rms = float(re.search(r"with RMS error ([0-9.]+) %", line).group(1)) / 100
    errs = np.array(widest["test_pred"]) / np.array(widest["test_loss"]) - 1
    assert rms == pytest.approx(float(np.sqrt(np.mean(errs**2))), abs=6e-4)


def test_a_wide_interval_gets_a_sentence_that_says_why(swept) -> None:  # type: ignore[no-untyped-def]
    result, names = swept
    loss = result["predicted_loss"]
    wide = {**result, "predicted_loss_ci": [0.8 * loss, 1.2 * loss]}
    lines = pick_lines(wide, names)
    assert any(line.startswith("the interval is wide (mostly ") for line in lines)
    narrow = {**result, "predicted_loss_ci": [0.99 * loss, 1.01 * loss], "warnings": []}
    assert not any("interval is wide" in line for line in pick_lines(narrow, names))


def test_few_runs_say_the_law_is_not_determined_and_no_backtest_ran() -> None:
    result, names = _pick(5)
    lines = pick_lines(result, names)
    assert any(line.startswith("the law is not determined by these runs: ") for line in lines)
    assert any(line.startswith("backtest: none (") for line in lines)


def test_the_picks_other_warnings_are_shown_as_notes(swept) -> None:  # type: ignore[no-untyped-def]
    result, names = swept
    warned = {**result, "warnings": ["w one", "w two", "w three", "w four", "w five"]}
    lines = pick_lines(warned, names)
    assert [x for x in lines if x.startswith("note: w ")] == [
        "note: w one",
        "note: w two",
        "note: w three",
    ]
    assert lines[-1] == "note: 2 more in large_run.yaml's warnings"
