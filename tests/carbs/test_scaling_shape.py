"""The large run's shape: growing shape laws are read vs size at the picked size."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from carbs.scaling.assemble import assemble_shape
from carbs.scaling.hplaws import HPLaw
from carbs.scaling.types import TrialPoint
from carbs.space import Param, SearchSpace


def _space() -> SearchSpace:
    return SearchSpace(
        [
            Param("d_model", "log", 32, 192, multiple_of=32, scales_cost=True),
            Param("expert_hidden", "log", 32, 384, multiple_of=32, scales_cost=True),
            Param("tokens", "log", 2e4, 1e6, scales_cost=True),
        ]
    )


def _cost(c: dict[str, Any]) -> float:
    d, h = float(c["d_model"]), float(c["expert_hidden"])
    return 6.0 * 2 * (4 * d * d + 2 * d * h) * float(c["tokens"])


def _law(name: str, space: SearchSpace | None, c0: float, c1: float, x0: float, boot_sd: float,
         rng: np.random.Generator) -> HPLaw:  # fmt: skip
    """A law with bootstrap rows whose slope stays clearly positive."""
    coef = np.array([[c0, c1]] + [[c0 + boot_sd * rng.normal(), c1 * (1 + 0.1 * rng.normal())]
                                  for _ in range(50)])  # fmt: skip
    return HPLaw(name, coef, x0, 0.05, space.param(name) if space else None)


def _pick(with_size_laws: bool) -> dict[str, Any]:
    """Compute laws say width and expert size grow far; the picked size says stay small."""
    rng = np.random.default_rng(0)
    sp = _space()
    x0 = math.log(1e11)
    hp = {
        # d_model's compute law is loose (wide bootstrap), expert_hidden's tight
        "d_model": _law("d_model", sp, math.log(96), 0.4, x0, 1.0, rng),
        "expert_hidden": _law("expert_hidden", sp, math.log(192), 0.4, x0, 0.05, rng),
        "n_params": _law("n_params", None, math.log(2e5), 0.7, x0, 0.1, rng),
    }
    xn = math.log(2e5)  # runs: expert_hidden = 2 d_model at every size
    hp_size = {
        "d_model": _law("d_model", sp, math.log(96), 0.5, xn, 0.05, rng),
        "expert_hidden": _law("expert_hidden", sp, math.log(192), 0.5, xn, 0.05, rng),
    }
    ok = [TrialPoint(params={"d_model": 96, "expert_hidden": 192, "tokens": 1e5},
                     cost=_cost({"d_model": 96, "expert_hidden": 192, "tokens": 1e5}), loss=3.0)]  # fmt: skip
    cfg = {"d_model": 96, "expert_hidden": 192, "tokens": 1e5}
    return assemble_shape(cfg, ok, sp, 1e14, hp, "tokens", _cost, 3e5, [],
                          hp_size if with_size_laws else None)  # fmt: skip


def test_width_and_expert_size_share_a_size_the_compute_laws_overshoot() -> None:
    cfg = _pick(with_size_laws=True)
    ratio = cfg["expert_hidden"] / cfg["d_model"]
    assert 1.0 <= ratio <= 4.0, cfg  # the runs' balance (2x) is kept
    n = _cost({**cfg, "tokens": 1.0}) / 6.0
    assert abs(math.log(n / 3e5)) < 0.2  # and the picked size is honoured


def test_compute_laws_alone_unbalance_the_shape() -> None:
    """The failure the size laws fix: the loose law absorbs the whole shrink."""
    cfg = _pick(with_size_laws=False)
    assert cfg["expert_hidden"] / cfg["d_model"] > 8.0, cfg


def _rows(alpha: float, beta: float, sd: float, n: int = 60) -> np.ndarray:
    """Chinchilla rows (log A, log B, log E, alpha, beta) with bootstrap spread in beta."""
    rng = np.random.default_rng(1)
    b = beta + sd * rng.normal(size=n)
    b[0] = beta
    return np.column_stack([np.full(n, 6.0), np.full(n, 6.0), np.zeros(n), np.full(n, alpha), b])


def test_well_determined_size_growth_is_kept() -> None:
    from carbs.scaling.size import size_prior

    rows = _rows(0.5, 0.3, 0.005)  # exponent a = 0.375, tightly pinned
    n_ref = size_prior(rows, 1e18, 1e18)
    n = size_prior(rows, 1e20, 1e18)
    assert math.log(n / n_ref) / math.log(100) == pytest.approx(0.375, abs=0.01)


def test_weakly_determined_size_growth_falls_back_toward_half() -> None:
    """A falsely sure fit (alpha ~2) over a narrow size range: the size trend's spread rules."""
    from carbs.scaling.size import size_prior

    rows = _rows(2.0, 0.2, 0.001)  # a = 0.09 from the fit alone
    n_ref = size_prior(rows, 1e18, 1e18)
    a_sure = math.log(size_prior(rows, 1e20, 1e18) / n_ref) / math.log(100)
    a_loose = math.log(size_prior(rows, 1e20, 1e18, law_sd=0.3) / n_ref) / math.log(100)
    assert a_sure == pytest.approx(0.09, abs=0.01)
    assert 0.3 < a_loose < 0.5


