"""Behaviour of the BoTorch CARBS optimizer on small, fast problems."""

import math

import numpy as np
import pytest

from carbs.bayes import CarbsOptimizer
from carbs.optimizer import Observation
from carbs.registry import DEFAULT_OPTIMIZER, build_optimizer
from carbs.space import Constraint, Param, SearchSpace

FAST = dict(
    num_candidates_per_dim=15,
    fit_maxiter=15,
    max_train_points=48,
    max_fit_points=32,
    refit_fraction=1.0,
)


def moe_space() -> SearchSpace:
    return SearchSpace(
        params=(
            Param("lr", "log", 1e-4, 1e-1, center=3e-3),
            Param("d_model", "log", 64, 512, center=128, multiple_of=32),
            Param("n_heads", "int", 1, 8, center=4),
            Param("n_experts", "int", 1, 8, center=4),
            Param("top_k", "int", 1, 4, center=2, condition="n_experts > 1"),
            Param("act", "categorical", choices=("gelu", "swiglu")),
        ),
        constraints=(Constraint("d_model % n_heads == 0"), Constraint("top_k <= n_experts")),
    )


def evaluate(p: dict) -> tuple[float | None, float]:
    """A cheap cost-aware toy: bigger models cost more and (with a good lr) lose less."""
    cost = 1e12 * p["d_model"] ** 2 * (1 + p["top_k"] / 4)
    if p["lr"] > 0.05:
        return None, cost  # "diverged"
    loss = 3 + 200 / p["d_model"] + (math.log10(p["lr"]) + 2.5) ** 2 + 0.1 * (p["act"] == "gelu")
    return loss, cost


def run(opt: CarbsOptimizer, steps: int, batch: int = 1) -> None:
    for _ in range(steps):
        for s in opt.suggest(batch):
            loss, cost = evaluate(s.params)
            opt.observe(
                Observation(
                    s.params, cost, loss, failed=loss is None, suggestion_id=s.suggestion_id
                )
            )


def test_every_suggestion_holds_constraints_and_is_legal() -> None:
    space = moe_space()
    opt = CarbsOptimizer(space, seed=1, num_random_samples=3, **FAST)
    run(opt, 4, batch=3)
    assert len(opt.observations) == 12
    for s in opt.suggest(4):
        assert space.is_feasible(s.params)
        assert s.params["d_model"] % 32 == 0 and 64 <= s.params["d_model"] <= 512
        assert s.params == space.canonical(s.params)
        assert s.params["act"] in ("gelu", "swiglu")


def test_batch_suggestions_are_distinct_and_avoid_pending() -> None:
    opt = CarbsOptimizer(moe_space(), seed=2, num_random_samples=3, **FAST)
    run(opt, 2, batch=3)
    pending = [s.params for s in opt.suggest(2)]
    batch = opt.suggest(5, pending=pending)
    keys = [tuple(sorted(s.params.items())) for s in batch]
    assert len(set(keys)) == 5
    assert not {tuple(sorted(p.items())) for p in pending} & set(keys)


def test_failures_are_learned_and_never_block_suggesting() -> None:
    space = SearchSpace((Param("lr", "log", 1e-4, 1.0, center=0.1), Param("w", "linear", 0, 1)))
    opt = CarbsOptimizer(space, seed=0, num_random_samples=2, resample_frequency=0, **FAST)
    for s in opt.suggest(3):  # all fail: the optimizer must keep suggesting around the centre
        opt.observe(Observation(s.params, cost=1.0, failed=True, suggestion_id=s.suggestion_id))
    assert len(opt.suggest(2)) == 2
    rng = np.random.default_rng(0)
    for _ in range(12):
        p = {"lr": float(10 ** rng.uniform(-4, 0)), "w": float(rng.uniform())}
        bad = p["lr"] > 0.05
        opt.observe(Observation(p, cost=1 + p["w"], loss=None if bad else p["w"], failed=bad))
    opt.suggest(1)
    state = opt._fitted[1]
    assert state.success_gp is not None
    from carbs.bayes.acquisition import log_success_probability

    x = opt.encoder.to_gp(opt.encoder.encode_many([{"lr": 0.9, "w": 0.5}, {"lr": 1e-3, "w": 0.5}]))
    p_fail_region, p_ok_region = np.exp(log_success_probability(*state.success_gp.predict(x)))
    assert p_ok_region > p_fail_region


