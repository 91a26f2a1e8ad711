"""Spending and resampling of the BoTorch CARBS optimizer: bounded steps up in cost, a climb
that reaches the per-trial cap, a total budget met within a few percent, and repeats only where
noise makes them worth their cost."""

import math

import numpy as np
import pytest

from carbs.bayes import CarbsOptimizer
from carbs.bayes.resample import noise_sd, uncertain_member
from carbs.bayes.spending import SpendingLimits, scheduled_top_cost, spending_plan
from carbs.optimizer import Observation
from carbs.space import Param, SearchSpace

FAST = dict(
    num_candidates_per_dim=15,
    fit_maxiter=15,
    max_train_points=48,
    max_fit_points=32,
    refit_fraction=1.0,
)


def lm_space() -> SearchSpace:
    """A Chinchilla-like toy: size and tokens buy cost, the lr optimum moves with size."""
    return SearchSpace(
        params=(
            Param("n_params", "log", 1e6, 1e10, center=1e7, scales_cost=True),
            Param("tokens", "log", 1e7, 1e12, center=2e8, scales_cost=True),
            Param("lr", "log", 1e-4, 1e-1, center=3e-3),
        )
    )


def lm_cost(p: dict) -> float:
    return 6.0 * p["n_params"] * p["tokens"]


def lm_loss(p: dict) -> float:
    lr_opt = 3e-3 * (p["n_params"] / 1e7) ** -0.3
    return (
        1.7
        + 400.0 / p["n_params"] ** 0.34
        + 410.0 / p["tokens"] ** 0.28
        + 0.2 * math.log10(p["lr"] / lr_opt) ** 2
    )


def sequential(
    opt: CarbsOptimizer, trials: int, noise: float = 0.0, seed: int = 0, budget: float | None = None
) -> list[tuple[dict, float, dict]]:
    """Run trials one at a time; with `budget`, stop creating trials once it is spent (as the
    sweep's allocator does). Returns (params, cost, info) per trial."""
    rng = np.random.default_rng(seed)
    out, spent = [], 0.0
    for _ in range(trials):
        if budget is not None and spent >= budget:
            break
        (s,) = opt.suggest(1)
        info = dict(opt.last_info[0]) if opt.last_info else {}
        cost = lm_cost(s.params)
        loss = lm_loss(s.params) * (1.0 + noise * float(rng.normal()))
        opt.observe(Observation(s.params, cost, loss, suggestion_id=s.suggestion_id))
        spent += cost
        out.append((dict(s.params), cost, info))
    return out


def test_no_step_up_in_cost_past_the_growth_bound_even_without_any_budget() -> None:
    growth = 4.0
    opt = CarbsOptimizer(lm_space(), seed=1, price=lm_cost, max_cost_growth=growth, **FAST)
    run = sequential(opt, 24)
    costliest = run[0][1]
    model_picks, flat, longest_flat = 0, 0, 0
    for _, cost, info in run[1:]:
        if info:  # past the random warm-up, a model-based pick
            model_picks += 1
            assert cost <= growth * costliest * (1 + 1e-9), (cost, costliest)
            flat = 0 if cost > costliest else flat + 1
            longest_flat = max(longest_flat, flat)
        costliest = max(costliest, cost)
    assert model_picks >= 18
    # the default schedule: never more than climb_every (5) successes without a new costliest
    # one, plus one for a band that found no candidate at its cost
    assert longest_flat <= 6, longest_flat
    assert costliest > 4 * run[0][1]


def test_climb_reaches_the_cap_and_spend_lands_on_the_total_budget() -> None:
    cap, budget = 1e19, 8e19
    opt = CarbsOptimizer(
        lm_space(), seed=2, price=lm_cost, max_suggestion_cost=cap, max_total_cost=budget, **FAST
    )
    run = sequential(opt, 200, budget=budget)
    costs = [c for _, c, _ in run]
    spent = sum(costs)
    assert budget <= spent <= 1.05 * budget, spent / budget
    assert max(costs) <= cap
    assert max(costs) >= cap / 4, max(costs)  # the sweep climbed to (near) the per-trial cap
    # steadily: no model-based pick ever stepped more than 4x past the costliest before it
    top = costs[0]
    for _, c, info in run[1:]:
        if info:
            assert c <= 4.0 * top * (1 + 1e-9)
        top = max(top, c)


