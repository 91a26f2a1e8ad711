"""The pick end to end on worlds of the family (names, routing and forms unlike the project's
own world): a legal config that costs the target, settings inside their searched ranges, a
prediction the stored curves agree with, and a regret and error that stay small."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from carbs.scaling.pick import FitOptions, Workload, pick_large_run
from carbs.scaling.types import TrialPoint
from carbs.testing.world_family import FamilyWorld, draw_world, trials_around_optimum


def designed_trials(world: FamilyWorld, n: int = 48, seed: int = 0) -> list[TrialPoint]:
    """Runs around the world's optimum at log-spaced budgets 1e16-1e18 (every searched value
    perturbed by up to e^+-0.6), as a converged optimizer would leave them."""
    budgets = np.exp(np.linspace(math.log(1e16), math.log(1e18), n))
    return trials_around_optimum(world, budgets, np.random.default_rng(seed))


@pytest.fixture(scope="module")
def world_pick():  # type: ignore[no-untyped-def]
    world = draw_world(0)  # width d_model, depth num_layers, experts as expert_ratio (1-8)
    points = designed_trials(world)
    target = 100 * max(p.cost for p in points)
    pick = pick_large_run(
        points,
        world.space(),
        target,
        Workload(world.cost, world.active_params),
        FitOptions(n_bootstrap=30),
    )
    return world, points, target, pick


def test_the_pick_is_legal_costs_the_target_and_stays_in_searched_ranges(world_pick) -> None:  # type: ignore[no-untyped-def]
    world, _, target, pick = world_pick
    space = world.space()
    assert world.cost(pick.params) == pytest.approx(target, rel=0.01)
    assert space.is_feasible({k: pick.params[k] for k in space.names})
    for role in ("experts", "top_k", "lr", "batch", "warmup"):
        p = space.param(world.form.name_of(role))
        assert p.min <= float(pick.params[p.name]) <= p.max, (p.name, pick.params[p.name])
    assert math.isfinite(world.true_loss(pick.params))  # did not diverge


def test_the_pick_is_near_the_optimum_and_its_prediction_near_the_truth(world_pick) -> None:  # type: ignore[no-untyped-def]
    world, _, target, pick = world_pick
    true = world.true_loss(pick.params)
    assert true / world.optimal_loss(target) - 1 < 0.05
    assert abs(pick.predicted_loss / true - 1) < 0.05
    lo, hi = pick.predicted_loss_ci
    assert lo < pick.predicted_loss < hi


def test_the_stored_curves_agree_with_the_prediction(world_pick) -> None:  # type: ignore[no-untyped-def]
    _, _, target, pick = world_pick
    curve = pick.fits["optimal_loss_curve"]
    at = float(np.exp(np.interp(math.log(target), np.log(curve["compute"]), np.log(curve["loss"]))))
    # the curve is the compute-optimal loss; the pick sits on it, a little above (its lr on the
    # safe side, its shape on the legal grid)
    assert at <= pick.predicted_loss * 1.001
    assert pick.predicted_loss / at - 1 < 0.02
    band = [
        float(np.exp(np.interp(math.log(target), np.log(curve["compute"]), np.log(curve[k]))))
        for k in ("lo", "hi")
    ]
    lo, hi = pick.predicted_loss_ci
    assert band[0] == pytest.approx(lo, rel=0.03) and band[1] == pytest.approx(hi, rel=0.03)
    assert pick.fits["pick"]["prediction"]["loss"] == pytest.approx(pick.predicted_loss)
    json.dumps(pick.to_dict())  # plain JSON for the store and the API


def test_roles_named_by_the_caller_replace_the_usual_names() -> None:
    world = draw_world(3)
    points = designed_trials(world, n=40, seed=1)
    lr = world.form.name_of("lr")
    pick = pick_large_run(
        points,
        world.space(),
        1e20,
        Workload(world.cost, None, {"lr": lr}),
        FitOptions(n_bootstrap=10),
    )
    assert pick.fits["model"]["roles"]["lr"] == lr
    assert pick.fits["pick"]["learning_rate"]["picked"] == pytest.approx(pick.params[lr])


def test_a_law_bent_by_mistuned_small_runs_is_found_from_the_priors_law() -> None:
    """World 11 of the family as the default optimizer searched it (79 trials through the sweep
    runner: tokens held within 0.7-3e9, the small runs' lr and batch far from their optima, so
    the runs' penalties fall with size). The settings-blind base fit put the data exponent at
    1.9 and every start from it kept the full fit there (beta 2.7 and E 3.0 for a true 0.32 and
    1.66; the 100x prediction 29 % high). Started from the priors' law as well, the fit finds
    the law: an objective 9x lower, and the prediction within a few percent."""
    world = draw_world(11)
    saved = json.loads((Path(__file__).parent / "data" / "family_world11_trials.json").read_text())
    points = [
        TrialPoint(t["params"], t["cost"], t["loss"], t["loss"] is None) for t in saved["trials"]
    ]
    pick = pick_large_run(
        points,
        world.space(),
        1e20,
        Workload(world.cost, None, saved["roles"]),
        FitOptions(n_bootstrap=30),
    )
    model = pick.fits["model"]
    assert 0.05 <= model["data_exponent"] <= 1.0, model["structure"]
    assert model["irreducible_loss"] == pytest.approx(world.k.E, rel=0.25)
    true = world.true_loss(pick.params)
    assert pick.predicted_loss == pytest.approx(true, rel=0.05)
    assert true <= 1.03 * world.optimal_loss(1e20)