def test_depth_the_runs_never_varied_still_grows_with_width() -> None:
    """An optimizer that left depth at 4 layers at every size gives a flat depth-vs-size law
    (tightly, since every run agrees); the size prior N^(1/3) keeps width from carrying all the
    growth, so the aspect ratio d_model / n_layers stays near the runs'."""
    rng = np.random.default_rng(0)
    sp = SearchSpace(
        [
            Param("d_model", "log", 64, 512, multiple_of=64, scales_cost=True),
            Param("n_layers", "int", 2, 8, scales_cost=True),
            Param("tokens", "log", 1e6, 1e9, scales_cost=True),
        ]
    )

    def cost(c: dict[str, Any]) -> float:
        return 6.0 * 12 * float(c["n_layers"]) * float(c["d_model"]) ** 2 * float(c["tokens"])

    x0, xn = math.log(1e15), math.log(1.2e7)
    hp = {
        "d_model": _law("d_model", sp, math.log(256), 0.3, x0, 0.1, rng),
        "n_layers": HPLaw(
            "n_layers", np.array([[math.log(4), 0.0]] * 51), x0, 0.02, sp.param("n_layers")
        ),  # fmt: skip
        "n_params": _law("n_params", None, math.log(1.2e7), 0.5, x0, 0.1, rng),
    }
    hp_size = {
        "d_model": _law("d_model", sp, math.log(256), 0.5, xn, 0.02, rng),
        "n_layers": HPLaw(
            "n_layers",
            np.array([[math.log(4), 0.0]] * 51),
            xn,
            0.02,
            sp.param("n_layers"),
            value_sd=0.0,
        ),  # fmt: skip
    }
    params = {"d_model": 256, "n_layers": 4, "tokens": 1e8}
    ok = [TrialPoint(params=params, cost=cost(params), loss=3.0)]
    n_target = 1.2e7 * 100  # 100x the runs' size
    cfg = assemble_shape(dict(params), ok, sp, 1e19, hp, "tokens", cost, n_target, [], hp_size)
    assert cfg["n_layers"] >= 12, cfg  # ~4 x 100^(1/3) = 18.6 under the prior alone
    assert cfg["d_model"] / cfg["n_layers"] < 4 * (256 / 4), cfg  # not 100x width, 4 layers


def _loose_start_rows(sd_log_a: float) -> np.ndarray:
    """Chinchilla rows whose N_opt at a fixed compute scatters with the size term's level."""
    rows = _rows(0.34, 0.32, 0.0)
    rng = np.random.default_rng(2)
    rows[1:, 0] += sd_log_a * rng.normal(size=len(rows) - 1)
    return rows


def test_size_start_leans_on_the_best_runs_when_the_fit_is_flat_in_size() -> None:
    """A fit whose loss is flat in N puts N_opt at the runs' compute with a wide spread; the
    sizes of the runs nearest the frontier there take over the start. A determined fit is not
    pulled by them, however tight their bootstrap: where an optimizer spent its runs is not
    where the optimum is (their error is floored at LAW_SD_FLOOR)."""
    from carbs.scaling import laws
    from carbs.scaling.size import LAW_SD_FLOOR, size_prior

    rows = _loose_start_rows(1.0)  # log N_opt spread ~1 / 0.66 ~ 1.5
    n_fit = float(laws.chinchilla_n_opt(rows[:1], np.array([1e18]))[0, 0])
    tight = np.exp(math.log(n_fit / 3) + 0.05 * np.random.default_rng(3).normal(size=60))
    tight[0] = n_fit / 3
    n = size_prior(rows, 1e18, 1e18, law_at_max=tight)
    assert n_fit / 3 < n < n_fit / 2.2  # most of the way to the runs' sizes
    # a determined fit (log spread ~0.1) moves by a few % of the factor 3, not to the runs
    rows_det = _loose_start_rows(0.066)
    n_det = float(laws.chinchilla_n_opt(rows_det[:1], np.array([1e18]))[0, 0])
    sd_fit = float(np.std(np.log(laws.chinchilla_n_opt(rows_det[1:], np.array([1e18]))[:, 0])))
    w_law = sd_fit**2 / (sd_fit**2 + LAW_SD_FLOOR**2)
    n = size_prior(rows_det, 1e18, 1e18, law_at_max=tight * n_det / n_fit)
    assert n == pytest.approx(n_det * 3.0 ** (-w_law), rel=0.01)
    assert n > 0.95 * n_det
    # a loose size trend pulls a tight fit even less
    rows_tight = _loose_start_rows(0.01)
    loose = np.exp(math.log(n_fit / 3) + 1.0 * np.random.default_rng(4).normal(size=60))
    loose[0] = n_fit / 3
    n = size_prior(rows_tight, 1e18, 1e18, law_at_max=loose)
    assert n == pytest.approx(n_fit, rel=0.05)
    assert size_prior(rows, 1e18, 1e18) == pytest.approx(n_fit, rel=1e-9)  # no trend: the fit


def test_routing_stays_in_its_searched_range() -> None:
    """Widths grow past the range toward the size; top_k and experts have no evidence there."""
    from carbs.scaling.consistency import consistent_shape

    sp = SearchSpace(
        [
            Param("d_model", "log", 64, 512, multiple_of=64, scales_cost=True),
            Param("n_experts", "int", 1, 16, scales_cost=True),
            Param("top_k", "int", 1, 4, scales_cost=True),
        ]
    )

    def size(c: dict[str, Any]) -> float:
        return 12.0 * float(c["d_model"]) ** 2 * (1 + float(c["top_k"]))

    targets = {"d_model": (2048.0, 0.3), "n_experts": (32.0, 0.1), "top_k": (6.0, 0.1)}
    free, _ = consistent_shape(sp, {}, targets, size({"d_model": 2048, "top_k": 6}), 0.03, size)
    assert free["top_k"] > 4 and free["n_experts"] > 16  # what the laws alone would do
    keep = frozenset({"n_experts", "top_k"})
    held, _ = consistent_shape(sp, {}, targets, size({"d_model": 2048, "top_k": 6}), 0.03, size,
                               in_range_only=keep)  # fmt: skip
    assert held["top_k"] <= 4 and held["n_experts"] <= 16
    assert held["d_model"] > 512  # width still grows past its range to reach the size
