"""The cost strata a sweep fills before any random band (`carbs.bayes.costband.fill_target`)."""

import math

import numpy as np

from carbs.bayes.costband import BAND_HALF_WIDTH, fill_target


def test_the_emptiest_stratum_is_filled_first() -> None:
    above = np.exp(np.linspace(math.log(2.6e10), math.log(1e12), 40))
    costs = np.concatenate([[1e10], above])  # one trial in the cheapest stratum, 40 above
    t = fill_target(costs, 1e10, 1e12, 0.5, np.random.default_rng(0))
    assert t is not None
    strata = int(math.log(1e2) // (2 * BAND_HALF_WIDTH))
    assert 1e10 <= t <= 1e10 * (1e2 ** (1 / strata)), t


def test_evenly_filled_strata_and_short_spans_ask_for_nothing() -> None:
    rng = np.random.default_rng(0)
    even = np.exp(np.linspace(math.log(1e10), math.log(1e12), 60))
    assert fill_target(even, 1e10, 1e12, 0.5, rng) is None
    top_heavy = np.array([1e10] + [1e12] * 30)
    assert fill_target(top_heavy, 1e10, 1e12, 0.0, rng) is None  # switched off
    assert fill_target(top_heavy, 1e12 / 1.5, 1e12, 0.5, rng) is None  # under two strata
