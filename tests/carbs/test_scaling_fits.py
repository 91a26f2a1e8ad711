"""Fitters: Chinchilla approach 3 reaches the published optimum; laws recover known truth."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from carbs.scaling import huber as hb
from carbs.scaling import laws

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
        resid, np.repeat(fit.theta[None], 200, 0), counts, 1e-3, (laws.FR_LO, laws.FR_HI)
    )
    lo, hi = np.quantile(boot[:, 2], [0.025, 0.975])
    assert lo < 0.2 < hi
    assert hi - lo < 0.2


def test_batched_fit_matches_independent_fits() -> None:
    """Rows of weights are independent fits: a row with half the points zero-weighted is the
    fit of the other half."""
    x = np.linspace(0, 1, 30)
    y = 0.5 + 2 * x + np.random.default_rng(1).normal(0, 0.05, 30)

    def resid(th: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = y - (th[:, :1] + th[:, 1:2] * x)
        return r, np.stack([-np.ones_like(r), -np.broadcast_to(x, r.shape)], axis=-1)

    w = np.vstack([np.ones(30), np.r_[np.ones(15), np.zeros(15)]])
    th, _ = hb.batched_fit(resid, np.zeros((2, 2)), w, 0.1)
    single, _ = hb.polish(resid, np.zeros(2), 0.1, weights=w[1])
    np.testing.assert_allclose(th[1], single, atol=1e-6)


def test_a_parameter_held_at_its_bound_leaves_the_others_free_to_converge() -> None:
    """A rising line fitted with its slope bounded at <= 0: the slope sits at 0 and the
    intercept reaches the mean within a few iterations (a clipped joint step kept failing,
    the damping grew and the intercept stalled far from it)."""
    x = np.linspace(0, 1, 30)
    y = 0.5 + 2 * x + np.random.default_rng(1).normal(0, 0.05, 30)

    def resid(th: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = y - (th[:, :1] + th[:, 1:2] * x)
        return r, np.stack([-np.ones_like(r), -np.broadcast_to(x, r.shape)], axis=-1)

    bounds = (np.array([-10.0, -10.0]), np.array([10.0, 0.0]))
    th, _ = hb.batched_fit(resid, np.array([[0.0, -1.0]]), np.ones((1, 30)), 10.0, bounds, 8)
    assert th[0, 1] == 0.0
    assert th[0, 0] == pytest.approx(float(np.mean(y)), abs=1e-6)


def test_a_degenerate_fit_reads_as_not_determined_without_a_warning() -> None:
    import warnings

    from carbs.scaling.result import jsonable

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the demo printed numpy's overflow warning here
        r = laws.chinchilla_readable(np.array([900.0, 6.0, 0.5, 3.0, 0.3]))
    assert math.isinf(r["A"]) and r["B"] == pytest.approx(math.exp(6.0))
    assert jsonable(r)["A"] is None
