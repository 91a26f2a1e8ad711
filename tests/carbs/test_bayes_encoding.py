"""Candidate sampling of the search encoder."""

import numpy as np

from carbs.bayes.encoding import SpaceEncoder
from carbs.bayes.settings import CarbsSettings
from carbs.space import Param, SearchSpace


def _encoder() -> SpaceEncoder:
    space = SearchSpace((Param("x", "linear", -100.0, 100.0, center=0.0, scale=1.0),))
    return SpaceEncoder(space, radius=0.5)


def test_radius_scales_shrink_candidate_steps() -> None:
    enc = _encoder()
    origin = np.zeros((1, enc.dim))
    wide = enc.sample(origin, 4000, np.random.default_rng(0))
    fine = enc.sample(origin, 4000, np.random.default_rng(0), scales=(0.25,))
    assert abs(wide[:, 0].std() - 0.5) < 0.05
    assert abs(fine[:, 0].std() - 0.125) < 0.015


def test_mixed_radius_scales_give_both_fine_and_wide_steps() -> None:
    enc = _encoder()
    z = enc.sample(np.zeros((1, enc.dim)), 4000, np.random.default_rng(1), scales=(1.0, 0.1))
    steps = np.abs(z[:, 0])
    assert (steps < 0.02).mean() > 1.5 * (steps > 1.0).mean() > 0  # a fine mode and a wide tail


def test_radius_scales_setting_from_a_json_list_is_a_tuple() -> None:
    s = CarbsSettings.from_mapping({"radius_scales": [1.0, 0.5]})
    assert s.radius_scales == (1.0, 0.5)
    hash(s)
