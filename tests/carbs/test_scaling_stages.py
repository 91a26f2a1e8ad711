"""Each stage of the scaling model on known answers: roles, evidence, the allocation, the shape,
the settings' optima, the learning rate's choice, the interval, the degenerate-fit guard."""

from __future__ import annotations

import math

import numpy as np
import pytest

from carbs.scaling import laws
from carbs.scaling.evidence import Columns, from_table
from carbs.scaling.lossmodel import FitData, LossFit, LossStructure
from carbs.scaling.lrpick import choose_lr, lopsided_shift
from carbs.scaling.model import ScalingModel, degenerate, frontier_scatter, frontier_stage
from carbs.scaling.optima import SettingOptimum, allocate, expected_optimum
from carbs.scaling.policy import Policy
from carbs.scaling.prediction import (
    FormError,
    extrapolation_distance,
    form_error,
    predict,
    with_expected_regret,
)
from carbs.scaling.roles import infer_roles
from carbs.scaling.selection import Fold, Scored, Selection
from carbs.space import Param, SearchSpace

CHIN = dict(E=1.8, A=400.0, B=600.0, alpha=0.34, beta=0.30)


def chinchilla_rows(n: int = 80, seed: int = 0, noise: float = 0.002) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        N = math.exp(rng.uniform(math.log(1e6), math.log(3e8)))
        D = math.exp(rng.uniform(math.log(1e8), math.log(3e10)))
        loss = CHIN["E"] + CHIN["A"] / N ** CHIN["alpha"] + CHIN["B"] / D ** CHIN["beta"]
        rows.append({"N": N, "D": D, "loss": loss * math.exp(rng.normal(0, noise))})
    return rows


def test_roles_come_from_the_spec_else_from_the_usual_names() -> None:
    space = SearchSpace(
        (
            Param("hidden_size", "log", 64, 4096, scales_cost=True),
            Param("num_layers", "int", 2, 48, scales_cost=True),
            Param("peak_lr", "log", 1e-5, 1e-1),
            Param("train_tokens", "log", 1e8, 1e12, scales_cost=True),
            Param("warmup_frac", "logit", 0.001, 0.3),
        )
    )
    roles = infer_roles(space, {"lr": "peak_lr"})
    assert roles.get("width") == "hidden_size" and roles.get("depth") == "num_layers"
    assert roles.tokens == "train_tokens" and roles.lr == "peak_lr"
    assert roles.settings == ("peak_lr", "warmup_frac")  # lr first; cost-scaling ones are shape
    with pytest.raises(ValueError, match="unknown role 'widht'"):
        infer_roles(space, {"widht": "hidden_size"})
    with pytest.raises(ValueError, match="no parameter named 'lr'"):
        infer_roles(space, {"lr": "lr"})


def test_imported_tables_name_the_bad_row_and_column() -> None:
    rows = chinchilla_rows(5)
    rows[3]["loss"] = "n/a"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="row 3: column 'loss' is missing or not a number"):
        from_table(rows, Columns("N", "D", "loss"))
    rows[3]["loss"] = -1.0
    with pytest.raises(ValueError, match="row 3: column 'loss' must be a positive number"):
        from_table(rows, Columns("N", "D", "loss"))


def test_the_allocation_is_chinchillas_compute_optimum() -> None:
    ev = from_table(chinchilla_rows(), Columns("N", "D", "loss"))
    model = ScalingModel.fit_evidence(ev, n_bootstrap=20)
    c = 1e22
    alloc = model.allocation(c, overhead=1.0)
    a, b, al, be = math.log(CHIN["A"]), math.log(CHIN["B"]), CHIN["alpha"], CHIN["beta"]
    g = ((al * math.exp(a)) / (be * math.exp(b))) ** (1 / (al + be))
    n_opt = g * (c / 6) ** (be / (al + be))
    assert alloc.size == pytest.approx(n_opt, rel=0.15)
    assert alloc.size * alloc.tokens * 6 == pytest.approx(c, rel=1e-6)
    truth = CHIN["E"] + CHIN["A"] / n_opt**al + CHIN["B"] / (c / 6 / n_opt) ** be
    assert math.exp(alloc.log_loss_rows[0]) == pytest.approx(truth, rel=0.01)
    lo, hi = alloc.size_interval()
    assert lo < alloc.size < hi


