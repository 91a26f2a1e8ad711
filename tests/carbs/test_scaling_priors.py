"""Priors where runs barely say: how far shallow settings and widths/depth move with scale, and
the Chinchilla exponents of the joint model."""

from __future__ import annotations

import math

import numpy as np

from carbs.scaling import laws, response
from carbs.scaling.hpchoice import BATCH_SLOPE_PRIOR, lopsided_shift, slope_prior
from carbs.scaling.hplaws import RUN_CORRELATION, HPLaw, shrunk_law_z


def _law(slope: float, slope_sd: float, x0: float = math.log(1e17), seed: int = 0) -> HPLaw:
    rng = np.random.default_rng(seed)
    rows = [[math.log(64.0), slope]]
    rows += [[math.log(64.0) + 0.05 * rng.normal(), slope + slope_sd * rng.normal()]
             for _ in range(400)]  # fmt: skip
    return HPLaw("batch_size", np.array(rows), x0, 0.1, None)


def test_a_drifting_batch_law_falls_back_on_the_prior_growth() -> None:
    """An optimizer's batch drifting down with compute (slope -0.3, loosely determined) must not
    be extrapolated 100x: the picked batch follows the prior's growth instead."""
    law = _law(-0.3, 0.2)
    z, slope = shrunk_law_z(law, 1e19, slope_prior("batch_size"))
    assert abs(slope - BATCH_SLOPE_PRIOR[0]) < 0.05, slope
    assert math.exp(z[0]) > 64.0 * 100**0.2  # grew with compute, as published batch laws do
    raw = math.exp(float(law.z_at(1e19)[0]))
    assert raw < 64.0 / 3  # what the drift alone would have picked


def test_a_well_determined_trend_wins_over_the_prior() -> None:
    law = _law(0.6, 0.005)
    _, slope = shrunk_law_z(law, 1e19, slope_prior("batch_size"))
    w = 0.1**2 / (0.1**2 + (0.005 * RUN_CORRELATION) ** 2)
    assert slope > 0.55
    assert abs(slope - (w * 0.6 + (1 - w) * BATCH_SLOPE_PRIOR[0])) < 0.01


def test_the_intercept_stays_where_the_runs_put_it() -> None:
    law = _law(-0.3, 0.2)
    z, _ = shrunk_law_z(law, math.exp(law.x0), slope_prior("warmup_frac"))
    assert abs(z[0] - math.log(64.0)) < 1e-12


def test_settings_without_a_published_trend_are_held() -> None:
    assert slope_prior("warmup_frac")[0] == 0.0
    assert slope_prior("global_batch_size") == BATCH_SLOPE_PRIOR


def _narrow_noisy_runs(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """20 runs within one decade of compute, 1 % noise: E and the exponents barely determined."""
    rng = np.random.default_rng(seed)
    c = np.exp(rng.uniform(math.log(1e16), math.log(1.5e17), 20))
    n = np.sqrt(c / 120.0) * np.exp(rng.uniform(-0.7, 0.7, 20))
    tok = c / (6.0 * n)
    th = np.array([math.log(400.0), math.log(1000.0), math.log(1.8), 0.34, 0.3])
    loss = laws.chinchilla_predict(th[None], n, tok)[0] * np.exp(rng.normal(0, 0.01, 20))
    return n, tok, loss, th


def _far_errors() -> np.ndarray:
    errs = []
    for s in range(10):
        n, tok, loss, th = _narrow_noisy_runs(s)
        start = laws.fit_chinchilla(n, tok, loss, counts=None, n_starts=8).theta
        fit = response.fit_response(n, tok, loss, np.zeros((20, 0)), [], np.ones((1, 20)),
                                    np.ones(20), start, {}, [])  # fmt: skip
        truth = laws.chinchilla_predict(th[None], np.array([3e10]), np.array([2e11]))[0, 0]
        errs.append(float(fit.predict(3e10, 2e11, {}, {})[0]) / truth - 1)
    return np.abs(np.array(errs))


def test_exponent_prior_halves_the_error_of_a_narrow_sweep(monkeypatch) -> None:  # noqa: ANN001
    """Without it such fits trade E for small exponents (E ~ 0) and extrapolate far too low."""
    with_prior = _far_errors()
    monkeypatch.setattr(response, "EXP_PRIOR_SD", 1e6)
    without = _far_errors()
    assert with_prior.mean() < 0.7 * without.mean(), (with_prior, without)


def test_the_lr_shift_below_its_optimum_grows_with_how_lopsided_the_penalty_is() -> None:
    shifts = [lopsided_shift(r) for r in (1.0, 2.0, 3.0, 5.0)]
    assert shifts[0] == 0.0  # a symmetric penalty: no reason to leave the optimum
    assert shifts == sorted(shifts) and shifts[-1] > 0.5
    # the shift is the expected penalty's minimum: nudging it either way costs more (r = 2)
    x = np.random.default_rng(0).normal(size=200_000)

    def expected(d: float) -> float:
        off = -d - x
        return float(np.mean(off * off * np.where(off > 0, 2.0, 1.0)))

    assert expected(shifts[1]) < min(expected(shifts[1] - 0.1), expected(shifts[1] + 0.1))
