"""Combining the joint model's and the Pareto Chinchilla's predictions at the pick."""

from __future__ import annotations

import math

import numpy as np
import pytest

from carbs.scaling import laws
from carbs.scaling.combine import combine_predictions


def _theta(E: float, alpha: float, beta: float) -> np.ndarray:
    return np.array([6.0, 6.0, math.log(E), alpha, beta])


def test_ridge_ends_are_named_and_published_fits_pass() -> None:
    assert laws.chinchilla_implausible(_theta(1.69, 0.34, 0.28), 2.0) is None  # Hoffmann et al.
    collapsed = laws.chinchilla_implausible(_theta(1e-6, 0.36, 0.11), 3.3)
    assert collapsed is not None and "E = " in collapsed
    steep = laws.chinchilla_implausible(_theta(2.84, 0.45, 1.10), 3.3)
    assert steep is not None and "beta = 1.1" in steep
    # a size term that adds nothing at the runs' N (a real sweep of 1-2-layer models: A ~ 0)
    no_size = np.array([-20.0, math.log(77.0), math.log(2.7), 0.34, 0.28])
    assert laws.chinchilla_implausible(no_size, 3.9) is None  # blind without the runs' scale
    vanished = laws.chinchilla_implausible(no_size, 3.9, n_typ=1e5, d_typ=2e6)
    assert vanished is not None and "size term vanished" in vanished
    assert laws.chinchilla_implausible(_theta(1.69, 0.34, 0.28), 2.0, 1e8, 2e9) is None


JOINT = np.array([2.0, 2.1, 1.9])
PARETO = 1.2 * JOINT  # the same bootstrap spread in log
PARETO_WINS = {"joint": 0.03, "pareto_chinchilla": 0.005, "n_scored": 8.0}


def test_backtest_weights_the_two_fits_when_their_spreads_match() -> None:
    comb, share, why = combine_predictions(JOINT, PARETO, PARETO_WINS, {})
    assert share < 0.5 and "expected error" in why
    assert JOINT[0] < comb[0] < PARETO[0]
    _, even, _ = combine_predictions(JOINT, PARETO, None, {})
    assert even == pytest.approx(0.5)


def test_a_fit_unsure_at_the_pick_gives_way_despite_its_backtest() -> None:
    # the Pareto fit scores best on the held-out runs, but its bootstrap replicates scatter
    # +-30 % at the pick (a few runs, a long extrapolation): its say must shrink to match
    rng = np.random.default_rng(0)
    joint = 2.0 * np.exp(np.r_[0.0, rng.normal(0.0, 0.02, 200)])
    pareto = 2.4 * np.exp(np.r_[0.0, rng.normal(0.0, 0.30, 200)])
    comb, share, _ = combine_predictions(joint, pareto, PARETO_WINS, {})
    vj = np.var(np.log(joint[1:])) + 0.03**2
    vp = np.var(np.log(pareto[1:])) + 0.005**2
    assert share == pytest.approx(vp / (vj + vp))
    assert share > 0.95
    assert comb[0] == pytest.approx(2.0**share * 2.4 ** (1 - share))


def test_a_degenerate_fit_gives_way_even_with_the_better_backtest() -> None:
    bad = {"joint": None, "pareto_chinchilla": "E = 1e-06 collapsed toward 0"}
    comb, share, why = combine_predictions(JOINT, PARETO, PARETO_WINS, bad)
    assert share == 1.0 and "degenerate" in why
    np.testing.assert_allclose(comb, JOINT)
    both = {"joint": "beta = 1.1 outside", "pareto_chinchilla": "E collapsed"}
    _, share_both, _ = combine_predictions(JOINT, PARETO, PARETO_WINS, both)
    assert share_both < 0.5  # nothing to prefer: back to the expected errors
