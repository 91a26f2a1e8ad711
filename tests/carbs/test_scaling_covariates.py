"""What each setting's optimum follows, how the fit apportions its slope, and physical intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from carbs.scaling import laws
from carbs.scaling.covariates import default_follows, scale_vars, setting_var
from carbs.scaling.pick import pick_large_run
from carbs.scaling.response import MOE_VAR, fit_response
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


def test_lr_optimum_follows_width_size_and_batch_where_the_runs_have_them() -> None:
    names = ["learning_rate", "batch_size", "warmup_frac"]
    cov = {"log N": np.zeros(3), "log d_model": np.zeros(3), setting_var("batch_size"): np.zeros(3)}
    assert default_follows(names, cov) == [["log d_model", "log N", "z batch_size"], ["log N"],
                                           ["log N"]]  # fmt: skip
    no_width = {k: v for k, v in cov.items() if k != "log d_model"}
    assert default_follows(names, no_width)[0] == ["log N", "z batch_size"]
    assert default_follows(["warmup_frac"], cov) == [["log N"]]


@pytest.mark.parametrize("follow_width", [True, False])
def test_response_puts_the_slope_on_the_variable_the_optimum_follows(follow_width: bool) -> None:
    r = _runs(follow_width=follow_width)
    fit = fit_response(r["n"], r["tok"], r["loss"], r["z"], ["learning_rate"],
                       np.ones((1, len(r["loss"]))), np.ones(len(r["loss"])), r["th"], r["cov"],
                       [["log d_model", "log N"]])  # fmt: skip
    width_slope, n_slope = fit.hp("learning_rate")[0, 1:3]
    true_slope, other = (width_slope, n_slope) if follow_width else (n_slope, width_slope)
    assert abs(true_slope - (-0.8)) < 0.15, (width_slope, n_slope)
    assert abs(other) < 0.1, (width_slope, n_slope)


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


def _moe_runs(seed: int = 0) -> dict[str, np.ndarray]:
    """Chinchilla losses whose size and data terms move with sparsity u = log(experts/top_k)."""
    rng = np.random.default_rng(seed)
    n_runs = 30
    c = np.exp(np.linspace(math.log(1e16), math.log(1e18), n_runs))
    n_act = np.sqrt(c / 120.0) * np.exp(rng.uniform(-0.4, 0.4, n_runs))
    tok = c / (6.0 * n_act)
    u = rng.uniform(0.0, 3.0, n_runs)
    loss = _moe_loss(n_act, tok, u) * np.exp(rng.normal(0, 0.003, n_runs))
    cov = {"log N": np.log(n_act), "log D": np.log(tok), "log C": np.log(c), MOE_VAR: u}
    th = np.array([math.log(400.0), math.log(1000.0), math.log(1.8), 0.34, 0.3])
    return {"n": n_act, "tok": tok, "loss": loss, "cov": cov, "th": th}


def _moe_loss(n: np.ndarray, d: np.ndarray, u: np.ndarray) -> np.ndarray:
    """More experts per token: more effective parameters (saturating), less data per expert."""
    return (
        1.8 + 400.0 * np.exp(-0.12 * u + 0.02 * u**2) / n**0.34 + 1000.0 * np.exp(0.05 * u) / d**0.3
    )


def test_sparsity_terms_predict_a_far_moe_run() -> None:
    r = _moe_runs()
    n, tok, u_far = 3e9, 6e10, 2.8
    truth = float(_moe_loss(np.array(n), np.array(tok), np.array(u_far)))
    errs = {}
    for with_u in (True, False):
        cov = dict(r["cov"]) if with_u else {k: v for k, v in r["cov"].items() if k != MOE_VAR}
        fit = fit_response(r["n"], r["tok"], r["loss"], np.zeros((len(r["n"]), 0)), [],
                           np.ones((1, len(r["n"]))), np.ones(len(r["n"])), r["th"], cov, [])  # fmt: skip
        assert (fit.moe_u is not None) == with_u
        errs[with_u] = abs(float(fit.predict(n, tok, {}, {MOE_VAR: u_far})[0]) / truth - 1)
    assert errs[True] < 0.01, errs
    assert errs[True] < errs[False], errs


def test_scale_vars_read_sparsity_from_the_moe_names() -> None:
    v = scale_vars(1e8, 1e9, 6e17, {"d_model": 256, "moe_num_experts": 16, "moe_top_k": 4})
    assert v[MOE_VAR] == math.log(4.0)
    assert MOE_VAR not in scale_vars(1e8, 1e9, 6e17, {"d_model": 256})