def test_climb_schedule_with_a_trial_count_reaches_the_cap_by_mid_sweep() -> None:
    cap, trials = 1e20, 30
    opt = CarbsOptimizer(
        lm_space(), seed=3, price=lm_cost, max_suggestion_cost=cap, max_trials=trials, **FAST
    )
    costs = [c for _, c, _ in sequential(opt, trials)]
    start = costs[0]
    assert start < cap / 1e3
    # two thirds of the way through, the costliest run is within the schedule's sqrt(growth)
    assert max(costs[: 2 * trials // 3]) >= cap / 2 / 4, (max(costs), cap)
    assert max(costs) <= cap


def test_schedule_is_log_linear_from_the_first_cost_to_the_cap() -> None:
    assert scheduled_top_cost(1e3, 1e9, 0.0, 0.5) == pytest.approx(1e3)
    assert scheduled_top_cost(1e3, 1e9, 0.25, 0.5) == pytest.approx(1e6)
    assert scheduled_top_cost(1e3, 1e9, 0.9, 0.5) == pytest.approx(1e9)
    plan = spending_plan(
        np.array([1e3, 2e3]), np.array([1e3, 2e3, 5e2]), 0.0, 3,
        SpendingLimits(max_cost_growth=4.0, max_suggestion_cost=1e9, max_total_cost=None,
                       max_trials=10, climb_fraction=0.5),
    )  # fmt: skip
    # 3 of 10 trials -> schedule 1e3 * 1e6 ** 0.6 ~ 4e6, far ahead: climb by the 4x step
    assert plan.ceiling == pytest.approx(8e3) and plan.climb_target == pytest.approx(8e3)
    plan = spending_plan(
        np.array([1e3]), np.array([1e3, 9e3]), 0.0, 2,
        SpendingLimits(max_cost_growth=4.0, max_suggestion_cost=None, max_total_cost=1.2e4,
                       max_trials=None, climb_fraction=0.5),
    )  # fmt: skip
    assert plan.ceiling == pytest.approx(2e3) and plan.climb_target is None  # what is left


def test_deterministic_workload_gets_no_repeats() -> None:
    opt = CarbsOptimizer(lm_space(), seed=4, price=lm_cost, resample_frequency=3, **FAST)
    run = sequential(opt, 30)
    keys = [tuple(sorted(p.items())) for p, _, _ in run]
    assert len(set(keys)) == len(keys)
    assert not any(info.get("resample") for _, _, info in run)


def test_noisy_workload_repeats_where_the_frontier_is_in_doubt() -> None:
    opt = CarbsOptimizer(lm_space(), seed=5, price=lm_cost, resample_frequency=3, **FAST)
    run = sequential(opt, 30, noise=0.03, seed=5)
    keys = [tuple(sorted(p.items())) for p, _, _ in run]
    repeats = len(keys) - len(set(keys))
    assert 1 <= repeats <= 30 // 3, repeats


def test_resampling_picks_the_member_whose_lead_is_within_the_noise() -> None:
    # three configs, cheapest first; the dearest leads the middle one by 1 %, the middle
    # leads the cheapest by 30 %: with 2 % noise only the dearest's place is in doubt
    groups = [[0], [1], [2]]
    costs = np.array([1.0, 2.0, 4.0])
    log_losses = np.log(np.array([2.6, 2.0, 1.98]))
    frontier = [[0], [1], [2]]
    assert uncertain_member(groups, frontier, costs, log_losses, 0.02, {}) == 2
    assert uncertain_member(groups, frontier, costs, log_losses, 0.001, {}) is None
    # identical repeats say the workload is deterministic: no noise, no resample
    same = np.log(np.array([2.0, 2.0, 3.0]))
    assert noise_sd([[0, 1], [2]], same, gp_rel_sd=0.05) == 0.0
    spread = np.log(np.array([2.0, 2.1, 3.0]))
    assert noise_sd([[0, 1], [2]], spread, gp_rel_sd=None) == pytest.approx(
        abs(math.log(2.1 / 2.0)) / math.sqrt(2)
    )


def _seeded(opt: CarbsOptimizer, n: int, seed: int = 0) -> None:
    """Observe `n` of the optimizer's own (random warm-up) suggestions, noise-free."""
    for _ in range(n):
        (s,) = opt.suggest(1)
        opt.observe(Observation(s.params, lm_cost(s.params), lm_loss(s.params),
                                suggestion_id=s.suggestion_id))  # fmt: skip


def test_a_stopped_trial_is_not_in_flight_and_the_budget_counts_what_it_spent() -> None:
    """Told as `tried`, a stopped suggestion no longer holds its full predicted cost as if in
    flight: the ceiling is what the budget has left once what it spent is paid."""
    probe = CarbsOptimizer(lm_space(), seed=3, price=lm_cost, **FAST)
    _seeded(probe, 5)
    spent = sum(o.cost for o in probe.observations)
    costliest = max(o.cost for o in probe.observations)
    budget = spent + 2.0 * costliest  # what is left binds before the 4x growth bound
    opt = CarbsOptimizer(lm_space(), seed=3, price=lm_cost, max_total_cost=budget, **FAST)
    for o in probe.observations:
        opt.observe(o)
    (big,) = opt.suggest(1)
    stopped_spend = 0.5 * lm_cost(big.params)
    (s,) = opt.suggest(1, tried=[big.params], tried_spent=stopped_spend)
    assert big.suggestion_id not in opt.outstanding  # settled, not in flight
    assert s.params != big.params  # never suggested again
    ceiling = opt.last_info[-1]["cost_ceiling"]
    assert ceiling == pytest.approx(budget - spent - stopped_spend, rel=1e-9)


def test_derived_observations_add_to_the_bill_but_not_to_the_trial_count() -> None:
    """A decay branch is not a trial: two sweeps with the same 5 of 40 trials, one also told two
    branches of each (derived), climb on the same schedule (5/40 of the trials used, not 15)."""
    start = lm_cost({"n_params": 1e7, "tokens": 2e8})
    cap, trials = 64 * start, 40

    def make() -> CarbsOptimizer:
        return CarbsOptimizer(lm_space(), seed=4, price=lm_cost, max_suggestion_cost=cap,
                              max_trials=trials, **FAST)  # fmt: skip

    plain, branched = make(), make()
    for lr in (1e-3, 2e-3, 3e-3, 5e-3, 8e-3):
        p = {"n_params": 1e7, "tokens": 2e8, "lr": lr}
        o = Observation(p, lm_cost(p), lm_loss(p))
        plain.observe(o)
        branched.observe(o)
        for f in (0.25, 0.5):
            b = {**p, "tokens": f * p["tokens"]}
            branched.observe(Observation(b, lm_cost(b), lm_loss(b), spent=0.2 * lm_cost(b),
                                         derived=True))  # fmt: skip
    plain.suggest(1)
    branched.suggest(1)
    # progress 5/40 with climb_fraction 0.5: a quarter of the log-way from the start to the cap
    expected = start * 64**0.25
    assert plain.last_info[-1]["cost_band"] == pytest.approx(expected)
    assert branched.last_info[-1]["cost_band"] == pytest.approx(expected)


def test_a_stopped_trials_bound_informs_the_model_but_is_no_success_to_climb_from() -> None:
    """A bound (a stopped trial's optimistic final loss at its planned cost) is never suggested
    again, is not a frontier member even where its loss would be, and does not raise the
    growth ceiling the way a success at that cost would; it counts its spend as money."""
    from carbs.bayes.surrogates import fit_surrogates

    opt = CarbsOptimizer(lm_space(), seed=5, price=lm_cost, **FAST)
    _seeded(opt, 5)
    costliest = max(o.cost for o in opt.observations)
    p = {"n_params": 1e9, "tokens": 1e10, "lr": 3e-4}  # far costlier than any success
    bound = Observation(p, lm_cost(p), 0.5 * min(o.loss for o in opt.observations),
                        spent=0.1 * lm_cost(p), bound=True)  # fmt: skip
    opt.observe(bound)
    (s,) = opt.suggest(1)
    assert opt.last_info[-1]["cost_ceiling"] == pytest.approx(4.0 * costliest)
    assert opt.space.canonical(s.params) != opt.space.canonical(p)
    state = fit_surrogates(opt.encoder, list(opt.observations), [], opt.settings, seed=0)
    members = {i for g in state.frontier for i in g}
    assert len(opt.observations) - 1 not in members  # the bound, though lowest, is no member
