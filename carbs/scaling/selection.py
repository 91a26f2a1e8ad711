"""Choose the loss model's structure by how well it predicts the costliest runs it was not fitted
on: a rolling-origin backtest.

Why held-out error on the costliest runs: the large run lies beyond every small one, so the
structure that serves it is the one that extrapolates along cost, not the one that fits the
runs best (a richer model always fits better). Each candidate is fitted on the runs below a
cost quantile and scored on the log loss of the runs above it, at four origins. Choices are
made one at a time (the loss family, then the sparsity terms), and
a richer choice must beat the simpler one by the policy's parsimony margin. What each setting's
optimum follows is not chosen here: its slopes are fitted under priors (see select_structure).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from carbs.scaling.lossmodel import (
    SPARSITY,
    FitData,
    LossStructure,
    SettingTerm,
    base_fit,
    fit_folds,
)
from carbs.scaling.policy import Policy


@dataclass(frozen=True)
class Fold:
    """One origin of the backtest: fit on `train`, score on `test` (indices into the runs)."""

    cutoff_cost: float
    train: np.ndarray
    test: np.ndarray
    base: np.ndarray  # the size-and-data start fitted on `train`


@dataclass(frozen=True)
class Scored:
    """A candidate structure and its held-out error (weighted RMS of log loss, per fold)."""

    structure: LossStructure
    errors: tuple[float, ...]
    what: str
    fit_errors: tuple[float, ...] = ()  # in-sample RMS log error on each fold's training runs
    residuals: tuple[np.ndarray, ...] = ()  # each fold's held-out residuals (log loss)

    @property
    def score(self) -> float:
        if not self.errors or not np.all(np.isfinite(self.errors)):
            return math.inf
        return float(np.sqrt(np.mean(np.square(self.errors))))

    def beats(self, other: Scored, margin: float) -> bool:
        """A richer candidate earns its place: better by `margin` of the simpler one's error
        overall, and better on at least half the folds (folds share runs: one fold's large
        error is not evidence on its own)."""
        if not math.isfinite(self.score):
            return False
        if not math.isfinite(other.score):
            return True
        wins = sum(a < b for a, b in zip(self.errors, other.errors, strict=True))
        return self.score < other.score * (1 - margin) and wins * 2 >= len(self.errors)


@dataclass(frozen=True)
class Selection:
    """The chosen structure, every candidate tried with its score, and why."""

    structure: LossStructure
    tried: tuple[Scored, ...]
    folds: tuple[Fold, ...]
    decisions: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    @property
    def backtest_error(self) -> float | None:
        """The chosen structure's held-out RMS log error (None without folds)."""
        for s in self.tried:
            if s.structure == self.structure:
                return s.score
        return None


def make_folds(data: FitData, cost: np.ndarray, policy: Policy) -> list[Fold]:
    """The backtest's origins: runs below each cost quantile fitted, the rest scored."""
    folds = []
    log_c = np.log(cost)
    for q in policy.backtest_quantiles:
        cut = float(np.quantile(log_c, q))
        train, test = np.flatnonzero(log_c <= cut), np.flatnonzero(log_c > cut)
        if len(train) < policy.backtest_min_train or len(test) < policy.backtest_min_test:
            continue
        try:
            base = base_fit(data.subset(train), n_starts=8)
        except Exception:  # noqa: BLE001 - a fold whose runs cannot be fitted is skipped
            continue
        folds.append(Fold(math.exp(cut), train, test, base))
    return folds


def held_out_errors(data: FitData, s: LossStructure, folds: Sequence[Fold], iters: int) -> Scored:
    """Structure `s` scored: weighted RMS log error on each fold's held-out runs, on its
    training runs (the noise to read the held-out error against), and the held-out residuals."""
    pred = fit_folds(data, s, [f.train for f in folds], [f.base for f in folds], iters)
    test, train, resid = [], [], []
    for row, f in zip(pred, folds, strict=True):
        for idx, out in ((f.test, test), (f.train, train)):
            err = row[idx] - data.log_loss[idx]
            out.append(float(np.sqrt(np.average(err * err, weights=data.weight[idx] + 1e-12))))
        resid.append(row[f.test] - data.log_loss[f.test])
    return Scored(s, tuple(test), "", tuple(train), tuple(resid))


@dataclass(frozen=True)
class SettingsPlan:
    """The settings a model may fit: their order, the extra scale variables each optimum may
    follow (another setting's z, the width), the lopsided one (the lr), the drift priors."""

    names: tuple[str, ...]
    extras: Mapping[str, tuple[str, ...]]
    lopsided: str | None = None
    drift: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    slope_means: Mapping[str, tuple[tuple[str, float], ...]] = field(default_factory=dict)
    slope_signs: Mapping[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)