def test_rebuilt_optimizer_replays_to_the_same_next_suggestion() -> None:
    live = CarbsOptimizer(moe_space(), seed=5, num_random_samples=3, **FAST)
    run(live, 3, batch=2)
    run(live, 2, batch=1)
    pending = [s.params for s in live.suggest(1)]
    rebuilt = CarbsOptimizer(moe_space(), seed=5, num_random_samples=3, **FAST)
    for o in live.observations:
        rebuilt.observe(o)
    a = [s.params for s in live.suggest(3, pending=pending)]
    b = [s.params for s in rebuilt.suggest(3, pending=pending)]
    assert a == b


def test_forget_drops_outstanding_suggestion() -> None:
    opt = CarbsOptimizer(moe_space(), seed=0, **FAST)
    (s,) = opt.suggest(1)
    assert s.suggestion_id in opt.outstanding
    opt.forget(s.suggestion_id)
    assert not opt.outstanding


def test_unknown_setting_is_rejected_with_valid_keys() -> None:
    with pytest.raises(ValueError, match="search_radius"):
        CarbsOptimizer(moe_space(), seed=0, serch_radius=1.0)


def test_registry_builds_carbs_by_default() -> None:
    opt = build_optimizer(moe_space(), seed=0, name=None, settings=FAST)
    assert DEFAULT_OPTIMIZER == "carbs" and isinstance(opt, CarbsOptimizer)


def test_rebuild_reuses_memoized_anchor_fit_with_identical_result() -> None:
    from carbs.bayes import optimizer as module

    live = CarbsOptimizer(moe_space(), seed=9, num_random_samples=3, **FAST)
    run(live, 3, batch=2)
    first = [s.params for s in live.suggest(2, pending=[])]
    assert module._ANCHOR_MEMO  # the anchor fit was remembered
    rebuilt = CarbsOptimizer(moe_space(), seed=9, num_random_samples=3, **FAST)
    for o in live.observations:
        rebuilt.observe(o)
    module._ANCHOR_MEMO.clear()
    cold = CarbsOptimizer(moe_space(), seed=9, num_random_samples=3, **FAST)
    for o in live.observations:
        cold.observe(o)
    assert [s.params for s in cold.suggest(2, pending=[])] == first
    assert [s.params for s in rebuilt.suggest(2, pending=[])] == first


def _tiny_moe_space() -> SearchSpace:
    """The shape of a real CPU sweep: five cost-scaling parameters, integers and a category."""
    return SearchSpace(
        params=(
            Param("d_model", "log", 32, 256, center=64, multiple_of=32, scales_cost=True),
            Param("n_layers", "int", 1, 4, center=2, scales_cost=True),
            Param("n_experts", "categorical", choices=(4, 8), center=8),
            Param("top_k", "int", 1, 2, center=2, scales_cost=True),
            Param("expert_hidden", "log", 64, 512, center=128, multiple_of=32, scales_cost=True),
            Param("lr", "log", 1e-3, 3e-2, center=4e-3),
            Param("tokens", "log", 1e5, 1e7, center=3e5, scales_cost=True),
        ),
        constraints=(Constraint("top_k <= n_experts"),),
    )


def _tiny_moe_cost(p: dict) -> float:
    d, e = p["d_model"], p["expert_hidden"]
    return 6.0 * p["tokens"] * (p["n_layers"] * (4 * d * d + 3 * d * e * p["top_k"]) + 2048 * d)


def test_cost_band_picks_land_at_their_target_and_spread_the_sweep() -> None:
    """Noise hides what compute buys here (gain 0.12 per e-fold of cost, noise sd 0.12), the
    regime where EI alone hugs the starting cost; band picks must land in their band, and
    bands must carry the sweep over a decade of cost."""
    opt = CarbsOptimizer(
        _tiny_moe_space(), seed=0, cost_band_fraction=1.0, cost_fill_share=0.0, **FAST
    )
    rng = np.random.default_rng(0)
    costs, hits, banded = [], 0, 0
    for _ in range(20):
        s = opt.suggest(1)[0]
        cost = _tiny_moe_cost(s.params)
        loss = 6.0 - 0.12 * math.log(cost / 1e11) + 0.3 * math.log10(s.params["lr"] / 4e-3) ** 2
        opt.observe(Observation(s.params, cost + 0.0, loss + float(rng.normal(0.0, 0.12)),
                                suggestion_id=s.suggestion_id))  # fmt: skip
        costs.append(cost)
        info = opt.last_info[0] if opt.last_info else {}
        if "cost_band" in info:
            banded += 1
            hits += abs(math.log(cost / info["cost_band"])) <= math.log(2.0)
    assert banded >= 10, banded
    assert hits >= 0.7 * banded, (hits, banded)
    assert max(costs) / min(costs) > 10.0, max(costs) / min(costs)