def test_allocating_on_a_grid_agrees_with_a_direct_minimisation() -> None:
    theta = np.array([[math.log(400), math.log(600), math.log(1.8), 0.34, 0.30]])
    fit = LossFit(LossStructure(), theta, {}, None, 0.0, 3)
    alloc = allocate(fit, 1e21, 1.0, None, math.log(1e8))
    ns = np.exp(np.linspace(math.log(1e7), math.log(1e11), 200001))
    loss = laws.chinchilla_predict(theta[0], ns, 1e21 / 6 / ns)[0]
    assert alloc.size == pytest.approx(float(ns[int(np.argmin(loss))]), rel=1e-3)


def test_the_lr_goes_below_an_uncertain_optimum_and_never_past_the_cliff() -> None:
    assert lopsided_shift(1.0) == pytest.approx(0.0, abs=1e-9)
    assert 0.2 < lopsided_shift(2.0) < lopsided_shift(3.0) < 0.6
    opt = SettingOptimum("lr", math.log(1e-3), 0.3, 1e-3, False, ("log N",))
    choice = choose_lr(opt, 3.0, None, math.log(1e9), math.exp, Policy())
    assert choice.value < 1e-3 and choice.z == pytest.approx(opt.z - lopsided_shift(3.0) * 0.3)


def test_the_interval_grows_with_extrapolation_and_holds_the_bootstrap() -> None:
    rows = np.log(np.array([3.0, 2.98, 3.02, 3.01, 2.99]))
    form = FormError(base=0.0, slope=0.01**2)
    near, far = predict(rows, form, 0.5), predict(rows, form, 4.6)
    assert near.loss == far.loss == pytest.approx(3.0)
    assert (far.interval[1] - far.interval[0]) > 2 * (near.interval[1] - near.interval[0])
    assert far.form_sd == pytest.approx(0.046) and near.bootstrap_sd == far.bootstrap_sd
    alone = predict(rows, None, 4.6)
    assert alone.form_sd == 0 and "bootstrap's only" in alone.warnings[0]


def test_a_collapsed_irreducible_loss_or_an_implausible_exponent_reads_as_degenerate() -> None:
    data = FitData(np.zeros(3), np.zeros(3), np.log([4.0, 4.5, 5.0]), {}, {}, np.ones(3))

    def fit(e: float, alpha: float, beta: float) -> LossFit:
        theta = np.array([[5.0, 6.0, math.log(e), alpha, beta]])
        return LossFit(LossStructure(), theta, {}, None, 0.0, 3)

    assert degenerate(fit(1.8, 0.34, 0.30), data, Policy()) is None
    assert "collapsed" in degenerate(fit(0.01, 0.34, 0.30), data, Policy())
    assert "beta = 0.02" in degenerate(fit(1.8, 0.34, 0.02), data, Policy())


def _chinchilla_data(cost: np.ndarray) -> FitData:
    n = (cost / 120.0) ** 0.5
    d = cost / (6.0 * n)
    loss = 1.8 + 400.0 / n**0.34 + 400.0 / d**0.28
    return FitData(np.log(n), np.log(d), np.log(loss), {}, {}, np.ones(len(cost)))


def test_a_backtest_that_cannot_extrapolate_says_so() -> None:
    """Most runs within 2x of the top: every run-quantile origin lies there, and the pick is
    told its structure choice says little about extrapolation; an even spread is not."""
    from carbs.scaling.selection import make_folds, reach_warning

    rng = np.random.default_rng(0)
    crowded = np.concatenate([np.exp(rng.uniform(np.log(1e16), np.log(1e17), 12)),
                              np.exp(rng.uniform(np.log(5e17), np.log(1e18), 48))])  # fmt: skip
    even = np.exp(rng.uniform(np.log(1e16), np.log(1e18), 60))
    for cost, warned in ((crowded, True), (even, False)):
        folds = make_folds(_chinchilla_data(cost), cost, Policy())
        assert folds
        said = reach_warning(folds, cost, Policy())
        assert bool(said) is warned, (said, [f.cutoff_cost for f in folds])
        if said:
            assert "cost_fill_share" in said[0]


