"""The shape's aspect ratio (width / depth) as a derived setting of the joint model.

Runs too wide or too deep for their size learn slower; left out of the model, that excess is
read as size and data terms and the prediction at the target drifts."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from carbs.scaling import pick as pick_mod
from carbs.scaling.covariates import ASPECT, log_aspect
from carbs.scaling.pick import pick_large_run
from carbs.scaling.types import TrialPoint
from carbs.space import Param, SearchSpace

E, A, B, ALPHA, BETA = 1.8, 400.0, 1000.0, 0.34, 0.30
W_ASPECT = 0.06  # reducible loss x (1 + w log^2(aspect / optimum))


def _aspect_opt(n: float) -> float:
    return 30.0 * (n / 1e7) ** 0.15


def _size(p: dict[str, Any]) -> float:
    return 12.0 * float(p["n_layers"]) * float(p["d_model"]) ** 2


def _cost(p: dict[str, Any]) -> float:
    return 6.0 * _size(p) * float(p["tokens"])


def _loss(p: dict[str, Any]) -> float:
    n, d = _size(p), float(p["tokens"])
    x = math.log(float(p["d_model"]) / float(p["n_layers"]) / _aspect_opt(n))
    y = math.log(float(p["learning_rate"]) / 3e-3)
    return E + (A / n**ALPHA + B / d**BETA) * (1.0 + W_ASPECT * x * x + 0.1 * y * y)


def _space() -> SearchSpace:
    return SearchSpace(params=(
        Param("d_model", "log", 64, 8192, center=256, multiple_of=64, scales_cost=True),
        Param("n_layers", "log", 1, 128, center=8, integer=True, scales_cost=True),
        Param("tokens", "log", 1e7, 1e13, center=1e9, scales_cost=True),
        Param("learning_rate", "log", 1e-4, 1e-1, center=3e-3),
    ))  # fmt: skip


def _runs(n_runs: int = 30, seed: int = 0) -> list[TrialPoint]:
    """Runs around the compute-optimal size, aspect ratios spread +-1.2 e-folds around theirs."""
    rng = np.random.default_rng(seed)
    out = []
    for c in np.exp(rng.uniform(math.log(1e16), math.log(1e18), n_runs)):
        n = 0.1 * math.sqrt(c / 6.0) * math.exp(rng.uniform(-0.5, 0.5))
        aspect = _aspect_opt(n) * math.exp(rng.uniform(-1.2, 1.2))
        layers = max(1, round((n / 12.0 / aspect**2) ** (1 / 3)))
        d_model = max(64, 64 * round(aspect * layers / 64))
        p = {"d_model": d_model, "n_layers": layers, "learning_rate": 3e-3 *
             math.exp(rng.uniform(-0.8, 0.8))}  # fmt: skip
        p["tokens"] = c / (6.0 * _size(p))
        loss = _loss(p) * math.exp(rng.normal(0.0, 0.003))
        out.append(TrialPoint(params=p, cost=_cost(p), loss=loss, failed=False))
    return out


def test_log_aspect_reads_the_common_width_and_depth_names() -> None:
    assert log_aspect({"d_model": 512, "n_layers": 8}) == pytest.approx(math.log(64))
    assert log_aspect({"hidden_size": 4096, "num_hidden_layers": 32}) == pytest.approx(
        math.log(128)
    )
    assert log_aspect({"d_model": 512}) is None


def _pick(points: list[TrialPoint]) -> tuple[Any, float]:
    target = 100 * max(p.cost for p in points)
    pk = pick_large_run(points, _space(), target, cost_fn=_cost, size_fn=_size, seed=0,
                        n_bootstrap=40)  # fmt: skip
    return pk, pk.predicted_loss / _loss(pk.params) - 1


def test_the_joint_model_fits_the_aspect_and_predicts_better_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    points = _runs()
    pk, err = _pick(points)
    hyp = pk.fits["response"]["hyperparameters"]
    assert ASPECT in hyp and hyp[ASPECT]["follows"] == ["log N"]
    # the fitted optimum at the runs' mean size, and its curvature (W_ASPECT on the reducible
    # part: e^P ~ 1 + P near the optimum)
    n_mean = math.exp(pk.fits["response"]["n0"])
    assert hyp[ASPECT]["c"] == pytest.approx(math.log(_aspect_opt(n_mean)), abs=0.25)
    assert 0.5 * W_ASPECT < hyp[ASPECT]["curvature"] < 2.0 * W_ASPECT
    assert "aspect" not in pk.fits["settings"]  # a derived setting: the shape sets it
    # the same runs with the aspect left out of the model (as before it was modelled)
    monkeypatch.setattr(pick_mod, "log_aspect", lambda params: None)
    pk_without, err_without = _pick(points)
    assert ASPECT not in pk_without.fits["response"]["hyperparameters"]
    assert abs(err) < 0.02, err
    assert abs(err) < abs(err_without), (err, err_without)


def test_a_setting_added_from_the_fit_without_it_never_ends_worse() -> None:
    """The fit with one more setting starts also from the fit without it (that setting's
    penalty ~0): its objective is at most the smaller model's, and the start it is given
    predicts exactly what the smaller model does."""
    from carbs.scaling.response import LK_LO, ResponseFit, fit_response, nested_start

    points = _runs(seed=1)
    n = np.array([_size(p.params) for p in points])
    tok = np.array([float(p.params["tokens"]) for p in points])
    loss = np.array([float(p.loss) for p in points])
    z_lr = np.log([float(p.params["learning_rate"]) for p in points])
    asp = np.array([log_aspect(p.params) for p in points], float)
    Z = np.c_[z_lr, asp]
    ones = np.ones((1, len(loss)))
    start = np.array([math.log(A), math.log(B), math.log(E), ALPHA, BETA])
    names, follows = ["learning_rate", ASPECT], [["log N"], ["log N"]]
    small = fit_response(n, tok, loss, Z[:, :1], names[:1], ones, ones[0], start, None,
                         follows[:1])  # fmt: skip
    ext = nested_start(small, float(asp.mean()), 1, LK_LO)
    as_fit = ResponseFit(ext[None], names, small.n0, 0.0, len(loss), follows,
                         [[float(np.log(n).mean())]] * 2, small.moe_u, small.asym + [False])  # fmt: skip
    z = {"learning_rate": float(z_lr[0]), ASPECT: float(asp[0])}
    cov = {"log N": float(np.log(n[0]))}
    assert as_fit.predict(n[0], tok[0], z, cov)[0] == pytest.approx(
        small.predict(n[0], tok[0], {"learning_rate": z["learning_rate"]}, cov)[0], rel=1e-4
    )
    full = fit_response(n, tok, loss, Z, names, ones, ones[0], start, None, follows,
                        nested=small)  # fmt: skip
    assert full.objective <= small.objective * (1 + 1e-6)
