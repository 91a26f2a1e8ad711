import pytest

from models.schedule import lr_multiplier


def test_warmup_rises_linearly_to_peak():
    values = [lr_multiplier(s, 100, 0.1, "cosine", 0.1) for s in range(10)]
    assert values == pytest.approx([(s + 1) / 10 for s in range(10)])


def test_cosine_ends_at_min_ratio_and_decreases_monotonically():
    values = [lr_multiplier(s, 100, 0.1, "cosine", 0.1) for s in range(10, 100)]
    assert values[0] == pytest.approx(1.0)
    assert values[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_wsd_is_flat_then_decays_over_final_fraction():
    values = [lr_multiplier(s, 100, 0.1, "wsd", 0.0, decay_frac=0.2) for s in range(100)]
    assert values[10:80] == pytest.approx([1.0] * 70)
    assert values[85] < values[80] < 1.0
    assert values[-1] == pytest.approx(0.0)
