"""The last check on the predicted loss: implausible or undetermined laws fall back, and say so."""

from __future__ import annotations

import numpy as np

from carbs.scaling.plausible import plausible_loss

COSTS = np.array([1e15, 2e15, 3e15])
LOSS = np.array([5.2, 5.0, 4.9])


def test_a_plausible_point_from_a_sound_law_is_kept() -> None:
    warnings: list[str] = []
    out = plausible_loss(4.0, 3.5, 4.5, COSTS, LOSS, 3e17, warnings)
    assert out == (4.0, 3.5, 4.5, None) and warnings == []


def test_a_point_worse_than_the_best_trial_falls_back() -> None:
    warnings: list[str] = []
    point, lo, hi, source = plausible_loss(37.6, 30.0, 40.0, COSTS, LOSS, 3e17, warnings)
    assert lo < point < hi == 4.9 and source is not None
    assert "do not determine how loss scales" in warnings[0]


def test_a_plausible_looking_point_from_a_degenerate_law_falls_back_and_names_why() -> None:
    warnings: list[str] = []
    why = "joint: E = 0.0067 collapsed toward 0"
    point, lo, hi, source = plausible_loss(3.0, 2.6, 4.2, COSTS, LOSS, 3e17, warnings, why)
    assert point == 4.9 * 100.0**-0.05 and hi == 4.9 and source is not None
    assert why in warnings[0] and "do not determine how loss scales" in warnings[0]