def test_the_extrapolation_distance_is_leverage_in_units_of_the_runs_spread() -> None:
    runs = np.exp(np.array([0.0, 1.0, 2.0, 3.0, 4.0]))  # mean log 2, sd sqrt(2)
    d = extrapolation_distance(np.exp(np.array([2.0, 4.0 + math.sqrt(2) * 3])), runs)
    assert d[0] == pytest.approx(0.0) and d[1] == pytest.approx(2 / math.sqrt(2) + 3)
    wide = extrapolation_distance(np.exp(9.0), np.exp(np.linspace(0, 4, 9)))
    narrow = extrapolation_distance(np.exp(9.0), np.exp(np.linspace(2, 4, 9)))
    assert narrow > wide  # the same reach past the top is further from a narrower span
    assert np.isfinite(extrapolation_distance(10.0, np.full(4, 5.0))).all()  # floored spread


def _backtest(growth_per_fold: list[float]) -> tuple[Selection, np.ndarray, np.ndarray]:
    """Four rolling origins over 40 runs on a line of cost (every test run on the frontier),
    each fold's held-out residuals growing at its own rate with the distance from its runs."""
    cost = np.exp(np.linspace(0.0, 8.0, 40))
    loss = 10.0 / np.log(cost + 2.0)  # falls with cost: every run is Pareto-optimal
    folds, resid = [], []
    for q, g in zip((16, 22, 28, 34), growth_per_fold, strict=True):
        train, test = np.arange(q), np.arange(q, 40)
        folds.append(Fold(float(cost[q - 1]), train, test, np.zeros(5)))
        resid.append(g * extrapolation_distance(cost[test], cost[train]))
    scored = Scored(LossStructure(), (0.01,) * 4, "x", (0.0,) * 4, tuple(resid))
    return Selection(LossStructure(), (scored,), tuple(folds), ()), cost, loss


def test_one_origin_that_extrapolates_badly_does_not_set_the_form_error() -> None:
    sel, cost, loss = _backtest([0.01, 0.01, 0.01, 0.01])
    even = form_error(sel, cost, loss)
    assert even is not None and even.slope == pytest.approx(0.01**2, rel=1e-6)
    sel, cost, loss = _backtest([0.10, 0.01, 0.01, 0.01])  # the cheapest origin errs 10x
    robust = form_error(sel, cost, loss)
    assert robust is not None and robust.slope < 2 * 0.01**2
    sel, cost, loss = _backtest([0.10, 0.10, 0.10, 0.01])  # most origins err: it is the form
    assert form_error(sel, cost, loss).slope > 50 * 0.01**2


def test_a_pick_is_predicted_above_its_own_optimum_by_what_the_replicates_lose_there() -> None:
    base = predict(np.full(5, math.log(3.0)), None, 1.0)
    best = np.full(5, math.log(3.0))
    # the pick is row 0's optimum; every replicate puts its own optimum 2 % lower there
    raised = with_expected_regret(base, best + np.array([0.0, 0.02, 0.02, 0.02, 0.02]), best)
    assert raised.loss == pytest.approx(3.0 * math.exp(0.02))
    assert raised.expected_regret == pytest.approx(0.02)
    assert raised.interval[0] == pytest.approx(base.interval[0] * math.exp(0.02))
    # a gap that row 0 already shows (a safe-side lr) is in the prediction once, not twice
    kept = with_expected_regret(base, best + 0.01, best)
    assert kept.loss == pytest.approx(base.loss) and kept.expected_regret == 0.0
    # without replicates there is nothing to estimate it from
    one = predict(np.array([math.log(3.0)]), None, 1.0)
    assert with_expected_regret(one, np.array([1.2]), np.array([1.0])) == one


def test_the_frontier_scatter_counts_the_laws_three_parameters() -> None:
    excess = np.array([0.002, -0.002] * 4 + [0.0])
    assert frontier_scatter(excess) == pytest.approx(math.sqrt(8 * 0.002**2 / 6))
    assert frontier_scatter(np.array([])) == 0.0


