"""Fitters: Chinchilla approach 3 reaches the published optimum; laws recover known truth."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from carbs.scaling import huber as hb
from carbs.scaling import laws
from carbs.scaling.backtest import backtest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CHIN = SHARED / "chinchilla_fig4_points.csv"


def _chinchilla_points() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = sorted(csv.DictReader(CHIN.open()), key=lambda r: float(r["loss"]))[:-5]
    n = np.array([float(r["Model Size"]) for r in rows])
    c = np.array([float(r["Training FLOP"]) for r in rows])
    y = np.array([float(r["loss"]) for r in rows])
    return n, c / (6 * n), y


@pytest.mark.skipif(not CHIN.exists(), reason=f"shared data absent ({CHIN})")
def test_chinchilla_fit_reaches_the_measured_global_minimum() -> None:
    n, d, y = _chinchilla_points()
    assert len(y) == 240
    fit = laws.fit_chinchilla(n, d, y)
    assert fit.objective <= 1.018274e-3 * (1 + 1e-6)
    r = laws.chinchilla_readable(fit.theta)
    assert r["E"] == pytest.approx(1.817, abs=2e-3)
    assert r["alpha"] == pytest.approx(0.3473, abs=1e-3)
    assert r["beta"] == pytest.approx(0.3672, abs=1e-3)


def test_chinchilla_fit_recovers_a_noiseless_law() -> None:
    rng = np.random.default_rng(0)
    n = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 80))
    d = np.exp(rng.uniform(np.log(1e8), np.log(1e11), 80))
    y = 1.7 + 400 / n**0.34 + 410 / d**0.28
    fit = laws.fit_chinchilla(n, d, y)
    r = laws.chinchilla_readable(fit.theta)
    assert r["E"] == pytest.approx(1.7, rel=1e-3)
    assert r["alpha"] == pytest.approx(0.34, rel=1e-2)
    assert r["beta"] == pytest.approx(0.28, rel=1e-2)


def test_bootstrap_interval_of_the_frontier_exponent_covers_the_truth() -> None:
    rng = np.random.default_rng(3)
    c = np.exp(rng.uniform(np.log(1e15), np.log(1e19), 60))
    y = (2.0 + 3e3 * c**-0.2) * np.exp(rng.normal(0, 0.01, 60))
    x0 = float(np.mean(np.log(c)))
    fit = laws.fit_frontier(c, y, x0=x0)
    resid = laws.frontier_resid(np.log(c) - x0, np.log(y))
    counts = hb.bootstrap_weights(60, 200, rng)
    boot, _ = hb.batched_fit(
        resid, np.repeat(fit.theta[None], 200, 0), counts, 1e-3, laws.FR_LO, laws.FR_HI
    )
    lo, hi = np.quantile(boot[:, 2], [0.025, 0.975])
    assert lo < 0.2 < hi
    assert hi - lo < 0.2


def test_batched_fit_matches_independent_fits() -> None:
    x = np.linspace(0, 1, 30)
    y = 0.5 + 2 * x + np.random.default_rng(1).normal(0, 0.05, 30)
    resid = laws.linear_resid(x, y)
    w = np.vstack([np.ones(30), np.r_[np.ones(15), np.zeros(15)]])
    th, _ = hb.batched_fit(resid, np.zeros((2, 2)), w, 0.1)
    single, _ = hb.polish(resid, np.zeros(2), 0.1, weights=w[1])
    np.testing.assert_allclose(th[1], single, atol=1e-6)


def test_backtest_reports_small_error_for_a_true_power_law() -> None:
    c = np.exp(np.linspace(np.log(1e15), np.log(1e19), 12))
    y = 2.0 + 3e3 * c**-0.2
    bt = backtest(c, y)
    assert bt["n_test_pareto"] >= 3
    assert bt["loss_rel_err_max"] < 1e-3


def test_backtest_declines_with_too_few_points() -> None:
    bt = backtest(np.array([1e15, 1e16, 1e17]), np.array([3.0, 2.8, 2.7]))
    assert bt["loss_rel_err_mean"] is None and "need" in bt["reason"]


def test_frontier_band_widens_past_the_data_by_the_backtest_error() -> None:
    from carbs.scaling.backtest import widen_past_data

    costs = np.array([1e10, 1e11, 1e12, 1e13])
    mid = np.full(4, 4.0)
    lo, hi = mid - 0.01, mid + 0.01
    bt = {"loss_rel_err_mean": 0.03, "loss_rel_err_max": 0.05, "log_extrapolation": math.log(10)}
    wlo, whi = widen_past_data(costs, mid, lo, hi, 1e11, bt)
    assert np.allclose(wlo[:2], lo[:2]) and np.allclose(whi[:2], hi[:2])  # inside the data
    assert whi[2] == pytest.approx(4.0 * 1.05) and whi[3] == pytest.approx(4.0 * 1.10)
    assert wlo[3] == pytest.approx(4.0 * 0.90)
    no_bt = widen_past_data(costs, mid, lo, hi, 1e11, {"loss_rel_err_mean": None})
    assert np.allclose(no_bt[0], lo) and np.allclose(no_bt[1], hi)


def test_a_degenerate_fit_reads_as_not_determined_without_a_warning() -> None:
    import warnings

    from carbs.scaling.result import jsonable

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the demo printed numpy's overflow warning here
        r = laws.chinchilla_readable(np.array([900.0, 6.0, 0.5, 3.0, 0.3]))
    assert math.isinf(r["A"]) and r["B"] == pytest.approx(math.exp(6.0))
    assert jsonable(r)["A"] is None
