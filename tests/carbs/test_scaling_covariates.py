"""What each setting's optimum follows is chosen by a backtest, and intervals stay physical."""

from __future__ import annotations

import math

import numpy as np

from carbs.scaling import laws
from carbs.scaling.covariates import choose_follows
from carbs.scaling.pick import pick_large_run
from carbs.scaling.response import fit_response
from carbs.scaling.types import TrialPoint
from carbs.testing.scaling_world import ScalingWorld


def _runs(follow_width: bool, seed: int = 0) -> dict[str, np.ndarray]:
    """Chinchilla losses times a steep lr penalty whose optimum follows width or size.

    Width varies independently of N (aspect ratios differ), so the two are distinguishable."""
    rng = np.random.default_rng(seed)
    n_runs = 30
    c = np.exp(np.linspace(math.log(1e16), math.log(1e19), n_runs))
    n_eff = np.sqrt(c / 120.0) * np.exp(rng.uniform(-0.4, 0.4, n_runs))
    tok = c / (6.0 * n_eff)
    width = np.exp(0.5 * np.log(n_eff / 1e5) + rng.uniform(-1.2, 1.2, n_runs)) * 64.0
    x = np.log(width) if follow_width else np.log(n_eff)
    opt = -6.0 - 0.8 * (x - x.mean())
    z = opt + rng.uniform(-0.8, 0.8, n_runs)
    th = np.array([math.log(400.0), math.log(1000.0), math.log(1.8), 0.34, 0.3])
    base = laws.chinchilla_predict(th[None], n_eff, tok)[0]
    loss = base * np.exp(0.3 * (z - opt) ** 2 + rng.normal(0, 0.002, n_runs))
    cov = {"log N": np.log(n_eff), "log D": np.log(tok), "log C": np.log(c),
           "log d_model": np.log(width)}  # fmt: skip
    return {"n": n_eff, "tok": tok, "c": c, "loss": loss, "z": z[:, None], "cov": cov, "th": th}


def _follows(r: dict[str, np.ndarray]) -> list[str]:
    follows, _ = choose_follows(r["n"], r["tok"], r["loss"], r["c"], r["z"], ["learning_rate"],
                                r["cov"], np.ones(len(r["loss"])), r["th"])  # fmt: skip
    return follows[0]


def test_lr_optimum_follows_width_when_the_truth_does() -> None:
    assert _follows(_runs(follow_width=True)) == ["log d_model"]


def test_lr_optimum_keeps_log_n_when_width_adds_nothing() -> None:
    assert "log d_model" not in _follows(_runs(follow_width=False))


def test_response_recovers_the_width_slope() -> None:
    r = _runs(follow_width=True)
    fit = fit_response(r["n"], r["tok"], r["loss"], r["z"], ["learning_rate"],
                       np.ones((1, len(r["loss"]))), np.ones(len(r["loss"])), r["th"], r["cov"],
                       [["log d_model"]])  # fmt: skip
    assert abs(fit.hp("learning_rate")[0, 1] - (-0.8)) < 0.15


def test_interval_is_positive_and_warnings_carry_no_debug() -> None:
    world = ScalingWorld(seed=1)
    rng = np.random.default_rng(3)
    sp = world.space()
    pts = []
    for C in np.exp(np.linspace(math.log(1e16), math.log(1e18), 12)):
        cfg = dict(world.optimal_config(float(C)))
        for nm in ("d_model", "n_layers", "learning_rate", "batch_size"):
            cfg[nm] = sp.param(nm).clamp(cfg[nm] * math.exp(rng.uniform(-0.5, 0.5)))
        cfg["tokens"] = float(C) / world.flops_per_token(cfg)
        loss, cost = world.evaluate(cfg, rng)
        pts.append(TrialPoint(cfg, cost, loss, loss is None))
    target = 1000 * max(p.cost for p in pts)
    pick = pick_large_run(pts, sp, target, cost_fn=world.cost, n_bootstrap=50)
    lo, hi = pick.predicted_loss_ci
    e_fit = pick.fits["response"]["chinchilla"]["E"]
    assert 0 < lo <= pick.predicted_loss <= hi
    assert lo >= 0.5 * e_fit
    assert not any(w.strip().upper().startswith("DEBUG") for w in pick.warnings)