def test_quiet_runs_are_weighted_on_their_own_scatter_not_an_assumed_noise() -> None:
    """Runs with 0.2 % noise: near-frontier weights fall on a scale a few times that (an
    assumed 1 % floor let IsoFLOP curves' shoulders into the fit: Porian et al. 2024's top
    budgets were over-predicted by 0.9-1.7 %, 0.5-1.2 % on their own scatter)."""
    rng = np.random.default_rng(0)
    rows = []
    a, b = CHIN["alpha"], CHIN["beta"]
    g = (a * CHIN["A"] / (b * CHIN["B"])) ** (1 / (a + b))
    for c in np.logspace(17, 20, 8):  # IsoFLOP curves around the optimum of each budget
        n_opt = g * (c / 6) ** (b / (a + b))
        for n in n_opt * np.exp(np.linspace(-1.5, 1.5, 7)):
            d = c / (6 * n)
            loss = CHIN["E"] + CHIN["A"] / n ** CHIN["alpha"] + CHIN["B"] / d ** CHIN["beta"]
            rows.append({"N": n, "D": d, "loss": loss * math.exp(rng.normal(0, 0.002))})
    ev = from_table(rows, Columns("N", "D", "loss"))
    front = frontier_stage(ev, Policy())
    assert Policy().nearness_scale_floor <= front.scale < 0.01
    assert front.scale == pytest.approx(
        max(Policy().nearness_scale_floor, 2 * frontier_scatter(front.excess[front.pareto]))
    )


def test_the_size_is_the_one_the_replicates_expect_to_do_best_at() -> None:
    """Row 0 puts the optimum at one size; the replicates all say the data term falls faster
    (beta 0.36 against 0.30), which moves the optimum. The size picked is the minimum of the
    replicates' mean loss (a direct minimisation over a fine grid), while each row's own
    optimum stays in `size_rows`."""
    row0 = [math.log(400), math.log(600), math.log(1.8), 0.34, 0.30]
    steeper = [math.log(400), math.log(600), math.log(1.8), 0.34, 0.36]
    theta = np.array([row0] + [steeper] * 4)
    fit = LossFit(LossStructure(), theta, {}, None, 0.0, 3)
    alloc = allocate(fit, 1e21, 1.0, None, math.log(1e8))
    ns = np.exp(np.linspace(math.log(1e7), math.log(1e12), 200001))
    mean = laws.chinchilla_predict(np.array(steeper), ns, 1e21 / 6 / ns)[0]
    own = laws.chinchilla_predict(np.array(row0), ns, 1e21 / 6 / ns)[0]
    bayes, first = float(ns[int(np.argmin(mean))]), float(ns[int(np.argmin(own))])
    assert alloc.size == pytest.approx(bayes, rel=0.03) and alloc.size != pytest.approx(
        first, rel=0.2
    )
    assert alloc.size_rows[0] == pytest.approx(first, rel=1e-3)  # each row keeps its own optimum


def test_a_setting_sits_at_its_replicates_mean_optimum_and_the_lr_at_row_0s() -> None:
    z = np.array([0.0, 0.4, 0.6, 0.5, 0.5])
    assert expected_optimum(z, lopsided=False) == pytest.approx(0.5)
    assert expected_optimum(z, lopsided=True) == 0.0  # the lr's own rule weighs its cliff
    assert expected_optimum(z[:2], lopsided=False) == 0.0  # no replicates to average


def test_an_uncertain_size_leans_on_the_runs_and_a_determined_one_does_not() -> None:
    """The law's size is weighed against the top runs' sizes grown at the published exponent
    (`runs_size_prior`) by their precisions: replicates that agree keep the law's size, ones
    spread over decades give way to the runs'."""
    from dataclasses import replace

    from carbs.scaling.largerun import runs_size_prior, supported

    model = ScalingModel.fit_evidence(
        from_table(chinchilla_rows(), Columns("N", "D", "loss")), n_bootstrap=20
    )
    c = 30 * model.max_cost
    mean, sd = runs_size_prior(model, c)
    assert 0.3 < sd < 1.0  # the exponent's +-0.11 over 3.4 e-folds, and the runs' spread
    law = math.exp(mean + 0.5)  # the law says 1.6x larger than the runs do, inside the support
    alloc = model.allocation(c, overhead=1.0)
    rng = np.random.default_rng(0)

    def with_spread(s: float):
        rows = law * np.exp(np.concatenate([[0.0], rng.normal(0.0, s, 200)]))
        return supported(model, replace(alloc, size=law, tokens=c / 6 / law, size_rows=rows))

    sure, unsure = with_spread(0.02), with_spread(3.0)
    assert sure.size == pytest.approx(law, rel=0.01)
    assert math.exp(mean) < unsure.size < math.exp(mean + 0.1)
    assert sure.note is None and "uncertain" in (unsure.note or "")  # a move of > 10 % is said
    lo, hi = unsure.size_interval()  # its own, not the replicates' spread over decades
    assert lo < unsure.size < hi and math.log(hi / lo) <= 2 * 1.645 * sd * 1.001
    for a in (sure, unsure):
        assert a.size_source == "weighed" and a.size * a.tokens * 6 == pytest.approx(c, rel=1e-6)