def test_band_picks_stay_under_the_cost_cap() -> None:
    opt = CarbsOptimizer(
        _tiny_moe_space(), seed=3, cost_band_fraction=1.0, max_suggestion_cost=1e12, **FAST
    )
    rng = np.random.default_rng(3)
    banded = 0
    for _ in range(16):
        s = opt.suggest(1)[0]
        cost = _tiny_moe_cost(s.params)
        loss = 6.0 - 0.12 * math.log(cost / 1e11) + float(rng.normal(0.0, 0.12))
        opt.observe(Observation(s.params, cost, loss, suggestion_id=s.suggestion_id))
        info = opt.last_info[0] if opt.last_info else {}
        if "cost_band" in info:
            banded += 1
            assert info["cost_band"] <= 1e12
            assert info["predicted_cost"] <= 1.5e12
    assert banded >= 8


def test_registry_says_which_optimizers_take_the_cost_cap() -> None:
    from carbs.registry import accepts

    assert accepts("carbs", "max_cost") and accepts(None, "max_cost")
    assert not accepts("random", "max_cost")
    assert not accepts("no-such-optimizer", "max_cost")


def test_an_exact_price_keeps_every_model_based_pick_under_the_cap() -> None:
    """Band picks aim at the cap; the cost model's error put real trials over it (each one a
    wasted 'over_cost_limit' trial). With the workload's exact price, none is proposed."""
    cap = 1e12
    opt = CarbsOptimizer(
        _tiny_moe_space(), seed=5, cost_band_fraction=1.0, max_suggestion_cost=cap,
        price=_tiny_moe_cost, **FAST,
    )  # fmt: skip
    rng = np.random.default_rng(5)
    model_picks = []
    for _ in range(20):
        s = opt.suggest(1)[0]
        cost = _tiny_moe_cost(s.params)
        if opt.last_info:  # past the random warm-up
            model_picks.append(cost)
        loss = 6.0 - 0.12 * math.log(cost / 1e11) + float(rng.normal(0.0, 0.12))
        opt.observe(Observation(s.params, cost, loss, suggestion_id=s.suggestion_id))
    assert len(model_picks) >= 12
    assert max(model_picks) <= cap, max(model_picks)
    assert max(model_picks) > cap / 4  # and the bands still reach up towards it


def test_a_sweep_at_its_cap_fills_the_cheap_strata_of_its_frontier() -> None:
    """A sweep that climbed straight to its cap (three cheap trials, twenty near the cap) has
    an empty middle and an untuned cheap end: with filling on, its next suggestions go below
    the top stratum; with it off, they stay near the top."""
    cap = 1e12

    def loss_of(cost: float) -> float:
        return 6.0 - 0.12 * math.log(cost / 1e9)

    def seeded(fill: float) -> CarbsOptimizer:
        opt = CarbsOptimizer(
            _tiny_moe_space(), seed=7, max_suggestion_cost=cap, price=_tiny_moe_cost,
            cost_fill_share=fill, cost_band_fraction=0.0, **FAST,
        )  # fmt: skip
        for i in range(23):
            cheap = i < 3
            p = {
                "d_model": 32 if cheap else 128,
                "n_layers": 1 if cheap else 2,
                "n_experts": 4,
                "top_k": 1,
                "expert_hidden": 64 if cheap else 128,
                "lr": 3e-3 * 1.1 ** (i % 5),
                "tokens": (1e5 if cheap else 2.5e5) * (1 + 0.015 * i),
            }
            opt.observe(Observation(p, _tiny_moe_cost(p), loss_of(_tiny_moe_cost(p))))
        return opt

    def cheap_share(opt: CarbsOptimizer) -> float:
        costs = []
        for _ in range(6):
            s = opt.suggest(1)[0]
            cost = _tiny_moe_cost(s.params)
            costs.append(cost)
            opt.observe(Observation(s.params, cost, loss_of(cost), suggestion_id=s.suggestion_id))
        return float(np.mean(np.array(costs) < 0.4 * cap))  # the top trials cost 0.78-0.98 x cap

    assert cheap_share(seeded(0.5)) >= 0.5
    assert cheap_share(seeded(0.0)) <= 0.34
