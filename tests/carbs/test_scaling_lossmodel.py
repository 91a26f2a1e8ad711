"""The loss model and its structure, on synthetic runs with known answers: the fit recovers a
law's exponents and a setting's optimum with what it follows, and the backtest chooses the loss
family that extrapolates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from carbs.scaling.lossmodel import (
    FitData,
    LossStructure,
    SettingTerm,
    base_fit,
    fit_folds,
    fit_loss_model,
)
from carbs.scaling.policy import Policy
from carbs.scaling.selection import SettingsPlan, make_folds, select_structure

E, A, B = 1.8, 400.0, 600.0


def runs(
    n: int,
    alpha: float,
    beta: float,
    follows: str,
    seed: int = 0,
    noise: float = 0.003,
    slope: float = -0.35,
) -> tuple[FitData, np.ndarray, dict[str, float]]:
    """Runs over independent N and D, a learning rate scattered around an optimum that drifts
    with log N, log D (by `slope` per e-fold) or nothing; the penalty scales the reducible
    part."""
    rng = np.random.default_rng(seed)
    log_n = rng.uniform(math.log(1e6), math.log(1e8), n)
    log_d = rng.uniform(math.log(1e8), math.log(1e10), n)
    x0 = {"log N": float(np.mean(log_n)), "log D": float(np.mean(log_d))}
    truth = {"c": math.log(3e-3), "log N": 0.0, "log D": 0.0, "k": 0.05}
    if follows != "none":
        truth[follows] = slope
    opt = (
        truth["c"] + truth["log N"] * (log_n - x0["log N"]) + truth["log D"] * (log_d - x0["log D"])
    )
    z = opt + rng.normal(0.0, 1.0, n)
    reducible = A * np.exp(-alpha * log_n) + B * np.exp(-beta * log_d)
    loss = (E + reducible * np.exp(truth["k"] * (z - opt) ** 2)) * np.exp(rng.normal(0, noise, n))
    cost = 6 * np.exp(log_n + log_d)
    cov = {"log N": log_n, "log D": log_d, "log C": np.log(cost), "z lr": z}
    data = FitData(log_n, log_d, np.log(loss), {"lr": z}, cov, np.ones(n))
    return data, cost, truth


def lr_structure(family: str = "additive") -> LossStructure:
    return LossStructure(
        family, False, False, (SettingTerm("lr", ("log N", "log D"), lopsided=True),)
    )  # type: ignore[arg-type]


def test_the_fit_recovers_the_law_and_the_optimum_at_the_runs() -> None:
    data, _, truth = runs(120, 0.34, 0.30, "none")
    fit = fit_loss_model(data, lr_structure(), base_fit(data))
    a, b, e, alpha, beta = fit.chinchilla_rows()[0]
    assert math.exp(e) == pytest.approx(E, rel=0.05)
    assert alpha == pytest.approx(0.34, abs=0.03) and beta == pytest.approx(0.30, abs=0.03)
    centre = {"log N": fit.x0["log N"], "log D": fit.x0["log D"]}
    assert float(fit.optimum_z("lr", centre)[0]) == pytest.approx(truth["c"], abs=0.1)
    assert float(fit.curvature("lr")[0][0]) == pytest.approx(truth["k"], rel=0.3)


@pytest.mark.parametrize("follows", ["log D", "log N"])
def test_an_optimum_that_follows_one_scale_variable_is_found_following_it(follows: str) -> None:
    data, _, truth = runs(150, 0.34, 0.30, follows, seed=1)
    fit = fit_loss_model(data, lr_structure(), base_fit(data))
    other = "log N" if follows == "log D" else "log D"
    j = fit.structure.settings[0].follows
    slopes = dict(zip(j, fit.theta[0, fit.layout.terms[0][1]], strict=True))
    assert slopes[follows] == pytest.approx(truth[follows], abs=0.08), slopes
    assert abs(slopes[other]) < 0.08, slopes


def test_a_slope_keeps_the_sign_every_published_law_agrees_on() -> None:
    """Runs whose lr optimum rises with size (against every published law) fit a rising slope
    when the term is free, and a flat one when it may only fall: what keeps near-collinear
    slopes from trading signs and moving the optimum the wrong way 100x out."""
    data, _, truth = runs(150, 0.34, 0.30, "log N", seed=1, slope=0.35)

    def slope_on_n(signs: tuple[tuple[str, int], ...]) -> float:
        term = SettingTerm("lr", ("log N", "log D"), lopsided=True, slope_signs=signs)
        fit = fit_loss_model(data, LossStructure("additive", False, False, (term,)), base_fit(data))
        return float(fit.theta[0, fit.layout.terms[0][1][0]])

    assert slope_on_n(()) == pytest.approx(truth["log N"], abs=0.08)
    assert -0.02 <= slope_on_n((("log N", -1),)) <= 0.0


def test_folds_fitted_together_equal_folds_fitted_alone() -> None:
    data, cost, _ = runs(60, 0.34, 0.30, "log D", seed=2)
    s = lr_structure()
    folds = make_folds(data, cost, Policy())
    together = fit_folds(data, s, [f.train for f in folds], [f.base for f in folds], iters=200)
    for row, f in zip(together, folds, strict=True):
        alone = fit_loss_model(data.subset(f.train), s, f.base, iters=200)
        pred = alone.log_loss_of(data.subset(f.test))[0]
        np.testing.assert_allclose(row[f.test], pred, atol=2e-3)


def test_a_richer_family_replaces_the_simpler_only_where_it_beats_it() -> None:
    data, cost, _ = runs(90, 0.32, 0.32, "none", seed=3)
    sel = select_structure(data, cost, SettingsPlan(("lr",), {}, "lr"), Policy())
    tried = {t.what: t for t in sel.tried if t.what and "~" not in t.what}
    assert sel.structure.e_prior  # the backtest cannot identify E at its short reach
    order = ["tied + prior on E", "additive + prior on E", "smooth + prior on E"]
    current = order[0]
    for richer in order[1:]:  # each step up must be earned against the current choice
        if tried[richer].beats(tried[current], Policy().parsimony):
            current = richer
    assert sel.structure.family + " + prior on E" == current
    assert sel.structure.family == "tied"  # these runs' exponents are equal
    assert sel.decisions[0].startswith("loss family:")


def test_an_optimum_the_runs_do_not_bracket_is_said_to_be_unlocated() -> None:
    from dataclasses import replace

    from carbs.scaling.model import unlocated_settings

    data, _, truth = runs(120, 0.34, 0.30, "none", seed=4)
    fit = fit_loss_model(data, lr_structure(), base_fit(data))
    assert unlocated_settings(fit, data) == ()  # scattered around the optimum: located
    # every run 1.5-3 e-folds above the optimum (no noise): the runs see one side of the
    # penalty only, and the fitted optimum lands below all of them
    one_sided = truth["c"] + np.random.default_rng(5).uniform(1.5, 3.0, len(data.log_n))
    reducible = A * np.exp(-0.34 * data.log_n) + B * np.exp(-0.30 * data.log_d)
    loss = np.log(E + reducible * np.exp(truth["k"] * (one_sided - truth["c"]) ** 2))
    skewed = replace(data, z={"lr": one_sided}, cov={**data.cov, "z lr": one_sided}, log_loss=loss)
    fit = fit_loss_model(skewed, lr_structure(), base_fit(skewed))
    near = float(fit.optimum_z("lr", {"log N": fit.x0["log N"], "log D": fit.x0["log D"]})[0])
    assert near < float(one_sided.min())
    assert unlocated_settings(fit, skewed) == ("lr",)  # no bootstrap: nothing pins it
    # with bootstrap replicates that agree (noise-free runs pin the curvature), it is located
    from carbs.scaling import huber as hb

    counts = hb.bootstrap_weights(len(one_sided), 20, np.random.default_rng(0))
    pinned = fit_loss_model(skewed, lr_structure(), base_fit(skewed), counts)
    assert unlocated_settings(pinned, skewed) == ()


def test_a_published_slope_is_the_prior_where_the_runs_cannot_see_the_slope() -> None:
    """An optimum following log D with slope -0.35 and a law whose prior mean is -1 (as the
    weight decay's timescale law): where the runs determine the slope (30 runs, 1 % noise) the
    prior barely moves it; where they hardly do (16-20 runs, 3-5 % noise), it moves toward -1."""

    def slope(n: int, noise: float, seed: int, means: tuple[tuple[str, float], ...]) -> float:
        data, _, _ = runs(n, 0.34, 0.30, "log D", seed=seed, noise=noise)
        term = SettingTerm("lr", ("log N", "log D"), slope_means=means)
        fit = fit_loss_model(data, LossStructure("additive", False, False, (term,)), base_fit(data))
        return float(
            dict(zip(term.follows, fit.theta[0, fit.layout.terms[0][1]], strict=True))["log D"]
        )

    law = (("log D", -1.0),)
    assert abs(slope(30, 0.01, 6, law) - slope(30, 0.01, 6, ())) < 0.05
    for n, noise, seed in ((16, 0.03, 6), (20, 0.05, 7)):
        assert slope(n, noise, seed, law) < slope(n, noise, seed, ()) - 0.15


def test_weight_decay_takes_the_timescale_law_where_searched_in_log() -> None:
    from dataclasses import replace

    from carbs.scaling.evidence import Evidence, SettingAxis
    from carbs.scaling.model import role_slopes
    from carbs.scaling.roles import Roles

    roles = Roles({"lr": "lr", "batch": "bs", "wd": "wd", "tokens": "tokens"}, ("bs", "lr", "wd"))
    empty = np.zeros(0)
    axes = {n: SettingAxis(n, "log") for n in ("lr", "bs", "wd")}
    ev = Evidence(roles, (), empty, empty, empty.astype(bool), empty, empty, axes, {})
    kept, extras = ["bs", "lr", "wd"], {"wd": ("z lr", "z bs")}
    got = role_slopes(ev, kept, extras, Policy())
    assert got == {"wd": (("log D", -1.0), ("z lr", -1.0), ("z bs", 1.0))}
    logit = replace(ev, axes={**axes, "wd": SettingAxis("wd", "logit")})
    assert role_slopes(logit, kept, extras, Policy()) == {}  # the law's slopes are in log