def test_a_setting_that_follows_the_lr_reads_the_lr_chosen_not_its_optimum() -> None:
    """Weight decay's optimum follows the lr's z with slope -1 (the AdamW timescale): where the
    lr is picked below its optimum (below the cliff), the weight decay rises by as much, as
    the timescale law says; the lr's own optimum is still reported as it is."""
    from carbs.scaling.lossmodel import SettingTerm
    from carbs.scaling.optima import setting_optima

    lr = SettingTerm("lr", (), lopsided=True)
    wd = SettingTerm("wd", ("z lr",))
    s = LossStructure(family="tied", settings=(lr, wd))
    # a, b, e, alpha | lr: c, log k, lopsided | wd: c, slope on z lr, log k
    row = [6.0, 6.0, 0.5, 0.3, -7.0, 0.0, 0.0, -2.0, -1.0, 0.0]
    fit = LossFit(s, np.array([row] * 3), {"z lr": -7.0}, None, 0.0, 10)
    at_optimum = setting_optima(fit, {}, {}, clamp=False)
    assert at_optimum["lr"].z == pytest.approx(-7.0) and at_optimum["wd"].z == pytest.approx(-2.0)
    lower = setting_optima(fit, {}, {}, clamp=False, chosen={"lr": -7.5})
    assert lower["lr"].z == pytest.approx(-7.0)  # the optimum, not the choice
    assert lower["wd"].z == pytest.approx(-1.5)  # half an e-fold lower lr: wd x e^0.5


def test_an_unlocated_weight_decay_moves_by_its_timescale_law() -> None:
    """Where the runs cannot locate weight decay's optimum, it is read where the top runs set
    it, moved by its law (wd ~ batch / (lr D)), not by a drift along compute: a run at
    8x the tokens and half the lr gets wd / 4."""
    from types import SimpleNamespace

    from carbs.scaling.lossmodel import SettingTerm

    term = SettingTerm(
        "wd",
        ("log D", "z lr"),
        drift=(-0.5, 0.15),
        slope_means=(("log D", -1.0), ("z lr", -1.0)),
    )
    n = 6
    log_d = np.log(np.full(n, 1e9))
    z_lr = np.log(np.full(n, 1e-3))
    z_wd = np.log(np.full(n, 0.1))
    data = FitData(
        np.zeros(n),
        log_d,
        np.zeros(n),
        {"wd": z_wd, "lr": z_lr},
        {"log C": np.full(n, math.log(1e18)), "log D": log_d, "z lr": z_lr},
        np.ones(n),
    )
    model = SimpleNamespace(
        data=data,
        fit=SimpleNamespace(structure=LossStructure(settings=(term,))),
        top_runs=lambda: np.ones(n, bool),
        max_cost=1e18,
    )
    cov = {"log C": math.log(1e20), "log D": math.log(8e9), "z lr": math.log(5e-4)}
    z, sd = ScalingModel.runs_optimum(model, "wd", cov)  # type: ignore[arg-type]
    assert math.exp(z) == pytest.approx(0.1 / 8 * 2)
    assert sd == pytest.approx(0.15 * math.log(100))  # the runs agree; the reach's prior sd


def test_a_poorly_located_setting_leans_on_the_runs_and_a_well_located_one_does_not() -> None:
    from carbs.scaling.optima import weigh_with_runs

    rng = np.random.default_rng(0)
    runs = (-2.0, 0.3)  # the near-frontier runs sit at -2 (spread 0.3)
    sure = np.concatenate([[-1.0], -1.0 + rng.normal(0, 0.02, 200)])
    unsure = np.concatenate([[-1.0], -1.0 + rng.normal(0, 1.0, 200)])
    z_sure, sd_sure = weigh_with_runs(sure, runs)
    z_unsure, sd_unsure = weigh_with_runs(unsure, runs)
    assert z_sure == pytest.approx(-1.0, abs=0.02)
    assert -2.0 < z_unsure < -1.8  # 1 / 0.3^2 against 1 / 1^2: 92 % the runs'
    assert sd_unsure < 0.3 and sd_sure < 0.02
    assert weigh_with_runs(np.array([-1.0]), runs) == (-1.0, math.inf)  # no replicates: the fit's