def full_structure(data: FitData, plan: SettingsPlan) -> LossStructure:
    """Where selection starts: every setting's optimum follows size, data and its extras."""
    terms = tuple(
        SettingTerm(
            s,
            ("log N", "log D", *[v for v in plan.extras.get(s, ()) if v in data.cov]),
            lopsided=s == plan.lopsided,
            drift=plan.drift.get(s),
            slope_means=plan.slope_means.get(s, ()),
            slope_signs=plan.slope_signs.get(s, ()),
        )
        for s in plan.names
    )
    return LossStructure("additive", True, SPARSITY in data.cov, terms)


def select_structure(
    data: FitData, cost: np.ndarray, plan: SettingsPlan, policy: Policy
) -> Selection:
    """Choose the loss family (and the prior on E) and the sparsity terms by the rolling-origin
    backtest."""
    current = full_structure(data, plan)
    folds = make_folds(data, cost, policy)
    if not folds:
        return Selection(
            current,
            (),
            (),
            ("too few runs for a backtest: the full structure, additive family",),
            (
                "too few runs above and below a cost split to choose the loss model's "
                "structure by backtest; used the default",
            ),
        )
    tried: list[Scored] = []
    decisions: list[str] = []

    def score(s: LossStructure, what: str) -> Scored:
        for t in tried:
            if t.structure == s:
                return t
        sc = held_out_errors(data, s, folds, policy.selection_iters)
        sc = Scored(s, sc.errors, what, sc.fit_errors, sc.residuals)
        tried.append(sc)
        return sc

    current = _choose_family(current, score, policy, decisions)
    # Every setting's optimum keeps every scale variable it may follow, its slopes shrunk by
    # their priors, rather than dropping variables by the backtest: a shallow penalty hides a
    # drift from held-out losses. On the world family (15 worlds, CARBS trials, 100x),
    # backward elimination at the parsimony margin lost to keeping them all: mean regret 2.20 %
    # vs 1.78 % (forward selection and dropping wherever no worse had lost earlier as well).
    if current.sparsity:
        without = LossStructure(current.family, current.e_prior, False, current.settings)
        current = _prefer(
            score(without, "no sparsity terms"),
            score(current, "sparsity terms"),
            policy,
            decisions,
            "sparsity",
        )
    return Selection(
        current, tuple(tried), tuple(folds), tuple(decisions), reach_warning(folds, cost, policy)
    )


def reach_warning(folds: Sequence[Fold], cost: np.ndarray, policy: Policy) -> tuple[str, ...]:
    """A warning when no fold fits below `policy.min_backtest_reach` of the costliest run:
    then the backtest scores interpolation, not extrapolation. Seen on the world family: a
    sweep with most trials near its cap cut all four folds within 2x of the top, and the
    structure it chose under-predicted the 100x run by 41 %."""
    if not folds:
        return ()
    reach = float(np.max(cost)) / min(f.cutoff_cost for f in folds)
    if reach >= policy.min_backtest_reach:
        return ()
    return (
        f"the backtest's origins all lie within {reach:.1f}x of the costliest run (most runs "
        "sit near the top of cost), so its choice of the loss model says little about "
        "extrapolation: spread the sweep's runs over cost (optimizer setting cost_fill_share)",
    )


def _prefer(
    simple: Scored, rich: Scored, policy: Policy, decisions: list[str], what: str
) -> LossStructure:
    chosen = rich if rich.beats(simple, policy.parsimony) else simple
    decisions.append(
        f"{what}: {chosen.what} (held-out RMS log error {simple.score:.4f} for {simple.what}, "
        f"{rich.score:.4f} for {rich.what})"
    )
    return chosen.structure


def _choose_family(
    current: LossStructure, score, policy: Policy, decisions: list[str]
) -> LossStructure:  # type: ignore[no-untyped-def]
    """The loss family, each with the prior on E: from the simplest (tied), a richer one
    (additive, then smooth) replaces the current choice only where it `beats` it, the rule
    every choice here follows (on Gadre et al. the smooth family won the longest-reach fold
    alone and under-predicted the 6.9B run by 1.8 %; with the rule: mean error 1.19 -> 1.06 %,
    the family's figures unchanged).

    Why always the prior: the backtest reaches a few e-folds of compute past its folds, where
    a lower E with a flatter power law fits as well, so it cannot tell them apart; at 100x they
    differ. Chosen by the backtest between with and without the prior, the fits without it
    collapsed E (0.37 for a true 1.46) and under-predicted 100x by 5-14 % on worlds 15-20 of the
    family; with it always, the family's median |prediction error| went 3.3 -> 3.0 % and
    Gadre, Porian and the other worlds did not move."""
    order = {"tied": 0, "additive": 1, "smooth": 2}
    cands = [
        score(LossStructure(fam, True, current.sparsity, current.settings), f"{fam} + prior on E")
        for fam in sorted(policy.families, key=order.get)
    ]
    chosen = cands[0]
    for richer in cands[1:]:
        if richer.beats(chosen, policy.parsimony):
            chosen = richer
    decisions.append(
        "loss family: "
        + chosen.what
        + " (held-out RMS log error: "
        + ", ".join(f"{c.what} {c.score:.4f}" for c in cands)
        + ")"
    )
    return chosen.structure
